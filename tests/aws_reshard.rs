//! Resharding under `kinetick run`: one shard split and two merged mid-stream, with two workers.
//! Kinesis runs on kinesalite here (moto neither closes resharded parents nor routes writes to
//! their children); everything else on moto. No tick is lost or doubled, children are read only
//! after their parents are finished, and the children start from their parents' window state,
//! so every computed value equals a run on a stream that was never resharded; so do a child split
//! again before it held a record and records keyed otherwise than by symbol. A worker whose last
//! shard ends looks for children before it takes the stream for finished.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_kinesis::types::StreamStatus;
use bytes::Bytes;
use common::stack::{
    ComputedValues, Stack, assert_exactly_once, assert_same_values, computed,
    create_stack_with_shards, create_stack_with_stream_on, put_records, records, start_run,
    terminate, wait_for_checkpoints,
};
use kinetick::lease::LeaseStore;
use kinetick::lease::dynamodb::DynamoLeaseStore;

async fn wait_active(kinesis: &aws_sdk_kinesis::Client, stream: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let summary = kinesis
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .unwrap();
        if summary
            .stream_description_summary()
            .unwrap()
            .stream_status()
            == &StreamStatus::Active
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "stream {stream} did not become active"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Splits the stream's first shard in the middle of its hash range.
async fn split_first_shard(kinesis: &aws_sdk_kinesis::Client, stream: &str) {
    split_shard(kinesis, stream, "shardId-000000000000").await;
}

/// Splits one shard in the middle of its hash range.
async fn split_shard(kinesis: &aws_sdk_kinesis::Client, stream: &str, shard_id: &str) {
    let shards = kinesis
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .unwrap();
    let shard = shards
        .shards()
        .iter()
        .find(|s| s.shard_id() == shard_id)
        .unwrap_or_else(|| panic!("no shard {shard_id}"));
    let range = shard.hash_key_range().unwrap();
    let (start, end): (u128, u128) = (
        range.starting_hash_key().parse().unwrap(),
        range.ending_hash_key().parse().unwrap(),
    );
    kinesis
        .split_shard()
        .stream_name(stream)
        .shard_to_split(shard_id)
        .new_starting_hash_key((start + (end - start) / 2).to_string())
        .send()
        .await
        .unwrap();
    wait_active(kinesis, stream).await;
}

/// A stack whose stream is on kinesalite (the other resources on moto).
async fn stack_with_kinesalite_stream(shards: i32) -> Stack {
    let kinesis_config = common::sdk_config_at(&common::kinesis_endpoint());
    let stack = create_stack_with_stream_on(&common::sdk_config(), &kinesis_config, shards).await;
    wait_active(
        &aws_sdk_kinesis::Client::new(&kinesis_config),
        &stack.stream,
    )
    .await;
    stack
}

#[tokio::test(flavor = "multi_thread")]
async fn split_and_merge_mid_stream_lose_nothing_and_change_nothing() {
    let config = common::sdk_config();
    let kinesis_config = common::sdk_config_at(&common::kinesis_endpoint());
    let kinesis = aws_sdk_kinesis::Client::new(&kinesis_config);
    let (records, valid) = records(4_000, 41);
    let half = records.len() / 2;

    // The reference: the same records on a stream that is never resharded.
    let reference = create_stack_with_shards(&config, 3).await;
    let last = put_records(&config, &reference.stream, &records).await;
    let run = start_run(&reference, &[]);
    wait_for_checkpoints(&config, &reference.checkpoint_table, &last).await;
    let _reference_log = terminate(run);
    let expected = computed(assert_exactly_once(&config, &reference, valid).await);

    let stack = stack_with_kinesalite_stream(3).await;
    let endpoint = common::kinesis_endpoint();
    let settings = |worker| {
        [
            ("AWS_ENDPOINT_URL_KINESIS", endpoint.clone()),
            ("KINETICK_LEASE__WORKER_ID", worker),
            ("KINETICK_LEASE__SHARD_SYNC_INTERVAL", "1s".to_owned()),
        ]
    };
    let workers: Vec<_> = ["w1".to_owned(), "w2".to_owned()]
        .into_iter()
        .map(|worker| {
            let settings = settings(worker);
            let settings: Vec<(&str, &str)> =
                settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
            start_run(&stack, &settings)
        })
        .collect();

    let first = put_records(&kinesis_config, &stack.stream, &records[..half]).await;
    wait_for_checkpoints(&config, &stack.checkpoint_table, &first).await;

    // Split shard 0 in the middle of its range; merge shards 1 and 2.
    split_first_shard(&kinesis, &stack.stream).await;
    kinesis
        .merge_shards()
        .stream_name(&stack.stream)
        .shard_to_merge("shardId-000000000001")
        .adjacent_shard_to_merge("shardId-000000000002")
        .send()
        .await
        .unwrap();
    wait_active(&kinesis, &stack.stream).await;

    let second = put_records(&kinesis_config, &stack.stream, &records[half..]).await;
    assert!(
        second.keys().all(|shard| !first.contains_key(shard)),
        "after the reshard records go to the children: {second:?}"
    );
    wait_for_checkpoints(&config, &stack.checkpoint_table, &second).await;
    let _logs: Vec<_> = workers.into_iter().map(terminate).collect();

    let leases = DynamoLeaseStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        &stack.checkpoint_table,
    )
    .list()
    .await
    .unwrap();
    let lease = |id: &str| leases.iter().find(|l| l.shard_id.as_ref() == id).unwrap();
    for parent in [
        "shardId-000000000000",
        "shardId-000000000001",
        "shardId-000000000002",
    ] {
        assert!(lease(parent).shard_end, "parent {parent} finished");
    }
    assert_eq!(
        leases.len(),
        6,
        "3 parents, 2 split children, 1 merged child"
    );
    let merged = leases.iter().find(|l| l.parents.len() == 2).unwrap();
    assert_eq!(merged.parents.len(), 2);

    let actual = computed(assert_exactly_once(&config, &stack, valid).await);
    assert_same_values(&actual, &expected);
}

/// A worker whose last shard ends lists the shards again before it takes the stream for
/// finished, so it reads the children even when its next regular listing is an hour away.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_follows_a_split_between_shard_listings() {
    let config = common::sdk_config();
    let kinesis_config = common::sdk_config_at(&common::kinesis_endpoint());
    let kinesis = aws_sdk_kinesis::Client::new(&kinesis_config);
    let (records, valid) = records(1_000, 43);
    let stack = stack_with_kinesalite_stream(1).await;
    let run = start_run(
        &stack,
        &[
            ("AWS_ENDPOINT_URL_KINESIS", &common::kinesis_endpoint()),
            ("KINETICK_LEASE__SHARD_SYNC_INTERVAL", "1h"),
        ],
    );
    let first = put_records(&kinesis_config, &stack.stream, &records[..500]).await;
    wait_for_checkpoints(&config, &stack.checkpoint_table, &first).await;

    split_first_shard(&kinesis, &stack.stream).await;
    let second = put_records(&kinesis_config, &stack.stream, &records[500..]).await;
    assert_eq!(
        second.len(),
        2,
        "the rest goes to both children: {second:?}"
    );
    wait_for_checkpoints(&config, &stack.checkpoint_table, &second).await;
    let _log = terminate(run);
    assert_exactly_once(&config, &stack, valid).await;
}

/// Computed values of `records` on a one-shard stream that is never resharded.
async fn values_without_resharding(
    config: &SdkConfig,
    records: &[(String, Bytes)],
    valid: usize,
) -> ComputedValues {
    let reference = create_stack_with_shards(config, 1).await;
    let last = put_records(config, &reference.stream, records).await;
    let run = start_run(&reference, &[]);
    wait_for_checkpoints(config, &reference.checkpoint_table, &last).await;
    let _reference_log = terminate(run);
    computed(assert_exactly_once(config, &reference, valid).await)
}

/// One worker reads a one-shard stream (on kinesalite) that `reshard` changes once the first
/// half of `records` is checkpointed; returns the stack once the rest is checkpointed too, and
/// where the rest went.
async fn run_resharded(
    config: &SdkConfig,
    records: &[(String, Bytes)],
    reshard: impl AsyncFnOnce(&aws_sdk_kinesis::Client, &str),
) -> (Stack, BTreeMap<String, String>) {
    let kinesis_config = common::sdk_config_at(&common::kinesis_endpoint());
    let kinesis = aws_sdk_kinesis::Client::new(&kinesis_config);
    let half = records.len() / 2;
    let stack = stack_with_kinesalite_stream(1).await;
    let run = start_run(
        &stack,
        &[
            ("AWS_ENDPOINT_URL_KINESIS", &common::kinesis_endpoint()),
            ("KINETICK_LEASE__SHARD_SYNC_INTERVAL", "1s"),
        ],
    );
    let first = put_records(&kinesis_config, &stack.stream, &records[..half]).await;
    wait_for_checkpoints(config, &stack.checkpoint_table, &first).await;
    reshard(&kinesis, &stack.stream).await;
    let second = put_records(&kinesis_config, &stack.stream, &records[half..]).await;
    wait_for_checkpoints(config, &stack.checkpoint_table, &second).await;
    let _log = terminate(run);
    (stack, second)
}

/// A child shard split again before any record reached it ends empty; its children must still
/// start from the window state it inherited, so values equal a run without resharding.
#[tokio::test(flavor = "multi_thread")]
async fn a_child_split_again_before_any_record_passes_its_state_on() {
    let config = common::sdk_config();
    let (records, valid) = records(1_200, 47);
    let expected = values_without_resharding(&config, &records, valid).await;
    // shardId-000000000000 -> 1 and 2; 1 -> 3 and 4 before any record reaches 1.
    let (stack, second) = run_resharded(&config, &records, async |kinesis, stream| {
        split_first_shard(kinesis, stream).await;
        split_shard(kinesis, stream, "shardId-000000000001").await;
    })
    .await;
    assert!(
        !second.contains_key("shardId-000000000001"),
        "the split child holds no record: {second:?}"
    );
    let actual = computed(assert_exactly_once(&config, &stack, valid).await);
    assert_same_values(&actual, &expected);
}

/// Records keyed by something other than their symbol (one key per symbol, as a producer that
/// keys by desk or account would): a split sends each key's records to one child, and the
/// symbol's state must follow the key there, so values equal a run without resharding.
#[tokio::test(flavor = "multi_thread")]
async fn a_split_follows_partition_keys_that_are_not_the_symbol() {
    let config = common::sdk_config();
    let (records, valid) = records(1_200, 53);
    let records: Vec<_> = records
        .into_iter()
        .map(|(symbol, data)| (format!("desk-7/{symbol}"), data))
        .collect();
    let expected = values_without_resharding(&config, &records, valid).await;
    let (stack, second) = run_resharded(&config, &records, async |kinesis, stream| {
        split_first_shard(kinesis, stream).await;
    })
    .await;
    assert_eq!(second.len(), 2, "both children take records: {second:?}");
    let actual = computed(assert_exactly_once(&config, &stack, valid).await);
    assert_same_values(&actual, &expected);
}
