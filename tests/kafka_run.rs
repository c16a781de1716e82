//! `kinetick run` on a Kafka topic (a Kafka-protocol broker on loopback) with the AWS sinks on
//! the emulator: partitions play the shards and offsets the sequence numbers; every tick is
//! written once to the table and the lake, alerts reach the queue, checkpoints hold offsets; two
//! workers split the partitions, hand them over on SIGTERM and take them over after `kill -9`,
//! with the same values as a run without faults; a frozen broker makes the worker unhealthy,
//! naming the partitions that do not move, and once it answers again nothing is lost.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use common::health::{health_until, reasons};
use common::kafka;
use common::stack::{
    Run, Stack, assert_exactly_once, assert_same_values, checkpoints, computed, create_stack,
    owners, records, start_run, terminate, wait_for_checkpoints,
};

const PARTITIONS: usize = 4;

/// One test at a time: each runs workers whose timings are part of what is tested.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn worker(stack: &Stack, topic: &str, name: &str, extra: &[(&str, &str)]) -> Run {
    let settings = kafka::settings(topic);
    let mut all = kafka::with(&settings, &[("KINETICK_LEASE__WORKER_ID", name)]);
    all.extend_from_slice(extra);
    start_run(stack, &all)
}

/// Waits until the owners of the leases are `expected` (shards per worker, by worker).
async fn wait_for_owners(config: &SdkConfig, stack: &Stack, expected: &BTreeMap<&str, usize>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut shares: BTreeMap<String, usize> = BTreeMap::new();
        for owner in owners(config, stack).await.into_values() {
            *shares.entry(owner).or_default() += 1;
        }
        let reached = shares.len() == expected.len()
            && expected.iter().all(|(w, n)| shares.get(*w) == Some(n));
        if reached {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "leases held {shares:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One worker, never interrupted: every tick once, alerts in the queue, offsets checkpointed.
async fn reference_run(config: &SdkConfig, all: &[(String, bytes::Bytes)]) -> Stack {
    let stack = create_stack(config).await;
    let topic = kafka::create_topic(PARTITIONS);
    kafka::produce(&topic, all).await;
    let last = kafka::last_offsets(&topic, PARTITIONS, all);
    assert_eq!(last.len(), PARTITIONS, "every partition has records");
    let run = worker(&stack, &topic, "solo", &[]);
    wait_for_checkpoints(config, &stack.checkpoint_table, &last).await;
    let _log = terminate(run);
    // Checkpoints are offsets: each partition's stands at its last record's.
    assert_eq!(checkpoints(config, &stack.checkpoint_table).await, last);
    stack
}

#[tokio::test(flavor = "multi_thread")]
async fn a_topic_is_processed_like_a_stream_and_workers_fail_over_without_loss() {
    let _serial = SERIAL.lock().await;
    const FAILOVER: &str = "3s";
    let config = common::sdk_config();
    let (all, valid) = records(5_000, 47);

    let reference = reference_run(&config, &all).await;
    let rows = assert_exactly_once(&config, &reference, valid).await;
    assert!(
        rows.iter().all(|row| row.position.0.starts_with("ticks-")),
        "lake rows name their partition: {:?}",
        rows.first().map(|row| &row.position)
    );
    let alerts = common::drain_queue(&config, &reference.queue_url).await;
    assert!(!alerts.is_empty(), "alerts reach the queue");
    let expected = computed(rows);

    // Two workers split the partitions; one hands its own over on SIGTERM, a third joins, and
    // the second is killed mid-stream: its partitions are taken over after the failover time.
    let stack = create_stack(&config).await;
    let topic = kafka::create_topic(PARTITIONS);
    let settings = [
        ("KINETICK_LEASE__FAILOVER_TIME", FAILOVER),
        ("KINETICK_LEASE__POLL_INTERVAL", "500ms"),
    ];
    let w1 = worker(&stack, &topic, "w1", &settings);
    let w2 = worker(&stack, &topic, "w2", &settings);
    wait_for_owners(&config, &stack, &BTreeMap::from([("w1", 2), ("w2", 2)])).await;
    let half = all.len() / 2;
    kafka::produce(&topic, &all[..half]).await;
    wait_for_checkpoints(
        &config,
        &stack.checkpoint_table,
        &kafka::last_offsets(&topic, PARTITIONS, &all[..half]),
    )
    .await;
    let stopped_at = Instant::now();
    let _w1_log = terminate(w1);
    wait_for_owners(&config, &stack, &BTreeMap::from([("w2", PARTITIONS)])).await;
    eprintln!(
        "partitions handed over {:?} after SIGTERM",
        stopped_at.elapsed()
    );

    let w3 = worker(&stack, &topic, "w3", &settings);
    wait_for_owners(&config, &stack, &BTreeMap::from([("w2", 2), ("w3", 2)])).await;
    kafka::produce(&topic, &all[half..]).await;
    // Killed while it reads: some of its partitions are checkpointed past the first half, none
    // yet at the end.
    let _w2_log = w2.kill();
    let killed_at = Instant::now();
    wait_for_owners(&config, &stack, &BTreeMap::from([("w3", PARTITIONS)])).await;
    let took = killed_at.elapsed();
    eprintln!("partitions of the killed worker taken over {took:?} after kill -9");
    assert!(took < Duration::from_secs(15), "failover took {took:?}");

    let last = kafka::last_offsets(&topic, PARTITIONS, &all);
    wait_for_checkpoints(&config, &stack.checkpoint_table, &last).await;
    let _w3_log = terminate(w3);
    let actual = computed(assert_exactly_once(&config, &stack, valid).await);
    assert_same_values(&actual, &expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_broker_makes_the_worker_unhealthy_and_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let config = common::sdk_config();
    let broker = kafka::PrivateBroker::start();
    let stack = create_stack(&config).await;
    let topic = kafka::create_topic_on(&broker.bootstrap, 2);
    let (all, valid) = records(2_000, 53);
    let half = all.len() / 2;
    kafka::produce_on(&broker.bootstrap, &topic, &all[..half]).await;
    let settings = kafka::settings_on(&broker.bootstrap, &topic);
    let run_settings = kafka::with(
        &settings,
        &[
            ("KINETICK_KAFKA__REQUEST_TIMEOUT", "2s"),
            ("KINETICK_HEALTH__UNHEALTHY_AFTER", "3s"),
        ],
    );
    let run = start_run(&stack, &run_settings);
    wait_for_checkpoints(
        &config,
        &stack.checkpoint_table,
        &kafka::last_offsets(&topic, 2, &all[..half]),
    )
    .await;

    // Every call to the broker hangs: reads are abandoned at the request timeout, and the
    // worker says which shards do not move and why.
    broker.freeze();
    let answer = health_until(&run, "a stalled partition", |a| {
        reasons(a)
            .iter()
            .any(|(kind, what)| kind == "shard_stalled" && what.starts_with(&topic))
    })
    .await;
    assert!(
        answer.restart_helps,
        "a hung broker may answer a new process"
    );
    assert!(answer.body.contains("no answer within"), "{}", answer.body);
    broker.thaw();
    health_until(&run, "healthy again", |a| a.healthy).await;

    kafka::produce_on(&broker.bootstrap, &topic, &all[half..]).await;
    wait_for_checkpoints(
        &config,
        &stack.checkpoint_table,
        &kafka::last_offsets(&topic, 2, &all),
    )
    .await;
    let _log = terminate(run);
    assert_exactly_once(&config, &stack, valid).await;
}
