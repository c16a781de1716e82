//! `kinetick report --lake s3://bucket/prefix` against the AWS emulator, through the real binary:
//! a demo's lake copied into a bucket under a prefix reads as the same report as the directory
//! (every number and answer alike), but for the alert log, which only a directory has; with
//! `--upload --publish`, the report lands in the bucket under `reports/dt=…/` and its digest
//! reaches a queue subscribed to the topic.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;

fn succeeded(output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kinetick failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn report(lake: &str, out: &Path, env: &[(&str, String)]) -> Value {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kinetick"));
    command
        .args(["report", "--no-progress", "--lake", lake, "--out"])
        .arg(out);
    command.envs(env.iter().map(|(k, v)| (k, v)));
    succeeded(command.output().expect("kinetick runs"));
    serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap()
}

/// Every file under `dir`, as its path relative to `dir` with `/` between folders.
fn relative_files(dir: &Path, under: &str, files: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir.join(under)).unwrap() {
        let entry = entry.unwrap();
        let name = format!("{under}/{}", entry.file_name().to_str().unwrap());
        if entry.file_type().unwrap().is_dir() {
            relative_files(dir, &name, files);
        } else {
            files.push(name);
        }
    }
}

/// A demo's lake in `work/demo`, and its ticks and dead letters copied into a new bucket under
/// `lake/`: the directory, a client and the bucket.
async fn lake_in_a_bucket(work: &Path) -> (PathBuf, aws_sdk_s3::Client, String) {
    let demo = work.join("demo");
    succeeded(
        Command::new(env!("CARGO_BIN_EXE_kinetick"))
            // News on about one tick in 100, so the lake has alerts to count.
            .args(["demo", "--no-progress", "--ticks", "5000", "--symbols", "8"])
            .args(["--jumps-per-session", "2340"])
            .arg("--out")
            .arg(&demo)
            .output()
            .unwrap(),
    );
    let (s3, bucket) = common::bucket(&common::sdk_config()).await;
    let mut files = Vec::new();
    relative_files(&demo, "ticks", &mut files);
    relative_files(&demo, "dead-letters", &mut files);
    for file in &files {
        s3.put_object()
            .bucket(&bucket)
            .key(format!("lake/{file}"))
            .body(ByteStream::from(std::fs::read(demo.join(file)).unwrap()))
            .send()
            .await
            .unwrap();
    }
    (demo, s3, bucket)
}

/// The environment of a kinetick that reads the emulator's S3 through the default chain.
fn emulator_env() -> Vec<(&'static str, String)> {
    let mut env = common::aws_env();
    env.push(("KINETICK_AWS__S3_FORCE_PATH_STYLE", "true".to_owned()));
    env
}

#[tokio::test]
async fn a_lake_on_s3_reads_as_the_same_report() {
    let work = tempfile::tempdir().unwrap();
    let (demo, _, bucket) = lake_in_a_bucket(work.path()).await;
    let env = emulator_env();
    let from_s3 = report(
        &format!("s3://{bucket}/lake"),
        &work.path().join("s3"),
        &env,
    );
    let from_dir = report(demo.to_str().unwrap(), &work.path().join("dir"), &[]);

    assert_eq!(from_s3["lake"], format!("s3://{bucket}/lake/"));
    assert!(from_s3["rows"].as_u64().unwrap() > 4_000);
    assert!(from_s3["dead_letters"].as_u64().unwrap() > 0);
    // No alert log beside a bucket: the alerts come from the lake's `alerts` column, which holds
    // every alert the rules sent on (the alert log lacks those the cap per minute held).
    let (in_lake, in_log) = (&from_s3["alerts"], &from_dir["alerts"]);
    assert!(in_log["total"].as_u64().unwrap() > 0);
    assert!(in_lake["total"].as_u64() >= in_log["total"].as_u64());
    for (kind, n) in in_log["by_kind"].as_object().unwrap() {
        assert!(in_lake["by_kind"][kind].as_u64() >= n.as_u64(), "{kind}");
    }
    let page = std::fs::read_to_string(work.path().join("s3/report.html")).unwrap();
    assert!(page.contains("the lake's <code>alerts</code> column"));
    let without_source = |mut summary: Value| {
        let object = summary.as_object_mut().unwrap();
        for key in ["lake", "alert_log", "alerts"] {
            object.remove(key);
        }
        summary
    };
    assert_eq!(without_source(from_s3), without_source(from_dir));
}

#[tokio::test]
async fn the_report_goes_to_the_bucket_and_its_digest_to_the_topic() {
    let work = tempfile::tempdir().unwrap();
    let (_, s3, bucket) = lake_in_a_bucket(work.path()).await;
    let config = common::sdk_config();
    let topic = common::topic(&config).await;
    let queue = common::subscribed_queue(&config, &topic).await;

    // Alerts the tasks' cap per minute held on the lake's date: the lake does not record them,
    // the digest reads the metric.
    let namespace = common::unique("report");
    let held_at = aws_sdk_cloudwatch::primitives::DateTime::from_millis(1_767_625_200_000);
    aws_sdk_cloudwatch::Client::new(&config)
        .put_metric_data()
        .namespace(&namespace)
        .metric_data(
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name("AlertsCapped")
                .timestamp(held_at)
                .value(7.0)
                .build(),
        )
        .send()
        .await
        .unwrap();

    let out = work.path().join("report");
    let mut command = Command::new(env!("CARGO_BIN_EXE_kinetick"));
    command
        .args(["report", "--no-progress", "--lake"])
        .arg(format!("s3://{bucket}/lake"))
        .args(["--upload", "--publish", &topic, "--out"])
        .arg(&out)
        .envs(emulator_env())
        .env("KINETICK_METRICS__NAMESPACE", &namespace);
    let printed = succeeded(command.output().unwrap());
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let date = summary["dates"][0].as_str().unwrap();
    let folder = format!("lake/reports/dt={date}/");
    let url = format!("s3://{bucket}/{folder}");
    let charts = summary["charts"].as_array().unwrap();
    assert!(!charts.is_empty());
    assert!(printed.contains(&format!(
        "uploaded report.html, summary.json and {} charts to {url}",
        charts.len()
    )));

    // Every file of the report, as written into --out, with its media type.
    let mut files = vec!["report.html".to_owned(), "summary.json".to_owned()];
    files.extend(
        charts
            .iter()
            .map(|c| c["file"].as_str().unwrap().to_owned()),
    );
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("lake/reports/")
        .send()
        .await
        .unwrap();
    let mut keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    keys.sort();
    let mut expected: Vec<String> = files.iter().map(|f| format!("{folder}{f}")).collect();
    expected.sort();
    assert_eq!(keys, expected);
    for file in &files {
        let object = s3
            .get_object()
            .bucket(&bucket)
            .key(format!("{folder}{file}"))
            .send()
            .await
            .unwrap();
        let content_type = object.content_type().unwrap().to_owned();
        let body = object.body.collect().await.unwrap().into_bytes();
        assert_eq!(body, std::fs::read(out.join(file)).unwrap(), "{file}");
        let expected_type = match file.rsplit('.').next() {
            Some("html") => "text/html; charset=utf-8",
            Some("json") => "application/json",
            _ => "image/svg+xml",
        };
        assert_eq!(content_type, expected_type, "{file}");
    }

    // The digest, as a queue subscribed to the topic receives it.
    let envelope = next_message(&config, &queue).await;
    let subject = envelope["Subject"].as_str().unwrap();
    let body = envelope["Message"].as_str().unwrap();
    assert_eq!(envelope["MessageAttributes"]["kind"]["Value"], "digest");
    assert!(
        subject.starts_with(&format!("kinetick digest {date}: ")),
        "{subject}"
    );
    assert!(
        subject.len() < 100 && printed.contains(subject),
        "{subject}"
    );
    let gainer = &summary["gainers"][0];
    let dead_letters = summary["dead_letters"].as_u64().unwrap();
    assert!(dead_letters > 0);
    for figure in [
        format!("{url}report.html"),
        format!(
            "{} ticks of 8 symbols",
            thousands(summary["rows"].as_u64().unwrap())
        ),
        format!("Dead letters by reason ({dead_letters},"),
        "per task and minute       7 (the AlertsCapped metric)".to_owned(),
    ] {
        assert!(
            body.contains(&figure),
            "{figure:?} not in the digest:\n{body}"
        );
    }
    let (symbol, change) = (
        gainer["symbol"].as_str().unwrap(),
        gainer["change_percent"].as_f64().unwrap(),
    );
    assert!(
        body.lines()
            .any(|line| line.trim_start().starts_with(symbol)
                && line.contains(&format!("{change:+.2} %"))),
        "no line for the top gainer {symbol} {change:+.2} % in the digest:\n{body}"
    );

    // A weekday without ticks (a market holiday): no report, a digest that says so, and success.
    let mut command = Command::new(env!("CARGO_BIN_EXE_kinetick"));
    command
        .args(["report", "--no-progress", "--lake"])
        .arg(format!("s3://{bucket}/lake"))
        .args(["--date", "2026-01-19", "--upload", "--publish", &topic])
        .envs(emulator_env());
    succeeded(command.output().unwrap());
    let envelope = next_message(&config, &queue).await;
    assert_eq!(envelope["Subject"], "kinetick digest 2026-01-19: no ticks");
    let body = envelope["Message"].as_str().unwrap();
    assert!(
        body.contains(&format!(
            "no lake files for 2026-01-19 under s3://{bucket}/lake/ticks/"
        )),
        "{body}"
    );
    let reports = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("lake/reports/dt=2026-01-19/")
        .send()
        .await
        .unwrap();
    assert!(reports.contents().is_empty());
}

/// The next message a queue subscribed to a topic receives, as its SNS envelope.
async fn next_message(config: &aws_config::SdkConfig, queue: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(envelope) = common::drain_queue(config, queue).await.pop() {
            return envelope;
        }
        assert!(
            Instant::now() < deadline,
            "no message reached the topic's queue"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `4,912`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut text = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}
