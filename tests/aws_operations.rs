//! The faults operators meet, with real `kinetick run` processes whose calls go through a
//! fault-injecting proxy in front of the AWS emulator:
//!
//! - a hung `BatchWriteItem`, lake `PutObject` or lease-table `Scan` (no answer at all) makes
//!   the worker report 503 naming what fails, within the configured time; once the calls answer
//!   again it is healthy again, and every tick is in the table and the lake exactly once; with
//!   lease renewals hung, it stops reading each shard before another worker could take it;
//! - an S3 `AccessDenied` on the lake crashes nothing: the worker reports the refusal (a restart
//!   would not help, so the container check passes), keeps running, and once the permission is
//!   back every tick is written exactly once;
//! - a table item refused with `ValidationException` is dead-lettered with the reason and the
//!   rest of the stream flows;
//! - a second process under a worker id already running reads none of the first's shards,
//!   reports the shared id, and every tick is written exactly once.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use common::fault_proxy::{Fault, FaultProxy};
use common::health::{health_until, reasons};
use common::stack::{
    Run, Stack, assert_exactly_once, create_stack_with_shards, dead_letter_lines, lake_rows,
    owners, put_records, records, start_run, table_keys, terminate, wait_for_checkpoints,
};
use kinetick::health::endpoint::Answer;

/// Short limits, so a hung write is abandoned, and reported, within seconds (lease-table calls
/// have short ones by default).
const SETTINGS: [(&str, &str); 5] = [
    ("KINETICK_HEALTH__UNHEALTHY_AFTER", "3s"),
    ("KINETICK_AWS__TIMEOUTS__TABLE__ATTEMPT", "2s"),
    ("KINETICK_AWS__TIMEOUTS__TABLE__OPERATION", "4s"),
    ("KINETICK_AWS__TIMEOUTS__OBJECTS__ATTEMPT", "2s"),
    ("KINETICK_AWS__TIMEOUTS__OBJECTS__OPERATION", "4s"),
];

/// A run whose every AWS call goes through `proxy`.
fn run_through(stack: &Stack, proxy: &FaultProxy) -> Run {
    let mut settings = vec![("AWS_ENDPOINT_URL", proxy.url.as_str())];
    settings.extend(SETTINGS);
    start_run(stack, &settings)
}

fn names(answer: &Answer, kind: &str, what: &str) -> bool {
    reasons(answer).contains(&(kind.to_owned(), what.to_owned()))
}

/// Merges the last sequence numbers of a later put into `last`.
fn merge(last: &mut BTreeMap<String, String>, later: BTreeMap<String, String>) {
    last.extend(later);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_calls_make_the_worker_unhealthy_with_the_reason_and_lose_nothing() {
    let config = common::sdk_config();
    let stack = create_stack_with_shards(&config, 2).await;
    let proxy = FaultProxy::start(&common::endpoint()).await;
    let (records, valid) = records(3_000, 31);
    let run = run_through(&stack, &proxy);
    health_until(&run, "healthy at start", |a| a.healthy).await;

    let hung = [
        (
            "DynamoDB_20120810.BatchWriteItem".to_owned(),
            "table writes",
        ),
        (format!("PUT /{}/ticks/", stack.bucket), "lake writes"),
        ("DynamoDB_20120810.Scan".to_owned(), "lease table reads"),
    ];
    let mut last = BTreeMap::new();
    for ((needle, what), part) in hung.iter().zip(records.chunks(records.len() / 3 + 1)) {
        proxy.fail_always(needle, Fault::BlackHole);
        merge(&mut last, put_records(&config, &stack.stream, part).await);
        let answer = health_until(&run, what, |a| names(a, "failing", what)).await;
        assert!(
            answer.restart_helps,
            "a hung call may be fixed by a new process"
        );
        proxy.clear();
        health_until(&run, "healthy again", |a| a.healthy).await;
    }

    // Lease renewals (every UpdateItem) hang: the worker stops reading its shards on its own
    // clock, each before another worker could take it (the failover time after its last renewal).
    // First it reads both shards again (a lease lost during the hung reads is being taken anew).
    let deadline = Instant::now() + Duration::from_secs(30);
    while run.log_text().is_some_and(|log| reading(&log).len() < 2) {
        assert!(
            Instant::now() < deadline,
            "the worker does not read both shards"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let opened = chrono::Utc::now();
    proxy.fail_always("DynamoDB_20120810.UpdateItem", Fault::BlackHole);
    let renewals = "lease renewals";
    health_until(&run, renewals, |a| names(a, "failing", renewals)).await;
    let renewed = last_renewals(&config, &stack).await;
    let log = run.log_text();
    proxy.clear();
    health_until(&run, "healthy again", |a| a.healthy).await;
    if let Some(log) = log {
        let stopped = readers_stopped(&log, opened);
        for (shard, renewed_at) in &renewed {
            let stopped_at = stopped.get(shard).unwrap_or_else(|| {
                panic!("{shard}: its reader was not stopped while renewals hung")
            });
            let after = (*stopped_at - *renewed_at).num_milliseconds();
            eprintln!("{shard}: reader stopped {after} ms after its last renewal or take");
            assert!(
                *stopped_at < *renewed_at + FAILOVER_TIME,
                "{shard}: stopped at {stopped_at}, renewed or taken last at {renewed_at}"
            );
        }
    }
    wait_for_checkpoints(&config, &stack.checkpoint_table, &last).await;
    let _log = terminate(run);
    assert_exactly_once(&config, &stack, valid).await;
}

/// The default `lease.failover-time`.
const FAILOVER_TIME: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// When each shard's lease was last renewed or taken, by the lease table (a take starts the
/// lease's clock as a renewal does).
async fn last_renewals(
    config: &SdkConfig,
    stack: &Stack,
) -> BTreeMap<String, chrono::DateTime<chrono::FixedOffset>> {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let scan = dynamodb
        .scan()
        .table_name(&stack.checkpoint_table)
        .send()
        .await
        .unwrap();
    scan.items()
        .iter()
        .filter_map(|item| {
            let at = |name: &str| {
                let text = item.get(name)?.as_s().ok()?;
                Some(chrono::DateTime::parse_from_rfc3339(text).unwrap())
            };
            let last = at("lease_renewed_at").max(at("lease_changed_at"))?;
            Some((item["shard_id"].as_s().unwrap().clone(), last))
        })
        .collect()
}

/// The shards whose reader runs, by the run's log: the last word on each was a start.
fn reading(log: &str) -> BTreeSet<String> {
    let mut running = BTreeSet::new();
    for line in log.lines() {
        let Ok(line) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(shard) = line["fields"]["shard_id"].as_str() else {
            continue;
        };
        match line["fields"]["message"].as_str() {
            Some("Lease taken; starting the shard's reader.") => running.insert(shard.to_owned()),
            Some("Lease lost; stopping the shard's reader." | "Shard reader finished.") => {
                running.remove(shard)
            }
            _ => false,
        };
    }
    running
}

/// When the run's log first says, after `since`, that it stopped each shard's reader.
fn readers_stopped(
    log: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> BTreeMap<String, chrono::DateTime<chrono::FixedOffset>> {
    let mut stopped = BTreeMap::new();
    for line in log.lines() {
        let Ok(line) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if line["fields"]["message"] != "Lease lost; stopping the shard's reader." {
            continue;
        }
        let at = chrono::DateTime::parse_from_rfc3339(line["timestamp"].as_str().unwrap()).unwrap();
        let shard = line["fields"]["shard_id"].as_str().unwrap().to_owned();
        if at >= since {
            stopped.entry(shard).or_insert(at);
        }
    }
    stopped
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_crash_nothing_and_a_refused_item_is_dead_lettered() {
    let config = common::sdk_config();
    let stack = create_stack_with_shards(&config, 2).await;
    let proxy = FaultProxy::start(&common::endpoint()).await;
    let (records, valid) = records(2_000, 32);
    // Every table write of one symbol's ticks is refused as invalid.
    let refused_symbol = first_symbol(&records);
    let needle = format!(r#""symbol":{{"S":"{refused_symbol}"}}"#);
    proxy.fail_always(&needle, Fault::JsonError("ValidationException"));
    // And the lake may not be written at all, for now.
    let lake = format!("PUT /{}/ticks/", stack.bucket);
    proxy.fail_always(&lake, Fault::S3AccessDenied);

    let mut run = run_through(&stack, &proxy);
    let last = put_records(&config, &stack.stream, &records).await;
    let answer = health_until(&run, "the lake refused", |a| {
        names(a, "refused", "lake writes")
    })
    .await;
    assert!(
        !answer.restart_helps,
        "a new process would meet the same refusal"
    );
    let check_ignoring_refusals = std::process::Command::new(env!("CARGO_BIN_EXE_kinetick"))
        .args(["health", "--ignore-refusals", "--address", &run.health])
        .output()
        .unwrap();
    assert!(
        check_ignoring_refusals.status.success(),
        "the container check does not have the task replaced for a refusal"
    );
    assert!(run.is_running(), "a refusal does not stop the process");

    // Once the permission is back (the refused item stays refused), everything flows.
    proxy.clear();
    proxy.fail_always(&needle, Fault::JsonError("ValidationException"));
    health_until(&run, "healthy again", |a| a.healthy).await;
    wait_for_checkpoints(&config, &stack.checkpoint_table, &last).await;
    let _log = terminate(run);

    let rows = lake_rows(&config, &stack.bucket).await;
    assert_eq!(rows.len(), valid, "every tick is in the lake");
    let refused = rows.iter().filter(|r| r.tick.0 == refused_symbol).count();
    assert!(refused > 0);
    let (items, _) = table_keys(&config, &stack.ticks_table).await;
    assert_eq!(items, valid - refused, "every other tick is in the table");
    let letters = refused_dead_letters(&config, &stack.bucket).await;
    assert_eq!(letters.len(), refused, "each refused tick is a dead letter");
    for letter in &letters {
        assert_eq!(letter["reason_code"], "refused_by_table");
        assert_eq!(letter["partition_key"], refused_symbol.as_str());
        let reason = letter["reason"].as_str().unwrap();
        assert!(reason.contains("ValidationException"), "{reason}");
    }
}

/// The symbol of the first record that has one.
fn first_symbol(records: &[(String, bytes::Bytes)]) -> String {
    records
        .iter()
        .find_map(|(_, data)| {
            let json: serde_json::Value = serde_json::from_slice(data).ok()?;
            Some(json["symbol"].as_str()?.to_owned())
        })
        .unwrap()
}

/// Every dead letter of an item the table refused, as JSON.
async fn refused_dead_letters(config: &SdkConfig, bucket: &str) -> Vec<serde_json::Value> {
    let lines = dead_letter_lines(config, bucket).await;
    let refused = lines
        .into_iter()
        .filter(|(key, _)| key.contains("/refused-by-table-"));
    refused.map(|(_, letter)| letter).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_under_the_same_worker_id_reads_nothing_twice() {
    let config = common::sdk_config();
    let stack = create_stack_with_shards(&config, 2).await;
    let (records, valid) = records(2_000, 41);
    let settings = [("KINETICK_LEASE__WORKER_ID", "twin")];
    let first = start_run(&stack, &settings);
    let deadline = Instant::now() + Duration::from_secs(30);
    while owners(&config, &stack)
        .await
        .values()
        .filter(|o| *o == "twin")
        .count()
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "the first process took no leases"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let second = start_run(&stack, &settings);
    let answer = health_until(&second, "refused: worker id", |a| {
        names(a, "refused", "worker id")
    })
    .await;
    assert!(
        !answer.restart_helps,
        "a new task under the same id would meet the same"
    );
    let last = put_records(&config, &stack.stream, &records).await;
    wait_for_checkpoints(&config, &stack.checkpoint_table, &last).await;
    let second_log = terminate(second);
    let _first_log = terminate(first);
    assert_exactly_once(&config, &stack, valid).await;
    if let Some(log) = second_log.text() {
        assert!(
            !log.contains("starting the shard's reader"),
            "the second process read a shard of the first"
        );
    }
}
