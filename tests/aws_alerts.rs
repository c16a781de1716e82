//! Alerts under `kill -9`: a worker killed while it publishes, and a new one that takes over,
//! leave every alert id in the subscribed queue, and repeat only alerts the killed worker had
//! published but not yet marked published (in flight); never an alert of a range that was
//! checkpointed or marked.
//!
//! One trial here; `ALERT_KILL_TRIALS` runs more (`scripts/chaos.sh` sets it).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use common::stack::{
    assert_exactly_once, checkpoints, create_stack, put_records, records, start_run, terminate,
    wait_for_checkpoints,
};
use kinetick::model::tick::{Position, SequenceNumber};

/// The id of every alert in the queue, deleting what it reads.
async fn drain(config: &SdkConfig, queue_url: &str) -> Vec<String> {
    common::drain_queue(config, queue_url)
        .await
        .iter()
        .map(|envelope| {
            common::alert_of(envelope)["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Messages waiting in the queue, as SQS approximates them.
async fn waiting(config: &SdkConfig, queue_url: &str) -> usize {
    let name = aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages;
    aws_sdk_sqs::Client::new(config)
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(name.clone())
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&name)?.parse().ok())
        .unwrap_or(0)
}

/// How far each shard's alerts are marked published, or checkpointed, whichever is further.
async fn settled(config: &SdkConfig, table: &str) -> BTreeMap<String, SequenceNumber> {
    let scan = aws_sdk_dynamodb::Client::new(config)
        .scan()
        .table_name(table)
        .send()
        .await
        .unwrap();
    scan.items()
        .iter()
        .filter_map(|item| {
            let checkpoint = item
                .get("sequence_number")
                .map(|s| SequenceNumber::new(s.as_s().unwrap().as_str()));
            let marked = item.get("alerts_published").map(|json| {
                let position: Position = serde_json::from_str(json.as_s().unwrap()).unwrap();
                position.sequence
            });
            let settled = checkpoint.into_iter().chain(marked).max()?;
            Some((item["shard_id"].as_s().unwrap().clone(), settled))
        })
        .collect()
}

/// The sequence number of the tick that raised an alert: the id ends with its position
/// (`<symbol>-<kind>-<event time>-<sequence>[.<sub-sequence>]`).
fn alert_sequence(id: &str) -> SequenceNumber {
    let position = id.rsplit('-').next().unwrap();
    SequenceNumber::new(position.split('.').next().unwrap())
}

/// The symbol and event time of the tick that raised an alert.
fn alert_tick(id: &str) -> (String, i64) {
    let mut parts = id.rsplitn(4, '-');
    let (_, time, _, symbol) = (parts.next(), parts.next(), parts.next(), parts.next());
    (symbol.unwrap().to_owned(), time.unwrap().parse().unwrap())
}

async fn one_trial(config: &SdkConfig, trial: u64) {
    let (records, valid) = records(6_000, 60 + trial);
    let stack = create_stack(config).await;
    put_records(config, &stack.stream, &records[..4_000]).await;
    let run = start_run(&stack, &[("KINETICK_CHECKPOINT__INTERVAL", "1s")]);
    // Kill while alerts are being published: once some have arrived and a shard has a
    // checkpoint, after a further pause that differs from trial to trial.
    let deadline = Instant::now() + Duration::from_secs(60);
    while waiting(config, &stack.queue_url).await == 0
        || checkpoints(config, &stack.checkpoint_table)
            .await
            .is_empty()
    {
        assert!(Instant::now() < deadline, "no alert and no checkpoint");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(137 * (trial % 5))).await;
    let _killed_log = run.kill();
    // The killed worker writes nothing more: this is what it had settled at the kill.
    let at_kill = settled(config, &stack.checkpoint_table).await;
    let before = drain(config, &stack.queue_url).await;

    let last = put_records(config, &stack.stream, &records[4_000..]).await;
    let run = start_run(&stack, &[]);
    wait_for_checkpoints(config, &stack.checkpoint_table, &last).await;
    let _log = terminate(run);
    let rows = assert_exactly_once(config, &stack, valid).await;
    let after = drain(config, &stack.queue_url).await;

    // Sequence numbers repeat across shards: a tick's shard is found by its symbol and time.
    let shard_of: HashMap<(String, i64), String> = rows
        .iter()
        .map(|row| (row.tick.clone(), row.position.0.clone()))
        .collect();
    let committed = |id: &str| {
        let sequence = alert_sequence(id);
        let shard = &shard_of[&alert_tick(id)];
        at_kill
            .get(shard)
            .is_some_and(|settled| &sequence <= settled)
    };
    let in_flight = before.iter().filter(|id| !committed(id)).count();
    let mut times: BTreeMap<&str, usize> = BTreeMap::new();
    for id in before.iter().chain(&after) {
        *times.entry(id).or_default() += 1;
    }
    let repeated: Vec<&str> = times
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| *id)
        .collect();
    eprintln!(
        "trial {trial}: {} alerts before the kill ({in_flight} not marked published), {} after, \
         {} repeated",
        before.len(),
        after.len(),
        repeated.len()
    );
    assert!(!times.is_empty(), "alerts were raised");
    assert!(
        repeated.iter().all(|id| !committed(id)),
        "an alert of a checkpointed or marked range was published again: {repeated:?}"
    );
    assert!(
        repeated.iter().all(|id| before.iter().any(|b| b == id)),
        "a repeat that the killed worker had not published: {repeated:?}"
    );
    assert!(repeated.len() <= in_flight);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_repeats_only_alerts_published_but_not_yet_marked() {
    let config = common::sdk_config();
    let trials: u64 = std::env::var("ALERT_KILL_TRIALS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    for trial in 0..trials {
        one_trial(&config, trial).await;
    }
}
