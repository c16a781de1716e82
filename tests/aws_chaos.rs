//! Chaos: workers killed (`kill -9`) or stopped (SIGTERM) at random moments while ticks flow,
//! replaced by new ones, over several trials. After each trial every tick is in DynamoDB and the
//! lake exactly once, with the computed values of an undisturbed run.
//!
//! `CHAOS_TRIALS` (default 1, what the test suite runs) and `CHAOS_SEED` (default: the clock;
//! printed, to replay a failing trial) steer it; `scripts/chaos.sh` runs a longer series.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::stack::{
    Run, assert_exactly_once, assert_same_values, computed, create_stack_with_shards, put_records,
    records, start_run, terminate, wait_for_checkpoints,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SHARDS: i32 = 8;
const RECORDS: usize = 4_000;
const BURSTS: usize = 4;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| v.parse().expect("a number"))
}

const SETTINGS: [(&str, &str); 2] = [
    ("KINETICK_LEASE__FAILOVER_TIME", "3s"),
    ("KINETICK_LEASE__POLL_INTERVAL", "500ms"),
];

fn worker(stack: &common::stack::Stack, name: &str) -> Run {
    let mut settings = vec![("KINETICK_LEASE__WORKER_ID", name)];
    settings.extend(SETTINGS);
    start_run(stack, &settings)
}

#[tokio::test(flavor = "multi_thread")]
async fn random_kills_and_stops_lose_nothing_and_change_nothing() {
    let config = common::sdk_config();
    let trials = env_number("CHAOS_TRIALS", 1);
    let seed = env_number(
        "CHAOS_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    );
    let mut rng = StdRng::seed_from_u64(seed);
    eprintln!("chaos: {trials} trial(s), CHAOS_SEED={seed}");
    for trial in 0..trials {
        let (records, valid) = records(RECORDS, rng.random());

        let reference = create_stack_with_shards(&config, SHARDS).await;
        let last = put_records(&config, &reference.stream, &records).await;
        let run = worker(&reference, "solo");
        wait_for_checkpoints(&config, &reference.checkpoint_table, &last).await;
        let reference_log = terminate(run);
        let expected = computed(assert_exactly_once(&config, &reference, valid).await);

        let stack = create_stack_with_shards(&config, SHARDS).await;
        let mut next = 0;
        let mut spawn = |stack| {
            next += 1;
            (format!("w{next}"), worker(stack, &format!("w{next}")))
        };
        let mut workers: Vec<(String, Run)> = (0..3).map(|_| spawn(&stack)).collect();
        let mut events = Vec::new();
        let mut logs = Vec::new();
        let mut last = BTreeMap::new();
        for burst in records.chunks(RECORDS / BURSTS) {
            last.extend(put_records(&config, &stack.stream, burst).await);
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..2_000))).await;
            let (name, run) = workers.remove(rng.random_range(0..workers.len()));
            if rng.random_bool(0.5) {
                logs.push(run.kill());
                events.push(format!("kill -9 {name}"));
            } else {
                logs.push(terminate(run));
                events.push(format!("SIGTERM {name}"));
            }
            workers.push(spawn(&stack));
        }
        eprintln!("chaos trial {trial}: {}", events.join(", "));
        wait_for_checkpoints(&config, &stack.checkpoint_table, &last).await;
        logs.extend(workers.into_iter().map(|(_, run)| terminate(run)));
        let actual = computed(assert_exactly_once(&config, &stack, valid).await);
        assert_same_values(&actual, &expected);
        eprintln!("chaos trial {trial}: ok ({valid} ticks exactly once, same values)");
        drop((reference_log, logs)); // a passed trial's logs are not needed
    }
}
