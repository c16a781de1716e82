//! Put -> alert latency and AWS requests per 1,000 ticks of `kinetick run` on the AWS emulator.
//!
//! A producer puts ticks into a 4-shard stream at a steady rate, each stamped with its put time;
//! every symbol crosses its price threshold at a fixed pace, so alerts come steadily. The latency of an alert is the SNS publish time (the `Timestamp` of the message
//! that reaches the subscribed queue) minus the put time of its tick. Request counts are
//! kinetick's own `<Service>Requests` metrics, read back from CloudWatch.
//!
//! `cargo bench --bench alert_latency` (needs `AWS_EMULATOR_URL`, as `scripts/test.sh` sets it)
//! runs 1,000 ticks/s for 30 s; under `cargo test` it runs briefly as a smoke test.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use common::stack::{Stack, create_stack, start_run, terminate};

const SYMBOLS: usize = 50;
const SERVICES: [&str; 5] = ["Kinesis", "DynamoDB", "S3", "SNS", "CloudWatch"];

struct Load {
    ticks_per_second: usize,
    seconds: u64,
    /// Each symbol's price crosses above the threshold once in this many of its ticks.
    crossing_every: usize,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let load = if std::env::args().any(|arg| arg == "--bench") {
        Load {
            ticks_per_second: 1_000,
            seconds: 30,
            crossing_every: 100,
        }
    } else {
        Load {
            ticks_per_second: 200,
            seconds: 3,
            crossing_every: 4,
        }
    };
    let config = common::sdk_config();
    let stack = create_stack(&config).await;
    let run = start_run(
        &stack,
        &[
            // Only the threshold rule: one alert per crossing.
            ("KINETICK_RULES__DEFAULT__PRICE_ABOVE", "100"),
            ("KINETICK_RULES__DEFAULT__COOLDOWN", "0s"),
            // Every crossing is sent: no budget holds any back.
            ("KINETICK_RULES__DEFAULT__MAX_ALERTS_PER_HOUR", "1000000"),
            ("KINETICK_ALERTS__MAX_PER_MINUTE", "1000000"),
            ("KINETICK_RULES__DEFAULT__TREND_CROSSOVER", "false"),
            ("KINETICK_RULES__DEFAULT__CHANGE_PERCENT", "1000000000"),
            ("KINETICK_RULES__DEFAULT__RETURN_ZSCORE", "1000000000"),
            ("KINETICK_RULES__DEFAULT__VOLUME_SPIKE", "1000000000"),
            ("KINETICK_METRICS__INTERVAL", "2s"),
            // Production checkpointing, not the tests' quick one.
            ("KINETICK_CHECKPOINT__INTERVAL", "30s"),
            ("KINETICK_CHECKPOINT__MAX_RECORDS", "20000"),
        ],
    );

    let ticks = produce(&config, &stack, &load).await;
    let expected_alerts = ticks / SYMBOLS / load.crossing_every * SYMBOLS;
    let latencies = collect_alert_latencies(&config, &stack, expected_alerts).await;
    // A graceful stop publishes the metrics counted since the last interval.
    let _log = terminate(run);

    assert_eq!(
        latencies.len(),
        expected_alerts,
        "every threshold crossing raised exactly one alert"
    );
    let requests = request_counts(&config, &stack).await;
    report(&load, ticks, latencies, &requests);
}

/// Puts ticks at the target rate, in one PutRecords call per 100 ms; returns how many.
async fn produce(config: &aws_config::SdkConfig, stack: &Stack, load: &Load) -> usize {
    let kinesis = aws_sdk_kinesis::Client::new(config);
    let per_call = load.ticks_per_second / 10;
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    let mut sent = 0;
    for _ in 0..load.seconds * 10 {
        interval.tick().await;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let entries = (0..per_call)
            .map(|i| {
                let n = sent + i;
                let symbol = format!("SYM{:02}", n % SYMBOLS);
                let crossing = (n / SYMBOLS) % load.crossing_every == load.crossing_every - 1;
                let price = if crossing { 101.0 } else { 99.0 };
                let tick = serde_json::json!({
                    "symbol": symbol, "price": price, "volume": 100, "timestamp": now_ms,
                });
                PutRecordsRequestEntry::builder()
                    .partition_key(symbol)
                    .data(aws_sdk_kinesis::primitives::Blob::new(tick.to_string()))
                    .build()
                    .unwrap()
            })
            .collect();
        let output = kinesis
            .put_records()
            .stream_name(&stack.stream)
            .set_records(Some(entries))
            .send()
            .await
            .unwrap();
        assert_eq!(output.failed_record_count(), Some(0));
        sent += per_call;
    }
    sent
}

/// Reads the alerts from the subscribed queue until `expected` arrived (or a minute passed), and
/// checks that no more follow; returns their put -> publish latencies in milliseconds.
async fn collect_alert_latencies(
    config: &aws_config::SdkConfig,
    stack: &Stack,
    expected: usize,
) -> Vec<i64> {
    let sqs = aws_sdk_sqs::Client::new(config);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut latencies = Vec::new();
    while latencies.len() < expected && Instant::now() < deadline {
        let received = sqs
            .receive_message()
            .queue_url(&stack.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for message in received.messages() {
            let envelope: serde_json::Value =
                serde_json::from_str(message.body().unwrap()).unwrap();
            let published =
                chrono::DateTime::parse_from_rfc3339(envelope["Timestamp"].as_str().unwrap())
                    .unwrap()
                    .timestamp_millis();
            let alert: serde_json::Value =
                serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
            latencies.push(published - alert["event_time_ms"].as_i64().unwrap());
            sqs.delete_message()
                .queue_url(&stack.queue_url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    let late = sqs
        .receive_message()
        .queue_url(&stack.queue_url)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap();
    assert!(
        late.messages().is_empty(),
        "no alert beyond one per crossing"
    );
    latencies
}

/// kinetick's own request counters per service, summed over the run.
async fn request_counts(config: &aws_config::SdkConfig, stack: &Stack) -> Vec<(&'static str, f64)> {
    let mut counts = Vec::new();
    for service in SERVICES {
        let name = format!("{service}Requests");
        counts.push((
            service,
            common::metric_sum(config, &stack.namespace, &name).await,
        ));
    }
    counts
}

fn report(load: &Load, ticks: usize, mut latencies: Vec<i64>, requests: &[(&str, f64)]) {
    latencies.sort_unstable();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "alert_latency: {ticks} ticks at {} ticks/s for {} s into {} shards, {} alerts",
        load.ticks_per_second,
        load.seconds,
        common::stack::SHARDS,
        latencies.len()
    );
    println!(
        "  put -> alert published: p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
        percentile(0.5),
        percentile(0.9),
        percentile(0.99),
        latencies.last().unwrap()
    );
    let thousands = ticks as f64 / 1000.0;
    let per_service: Vec<String> = requests
        .iter()
        .map(|(service, count)| format!("{service} {:.1}", count / thousands))
        .collect();
    println!("  AWS requests per 1,000 ticks: {}", per_service.join(", "));
}
