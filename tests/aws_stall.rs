//! A stale owner changes nothing, with real `kinetick run` processes on the AWS emulator: a
//! worker frozen (SIGSTOP) mid-stream past its leases, whose shards another worker takes over and
//! carries on, then resumes (SIGCONT) with its buffers and in-flight work as they were. Whatever
//! it still tries to write, every tick is in the table and the lake exactly once with the values
//! of an undisturbed run, every one-minute bar equals the bar of its ticks in the lake, every
//! alert reaches the topic's (FIFO) queue exactly once (and the alerts are those of the
//! undisturbed run), and the stale owner says that it stopped writing for the shards it lost.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use common::stack::{
    Run, Stack, assert_bars_match_lake, assert_exactly_once, assert_same_values, checkpoints,
    computed, create_stack_with_shards, owners, put_records, records, start_run, terminate,
    tick_object_keys, wait_for_checkpoints,
};

const SHARDS: i32 = 4;
const RECORDS: usize = 3_000;
const SETTINGS: [(&str, &str); 4] = [
    ("KINETICK_LEASE__FAILOVER_TIME", "3s"),
    ("KINETICK_LEASE__POLL_INTERVAL", "500ms"),
    // Files and checkpoints every half second, so both owners write several during the test.
    ("KINETICK_CHECKPOINT__INTERVAL", "500ms"),
    // Ticks and one-minute bars: a late bar of the stale owner would be an older one.
    ("KINETICK_TABLE__MODE", "both"),
];

/// What a worker logs when it stops writing for a shard whose lease it no longer holds (or may no
/// longer hold).
const STOPPED_WRITING: [&str; 2] = [
    "Lease lost; stopping the shard's reader.",
    "Lease may have expired; no longer writing for the shard.",
];

fn worker(stack: &Stack, name: &str) -> Run {
    let mut settings = vec![("KINETICK_LEASE__WORKER_ID", name)];
    settings.extend(SETTINGS);
    start_run(stack, &settings)
}

fn owned_by(owners: &BTreeMap<String, String>, worker: &str) -> Vec<String> {
    owners
        .iter()
        .filter(|(_, owner)| *owner == worker)
        .map(|(shard, _)| shard.clone())
        .collect()
}

/// Kinesis sequence numbers are decimal strings of up to 56 digits.
fn is_after(sequence: &str, than: Option<&String>) -> bool {
    than.is_none_or(|than| (sequence.len(), sequence) > (than.len(), than.as_str()))
}

/// Keys of the lake's tick files, each with the shard it names
/// (`ticks/dt=YYYY-MM-DD/{shard}-{first position}.parquet`).
async fn lake_keys(config: &SdkConfig, bucket: &str) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    for key in tick_object_keys(config, bucket).await {
        let shard = key
            .rsplit('/')
            .next()
            .and_then(|name| name.strip_suffix(".parquet"))
            .and_then(|name| name.rsplit_once('-'))
            .map(|(shard, _first)| shard.to_owned())
            .unwrap_or_else(|| panic!("a lake key names its shard: {key}"));
        keys.insert(key, shard);
    }
    keys
}

/// Milliseconds since the epoch, the unit of the alerts' publish times.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The `id` of every alert in the queue (from the JSON body, which every version carries) and when
/// SNS took it (ms since the epoch), in the order received.
async fn alerts(config: &SdkConfig, queue_url: &str) -> Vec<(String, i64)> {
    common::drain_queue(config, queue_url)
        .await
        .iter()
        .map(|envelope| {
            let body = common::alert_of(envelope);
            let id = body["id"]
                .as_str()
                .unwrap_or_else(|| panic!("an id: {body}"));
            let published =
                chrono::DateTime::parse_from_rfc3339(envelope["Timestamp"].as_str().unwrap())
                    .unwrap()
                    .timestamp_millis();
            (id.to_owned(), published)
        })
        .collect()
}

/// When (ms since the epoch) a run's log first says, at or after `since`, that it stopped writing
/// for a shard. By the time in the line, not its place in the file: a frozen run logs nothing
/// while frozen, so a line stamped after the freeze was logged after the thaw, however late the
/// writer flushed it.
fn stopped_writing(log: &str, since: i64) -> Option<i64> {
    log.lines()
        .filter(|line| STOPPED_WRITING.iter().any(|message| line.contains(message)))
        .filter_map(|line| {
            let line: serde_json::Value = serde_json::from_str(line).ok()?;
            let at = chrono::DateTime::parse_from_rfc3339(line["timestamp"].as_str()?).ok()?;
            Some(at.timestamp_millis())
        })
        .find(|at| *at >= since)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_owner_that_resumes_changes_nothing() {
    let started = Instant::now();
    let config = common::sdk_config();
    let (records, valid) = records(RECORDS, 47);
    let half = RECORDS / 2;

    // The reference: one worker, never interrupted; with a long failover time, so that a busy
    // machine cannot make it doubt its own leases either.
    let reference = create_stack_with_shards(&config, SHARDS).await;
    let last = put_records(&config, &reference.stream, &records).await;
    let run = start_run(
        &reference,
        &[
            ("KINETICK_LEASE__WORKER_ID", "solo"),
            ("KINETICK_LEASE__FAILOVER_TIME", "60s"),
            ("KINETICK_CHECKPOINT__INTERVAL", "500ms"),
            ("KINETICK_TABLE__MODE", "both"),
        ],
    );
    wait_for_checkpoints(&config, &reference.checkpoint_table, &last).await;
    let _reference_log = terminate(run);
    let expected = computed(assert_exactly_once(&config, &reference, valid).await);
    let expected_alerts: BTreeSet<String> = alerts(&config, &reference.queue_url)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert!(
        !expected_alerts.is_empty(),
        "the records raise alerts, so a duplicate could show"
    );
    eprintln!(
        "reference: {valid} ticks, {} alerts, in {:?}",
        expected_alerts.len(),
        started.elapsed()
    );

    // Alerts go to a FIFO topic, which drops a repeat of an alert id: a publish that was under
    // way when w1 froze is the one repeat a standard topic could show (README, "Delivery
    // guarantee"); with it dropped, every alert must reach the queue exactly once.
    let (topic_arn, queue_url) = common::fifo_topic_and_queue(&config).await;
    let stack = Stack {
        topic_arn,
        queue_url,
        ..create_stack_with_shards(&config, SHARDS).await
    };
    let w1 = worker(&stack, "w1");
    let w2 = worker(&stack, "w2");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let owners = owners(&config, &stack).await;
        let share = SHARDS as usize / 2;
        if owned_by(&owners, "w1").len() == share && owned_by(&owners, "w2").len() == share {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the workers did not split the shards: {owners:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let split = checkpoints(&config, &stack.checkpoint_table).await;
    let mut last = put_records(&config, &stack.stream, &records[..half]).await;

    // Freeze w1 as soon as it reads every shard it owns and has checkpointed one of them past
    // the split: mid-stream, work in flight. A lease handed to w1 is in the table before w1
    // starts reading it, and w2 may have checkpointed it before handing it over.
    let deadline = Instant::now() + Duration::from_secs(30);
    let w1_shards = loop {
        let shards = owned_by(&owners(&config, &stack).await, "w1");
        let done = checkpoints(&config, &stack.checkpoint_table).await;
        let reading = w1.log_text().is_none_or(|log| {
            shards.iter().all(|shard| {
                log.lines().any(|line| {
                    line.contains("Lease taken; starting the shard's reader.")
                        && line.contains(&format!("\"{shard}\""))
                })
            })
        });
        let checkpointed = shards.iter().any(|shard| {
            done.get(shard)
                .is_some_and(|at| is_after(at, split.get(shard)))
        });
        if reading && checkpointed {
            break shards;
        }
        assert!(Instant::now() < deadline, "w1 checkpointed nothing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    w1.freeze();
    let (frozen_at, frozen_ms) = (Instant::now(), now_ms());
    let w1_checkpoints = checkpoints(&config, &stack.checkpoint_table).await;
    let keys_before = lake_keys(&config, &stack.bucket).await;
    last.extend(put_records(&config, &stack.stream, &records[half..]).await);

    // w2 takes all of w1's shards and carries one of them past w1's checkpoint, lake file and all.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut taken_after = None;
    let carried = loop {
        let owners = owners(&config, &stack).await;
        if w1_shards
            .iter()
            .all(|shard| owners.get(shard).is_some_and(|o| o == "w2"))
        {
            let done = checkpoints(&config, &stack.checkpoint_table).await;
            let new_files: BTreeSet<String> = lake_keys(&config, &stack.bucket)
                .await
                .into_iter()
                .filter(|(key, _)| !keys_before.contains_key(key))
                .map(|(_, shard)| shard)
                .collect();
            let took = *taken_after.get_or_insert_with(|| frozen_at.elapsed());
            let carried = w1_shards.iter().find(|shard| {
                done.get(*shard)
                    .is_some_and(|at| is_after(at, w1_checkpoints.get(*shard)))
                    && new_files.contains(*shard)
            });
            if let Some(shard) = carried {
                eprintln!("w2 took w1's shards {took:?} after the freeze");
                break shard.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "w2 did not carry on w1's shards {w1_shards:?}: owners {owners:?}, checkpoints {:?} \
             (w1's {w1_checkpoints:?})",
            checkpoints(&config, &stack.checkpoint_table).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let thawed_ms = now_ms();
    w1.thaw();
    eprintln!(
        "w1 frozen for {:?}; w2 checkpointed {carried} past w1 and wrote a new file of it",
        frozen_at.elapsed()
    );

    // The resumed w1 notices it lost its leases, and both carry on to the end of the stream.
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(log) = w1.log_text() {
        if let Some(at) = stopped_writing(&log, frozen_ms) {
            eprintln!(
                "w1 stopped writing for a lost shard {} ms after the thaw",
                at - thawed_ms
            );
            break;
        }
        if Instant::now() > deadline {
            break; // asserted below, once the output is checked
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for_checkpoints(&config, &stack.checkpoint_table, &last).await;
    let w1_log = terminate(w1);
    let _w2_log = terminate(w2);

    let rows = assert_exactly_once(&config, &stack, valid).await;
    let positions: BTreeMap<(String, i64), (String, String)> = rows
        .iter()
        .map(|row| {
            (
                row.tick.clone(),
                (row.position.0.clone(), row.position.1.clone()),
            )
        })
        .collect();
    assert_bars_match_lake(&config, &stack, &rows).await;
    assert_same_values(&computed(rows), &expected);
    // Where an alert's tick is in the stream, against w1's checkpoint at the freeze: past it, the
    // alert was not committed when w1 stopped; at or before it, it was.
    let whence = |id: &str| {
        // `{symbol}-{kind}-{event time ms}-{sequence}`, the symbol possibly with dashes.
        let mut parts = id.rsplitn(4, '-');
        let (_, time, _, symbol) = (parts.next(), parts.next(), parts.next(), parts.next());
        let tick = (
            symbol.unwrap_or_default().to_owned(),
            time.and_then(|t| t.parse().ok()),
        );
        let Some((shard, sequence)) = tick.1.and_then(|t| positions.get(&(tick.0, t))) else {
            return "tick not found".to_owned();
        };
        match w1_checkpoints.get(shard) {
            Some(at) if !is_after(sequence, Some(at)) => {
                format!("{shard} at {sequence}, COMMITTED by w1 at {at}")
            }
            at => format!("{shard} at {sequence}, past w1's checkpoint {at:?}"),
        }
    };
    let alerts = alerts(&config, &stack.queue_url).await;
    let phase = |published: i64| match published {
        t if t < frozen_ms => "before the freeze",
        t if t < thawed_ms => "while w1 was frozen",
        _ => "after the thaw",
    };
    let mut by_phase: BTreeMap<&str, usize> = BTreeMap::new();
    let mut times: BTreeMap<&String, Vec<i64>> = BTreeMap::new();
    for (id, published) in &alerts {
        *by_phase.entry(phase(*published)).or_default() += 1;
        times.entry(id).or_default().push(*published);
    }
    eprintln!("alerts published: {by_phase:?}");
    // Each duplicate with its publish times in seconds from the freeze (w1 thawed at +thaw).
    let twice: Vec<String> = times
        .iter()
        .filter(|(_, times)| times.len() > 1)
        .map(|(id, times)| {
            let at: Vec<String> = times
                .iter()
                .map(|t| format!("{:+.1}s", (t - frozen_ms) as f64 / 1e3))
                .collect();
            format!("{id} at {} ({})", at.join(", "), whence(id))
        })
        .collect();
    assert!(
        twice.is_empty(),
        "alerts published more than once ({} of {}; thaw at {:+.1}s):\n{}",
        twice.len(),
        times.len(),
        (thawed_ms - frozen_ms) as f64 / 1e3,
        twice.join("\n")
    );
    let ids: BTreeSet<&String> = times.keys().copied().collect();
    let missing: Vec<String> = expected_alerts
        .iter()
        .filter(|id| !ids.contains(id))
        .map(|id| format!("{id} ({})", whence(id)))
        .collect();
    let unexpected: Vec<_> = ids
        .iter()
        .filter(|id| !expected_alerts.contains(**id))
        .collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "the alerts of the reference ({}): {} missing {missing:?}, {} not in the reference \
         {unexpected:?}",
        expected_alerts.len(),
        missing.len(),
        unexpected.len()
    );
    match w1_log.text() {
        Some(log) => assert!(
            stopped_writing(&log, frozen_ms).is_some(),
            "after the thaw, the stale owner logs one of {STOPPED_WRITING:?}"
        ),
        None => eprintln!("TEST_RUN_LOGS is set: w1's log line is not checked"),
    }
    eprintln!("stall: ok in {:?}", started.elapsed());
}
