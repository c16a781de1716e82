//! Settings refused at start, through the real binary: exit code 2 and one line per refusal on
//! stderr, before anything runs; any other failure exits 1.

use std::path::Path;
use std::process::{Command, Output};

/// `kinetick ARGS` with these `KINETICK_...` variables and no others.
fn kinetick(args: &[&str], settings: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kinetick"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("KINETICK_")) {
        command.env_remove(name);
    }
    command
        .env_remove("RUST_LOG")
        .args(args)
        .envs(settings.iter().copied())
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn demo(out: &Path, settings: &[(&str, &str)]) -> Output {
    let out = out.to_str().unwrap();
    kinetick(
        &["demo", "--ticks", "1000", "--no-progress", "--out", out],
        settings,
    )
}

#[test]
fn a_bad_setting_exits_2_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = demo(
        dir.path(),
        &[
            ("KINETICK_LEASE__FAILOVER_TIME", "3s"),
            ("KINETICK_LEASE__RENEW_INTERVAL", "2500ms"),
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "error: invalid setting lease.failover-time = 3s: must be above lease.renew-interval + \
         lease.poll-interval (2.5s + 1s)\n"
    );
    // Refused before anything ran.
    assert!(output.stdout.is_empty());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn every_bad_setting_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kinetick.toml");
    std::fs::write(&file, "[metrics]\ninterval = \"0s\"\n").unwrap();
    // `run` refuses before it reaches for AWS.
    let output = kinetick(
        &["run", "--config", file.to_str().unwrap()],
        &[
            ("KINETICK_LAKE__PREFIX", "/lake"),
            ("KINETICK_LAKE__TARGET_FILE_SIZE", "60GB"),
            ("KINETICK_AWS__START_POSITION", "at-timestamp"),
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_eq!(
        stderr(&output).lines().collect::<Vec<_>>(),
        [
            "error: invalid setting lake.prefix = \"/lake/\": must not start with /: object keys \
             are relative to the bucket",
            "error: invalid setting lake.target-file-size = 60000000000: must be at most 50GB \
             (an upload has at most 10,000 parts of 8 MiB; Athena reads files of 64MB to 1GB \
             best)",
            "error: invalid setting metrics.interval = 0s: must be at least 1s",
            "error: invalid setting aws.start-position = at-timestamp: needs \
             aws.start-timestamp, the RFC 3339 time to start at",
        ]
    );
}

#[test]
fn an_unreadable_setting_exits_2_too() {
    let dir = tempfile::tempdir().unwrap();
    let output = demo(dir.path(), &[("KINETICK_CHECKPOINT__INTERVALL", "5s")]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let stderr = stderr(&output);
    assert!(
        stderr.starts_with("error: invalid configuration: ") && stderr.contains("INTERVALL"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn other_failures_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.csv");
    let output = kinetick(
        &["replay", missing.to_str().unwrap(), "--strict", "--dry-run"],
        &[],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("nothing sent"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn the_trend_rule_and_the_alert_budgets_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kinetick.toml");
    std::fs::write(
        &file,
        "[rules.default]\ntrend-short-bars = 20\ntrend-long-bars = 5\n\
         [rules.symbols.AAPL]\nmax-alerts-per-hour = 0\ntrend-band-percent = -1\n\
         [alerts]\nmax-per-minute = 0\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let output = kinetick(
        &[
            "demo",
            "--config",
            file.to_str().unwrap(),
            "--no-progress",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_eq!(
        stderr(&output).lines().collect::<Vec<_>>(),
        [
            "error: invalid setting rules.default.trend-long-bars = 5: must be above \
             trend-short-bars (20)",
            "error: invalid setting rules.symbols.AAPL.trend-long-bars = 5: must be above \
             trend-short-bars (20)",
            "error: invalid setting rules.symbols.AAPL.trend-band-percent = -1: must be a finite \
             percentage, 0 or more",
            "error: invalid setting rules.symbols.AAPL.max-alerts-per-hour = 0: must be at \
             least 1",
            "error: invalid setting alerts.max-per-minute = 0: must be at least 1",
        ]
    );
}
