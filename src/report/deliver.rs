//! Where the report goes: its files into the `--out` directory and, with `--upload`, into a
//! bucket under `PREFIX/reports/dt=YYYY-MM-DD/` through the [`ObjectStore`] port (the S3 store
//! `kinetick run` writes the lake with); its [`Digest`] to an SNS topic through the alerts' SNS
//! code.
//!
//! In: the report (made into its files: page, summary, charts) and its digest. Out: files,
//! objects and one message.
//!
//! Failed calls are judged by the error policy of [`crate::failure`] and retried with the bounded
//! backoff of [`crate::retry::backoff`]: a transient failure (throttling, 5xx, a timeout) is tried
//! again, up to about a minute; a refusal (permissions, a missing bucket or topic) ends the
//! command at once with the error. The pipeline's [`crate::retry::persistently`], which never
//! gives up, is not used: a stopped pipeline would replay its backlog, a scheduled report has
//! none, and a task waiting forever on a refusal would only hide it from whoever runs it.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use aws_config::SdkConfig;
use bytes::Bytes;

use super::digest::Digest;
use super::lake_reader::LakeLocation;
use super::{Report, html};
use crate::alerts::AlertError;
use crate::alerts::sns::{Notice, SnsAlertSink};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::objects::{ObjectError, ObjectStore};

/// The page, written last: once it is in the bucket, so is everything it names.
pub const PAGE: &str = "report.html";

/// One file of the report: its path under the report's folder, its bytes and its media type.
#[derive(Debug, Clone)]
pub struct ReportFile {
    /// `report.html`, `summary.json`, `charts/01-AAPL.svg`.
    pub name: String,
    pub body: Bytes,
    pub content_type: &'static str,
}

/// A bucket and a key prefix (`""` or ending in `/`) under which the reports go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub bucket: String,
    pub prefix: String,
}

impl Folder {
    /// `s3://bucket[/prefix]`.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        match LakeLocation::parse(url) {
            Ok(LakeLocation::S3 { bucket, prefix }) => Ok(Self { bucket, prefix }),
            _ => anyhow::bail!("--upload {url:?}: expected s3://bucket[/prefix]"),
        }
    }

    /// The key prefix of a date's report: `PREFIX/reports/dt=YYYY-MM-DD/`.
    pub fn reports_of(&self, date: &str) -> String {
        format!("{}reports/dt={date}/", self.prefix)
    }

    /// `s3://bucket/key`.
    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

/// Puts `files` under the key prefix `folder`, the page last.
pub async fn upload(
    store: &dyn ObjectStore,
    folder: &str,
    files: &[ReportFile],
) -> Result<(), ObjectError> {
    let (page, rest): (Vec<&ReportFile>, Vec<&ReportFile>) =
        files.iter().partition(|file| file.name == PAGE);
    for file in rest.into_iter().chain(page) {
        let key = format!("{folder}{}", file.name);
        crate::retry::bounded(&key, ObjectError::failure, || {
            store.put(&key, file.body.clone(), file.content_type)
        })
        .await?;
    }
    Ok(())
}

/// Publishes `digest` to the topic of `sink`.
pub async fn publish(sink: &SnsAlertSink, digest: &Digest) -> Result<(), AlertError> {
    let notice = Notice {
        id: digest.id.clone(),
        kind: super::digest::KIND,
        subject: digest.subject.clone(),
        body: digest.body.clone(),
    };
    crate::retry::bounded(&digest.id, AlertError::failure, || {
        sink.publish_notice(&notice)
    })
    .await
}

/// The SDK configuration, loaded the first time a step needs AWS, and the request counts.
#[derive(Default)]
pub struct Aws {
    sdk: tokio::sync::OnceCell<SdkConfig>,
    pub metrics: Arc<Metrics>,
}

impl Aws {
    pub async fn sdk(&self) -> &SdkConfig {
        self.sdk.get_or_init(crate::aws::sdk_config).await
    }
}

/// The page, the summary and the charts, as files.
pub fn files(report: &Report, svgs: &[String]) -> anyhow::Result<Vec<ReportFile>> {
    let mut files: Vec<ReportFile> = report
        .charts
        .iter()
        .zip(svgs)
        .map(|(chart, svg)| ReportFile {
            name: chart.file.clone(),
            body: Bytes::from(svg.clone()),
            content_type: "image/svg+xml",
        })
        .collect();
    files.push(ReportFile {
        name: "summary.json".to_owned(),
        body: Bytes::from(serde_json::to_vec(report)?),
        content_type: "application/json",
    });
    files.push(ReportFile {
        name: PAGE.to_owned(),
        body: Bytes::from(html::page(report, svgs)),
        content_type: "text/html; charset=utf-8",
    });
    Ok(files)
}

/// Uploads the files of the report's date to `folder`; returns where they went.
pub async fn put(
    config: &Config,
    aws: &Aws,
    folder: &Folder,
    report: &Report,
    files: &[ReportFile],
) -> anyhow::Result<String> {
    let date = report.dates.first().context("the report has no date")?;
    let store =
        crate::ports::s3_objects(&config.aws, aws.sdk().await, &folder.bucket, &aws.metrics);
    let at = folder.reports_of(date);
    upload(&store, &at, files)
        .await
        .with_context(|| format!("cannot upload the report to {}", folder.url(&at)))?;
    Ok(folder.url(&at))
}

/// Publishes `digest` to `topic`.
pub async fn announce(
    config: &Config,
    aws: &Aws,
    topic: &str,
    digest: &Digest,
) -> anyhow::Result<()> {
    let sns = crate::ports::sns_client(&config.aws, aws.sdk().await, &aws.metrics);
    publish(&SnsAlertSink::new(sns, topic), digest)
        .await
        .with_context(|| format!("cannot publish the digest to {topic}"))
}

/// Writes the files into `out`; charts of an earlier report there are removed first.
pub async fn write(out: &Path, files: &[ReportFile]) -> anyhow::Result<()> {
    let charts_dir = out.join("charts");
    tokio::fs::create_dir_all(&charts_dir)
        .await
        .with_context(|| format!("cannot create {}", charts_dir.display()))?;
    let mut entries = tokio::fs::read_dir(&charts_dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        if entry.path().extension().is_some_and(|e| e == "svg") {
            tokio::fs::remove_file(entry.path()).await?;
        }
    }
    for file in files {
        let path = out.join(&file.name);
        tokio::fs::write(&path, &file.body)
            .await
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn folders_of_reports() {
        let folder = Folder::parse("s3://market/lake").unwrap();
        assert_eq!(
            folder.reports_of("2026-01-05"),
            "lake/reports/dt=2026-01-05/"
        );
        assert_eq!(
            folder.url(&folder.reports_of("2026-01-05")),
            "s3://market/lake/reports/dt=2026-01-05/"
        );
        assert_eq!(
            Folder::parse("s3://market")
                .unwrap()
                .reports_of("2026-01-05"),
            "reports/dt=2026-01-05/"
        );
        assert!(Folder::parse("out").is_err());
    }

    /// Keeps the keys put, in order.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, &'static str)>>);

    #[async_trait::async_trait]
    impl ObjectStore for Recorder {
        async fn put(&self, key: &str, _: Bytes, content_type: &str) -> Result<(), ObjectError> {
            let content_type = match content_type {
                "text/html; charset=utf-8" => "html",
                _ => "other",
            };
            self.0.lock().unwrap().push((key.to_owned(), content_type));
            Ok(())
        }
        async fn get(&self, _: &str) -> Result<Option<Bytes>, ObjectError> {
            Ok(None)
        }
        async fn delete(&self, _: &str) -> Result<(), ObjectError> {
            Ok(())
        }
        async fn list(&self, _: &str) -> Result<Vec<String>, ObjectError> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn every_file_goes_under_the_folder_and_the_page_last() {
        let file = |name: &str, content_type| ReportFile {
            name: name.into(),
            body: Bytes::from(name.to_owned()),
            content_type,
        };
        let files = [
            file(PAGE, "text/html; charset=utf-8"),
            file("summary.json", "application/json"),
            file("charts/01-AAPL.svg", "image/svg+xml"),
        ];
        let store = Recorder::default();
        upload(&store, "lake/reports/dt=2026-01-05/", &files)
            .await
            .unwrap();
        assert_eq!(
            *store.0.lock().unwrap(),
            [
                (
                    "lake/reports/dt=2026-01-05/summary.json".to_owned(),
                    "other"
                ),
                (
                    "lake/reports/dt=2026-01-05/charts/01-AAPL.svg".to_owned(),
                    "other"
                ),
                ("lake/reports/dt=2026-01-05/report.html".to_owned(), "html"),
            ]
        );
    }
}
