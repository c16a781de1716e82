//! `kinetick report --lake s3://bucket/prefix` against the AWS emulator, through the real binary:
//! a demo's lake copied into a bucket under a prefix reads as the same report as the directory
//! (every number and answer alike), but for the alert log, which only a directory has.

mod common;

use std::path::Path;
use std::process::{Command, Output};

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

#[tokio::test]
async fn a_lake_on_s3_reads_as_the_same_report() {
    let work = tempfile::tempdir().unwrap();
    let demo = work.path().join("demo");
    succeeded(
        Command::new(env!("CARGO_BIN_EXE_kinetick"))
            .args(["demo", "--no-progress", "--ticks", "5000", "--symbols", "8"])
            .arg("--out")
            .arg(&demo)
            .output()
            .unwrap(),
    );

    let config = common::sdk_config();
    let (s3, bucket) = common::bucket(&config).await;
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

    let mut env = common::aws_env();
    env.push(("KINETICK_AWS__S3_FORCE_PATH_STYLE", "true".to_owned()));
    let from_s3 = report(
        &format!("s3://{bucket}/lake"),
        &work.path().join("s3"),
        &env,
    );
    let from_dir = report(demo.to_str().unwrap(), &work.path().join("dir"), &[]);

    assert_eq!(from_s3["lake"], format!("s3://{bucket}/lake/"));
    assert!(from_s3["rows"].as_u64().unwrap() > 4_000);
    assert!(from_s3["dead_letters"].as_u64().unwrap() > 0);
    assert_eq!(
        from_s3["alerts"],
        Value::Null,
        "no alert log beside a bucket"
    );
    assert!(from_dir["alerts"]["total"].as_u64().unwrap() > 0);
    let page = std::fs::read_to_string(work.path().join("s3/report.html")).unwrap();
    assert!(page.contains("no alert log"));
    let without_source = |mut summary: Value| {
        let object = summary.as_object_mut().unwrap();
        for key in ["lake", "alert_log", "alerts"] {
            object.remove(key);
        }
        summary
    };
    assert_eq!(without_source(from_s3), without_source(from_dir));
}
