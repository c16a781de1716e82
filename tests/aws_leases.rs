//! Scale-out through leases, with real `kinetick run` processes on the AWS emulator: workers
//! split the shards evenly, a joining worker takes its share, a worker stopped with SIGTERM hands
//! its shards over at once, and a worker killed with `kill -9` mid-stream has its shards taken
//! over after the failover time, with every tick written exactly once and the same computed
//! values as a run without the kill.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use common::stack::{
    Run, Stack, assert_exactly_once, assert_same_values, computed, create_stack_with_shards,
    owners, put_records, records, start_run, terminate, wait_for_checkpoints,
};

const SHARDS: i32 = 8;

/// One test at a time: each runs several workers, and their timings are part of what is tested.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Leases held by each worker, fewest first.
async fn shares(config: &SdkConfig, stack: &Stack) -> Vec<usize> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for owner in owners(config, stack).await.into_values() {
        *counts.entry(owner).or_default() += 1;
    }
    let mut shares: Vec<usize> = counts.into_values().collect();
    shares.sort();
    shares
}

async fn wait_for_shares(config: &SdkConfig, stack: &Stack, expected: &[usize], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let shares = shares(config, stack).await;
        if shares == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "leases split {shares:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every one of `shards` has an owner other than `gone`.
async fn wait_taken_over(config: &SdkConfig, stack: &Stack, shards: &[String], gone: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let owners = owners(config, stack).await;
        let taken = shards
            .iter()
            .all(|shard| owners.get(shard).is_some_and(|owner| owner != gone));
        if taken {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{shards:?} of {gone} not taken over: {owners:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn worker(stack: &Stack, name: &str, settings: &[(&str, &str)]) -> Run {
    let mut all = vec![("KINETICK_LEASE__WORKER_ID", name)];
    all.extend_from_slice(settings);
    start_run(stack, &all)
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_split_shards_evenly_and_hand_them_over_on_sigterm() {
    let _serial = SERIAL.lock().await;
    let config = common::sdk_config();
    let stack = create_stack_with_shards(&config, SHARDS).await;
    let mut workers: BTreeMap<&str, Run> = ["w1", "w2", "w3"]
        .into_iter()
        .map(|name| (name, worker(&stack, name, &[])))
        .collect();
    wait_for_shares(&config, &stack, &[2, 3, 3], Duration::from_secs(60)).await;

    workers.insert("w4", worker(&stack, "w4", &[]));
    wait_for_shares(&config, &stack, &[2, 2, 2, 2], Duration::from_secs(60)).await;

    // SIGTERM: the worker checkpoints and releases; the others take its shards at once.
    let leaving: Vec<String> = owners(&config, &stack)
        .await
        .into_iter()
        .filter(|(_, owner)| owner == "w4")
        .map(|(shard, _)| shard)
        .collect();
    let stopped_at = Instant::now();
    let _w4_log = terminate(workers.remove("w4").unwrap());
    wait_taken_over(&config, &stack, &leaving, "w4").await;
    let took = stopped_at.elapsed();
    eprintln!("shards of the stopped worker taken over {took:?} after SIGTERM");
    assert!(took < Duration::from_secs(2), "hand-off took {took:?}");
    wait_for_shares(&config, &stack, &[2, 3, 3], Duration::from_secs(30)).await;

    for (_, child) in workers {
        let _ = terminate(child);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_stream_loses_nothing_and_changes_nothing() {
    let _serial = SERIAL.lock().await;
    const FAILOVER: &str = "3s";
    let config = common::sdk_config();
    let (records, valid) = records(6_000, 31);
    let settings = [
        ("KINETICK_LEASE__FAILOVER_TIME", FAILOVER),
        ("KINETICK_LEASE__POLL_INTERVAL", "500ms"),
    ];

    // The reference: one worker, never interrupted.
    let reference = create_stack_with_shards(&config, SHARDS).await;
    let last = put_records(&config, &reference.stream, &records).await;
    let child = worker(&reference, "solo", &settings);
    wait_for_checkpoints(&config, &reference.checkpoint_table, &last).await;
    let _reference_log = terminate(child);
    let expected = computed(assert_exactly_once(&config, &reference, valid).await);

    let stack = create_stack_with_shards(&config, SHARDS).await;
    let mut workers: BTreeMap<&str, Run> = ["w1", "w2", "w3"]
        .into_iter()
        .map(|name| (name, worker(&stack, name, &settings)))
        .collect();
    wait_for_shares(&config, &stack, &[2, 3, 3], Duration::from_secs(60)).await;
    put_records(&config, &stack.stream, &records[..3_000]).await;
    // Kill a worker as soon as it has checkpointed something: mid-stream, work in flight.
    let victim_shards: Vec<String> = loop {
        let shards: Vec<String> = owners(&config, &stack)
            .await
            .into_iter()
            .filter(|(_, owner)| owner == "w1")
            .map(|(shard, _)| shard)
            .collect();
        let checkpointed = common::stack::checkpoints(&config, &stack.checkpoint_table).await;
        if shards.iter().any(|shard| checkpointed.contains_key(shard)) {
            break shards;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The rest of the stream goes in before the kill, so the emulator is not busy taking it
    // while the failover is timed; the workers are still reading when w1 dies.
    let last = put_records(&config, &stack.stream, &records[3_000..]).await;
    let _victim_log = workers.remove("w1").unwrap().kill();
    let killed_at = Instant::now();

    wait_taken_over(&config, &stack, &victim_shards, "w1").await;
    let took = killed_at.elapsed();
    eprintln!("shards of the killed worker taken over {took:?} after kill -9");
    // Expected: the failover time plus a poll or two and the emulator's latency (4.2 s measured
    // on an idle machine). The bound is loose so a busy machine does not fail it; it still catches
    // a take-over that waits for anything but the lease's expiry (the stop timeout, a restart).
    assert!(took < Duration::from_secs(15), "failover took {took:?}");

    wait_for_checkpoints(&config, &stack.checkpoint_table, &last).await;
    let _logs: Vec<_> = workers.into_values().map(terminate).collect();
    let actual = computed(assert_exactly_once(&config, &stack, valid).await);
    assert_same_values(&actual, &expected);
}
