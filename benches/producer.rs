//! Throughput of `kinetick produce`'s producer: simulated ticks encoded and batched into
//! `PutRecords` requests (one record per symbol per request, 500 records and 5 MiB at most), in a
//! dry run that sends nothing and against the AWS emulator (a 4-shard stream).
//!
//! `cargo bench --bench producer` sends 200,000 ticks dry and 20,000 to the emulator (needs
//! `AWS_EMULATOR_URL`, as `scripts/test.sh` sets it); under `cargo test` it runs briefly as a
//! smoke test.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use kinetick::producer::simulated::{SimulatedRun, produce};
use kinetick::producer::simulator::SimulatorConfig;
use kinetick::producer::{DryRunSink, KinesisSink, RecordSink, Stats};

async fn measure(sink: Arc<dyn RecordSink>, count: u64, symbols: usize) -> Stats {
    let run = SimulatedRun {
        simulator: SimulatorConfig {
            symbols,
            ..SimulatorConfig::default()
        },
        rate: 0,
        count: Some(count),
        duration: None,
        progress: false,
    };
    let (stats, result) = produce(run, sink).await;
    result.expect("every record sent");
    assert_eq!(stats.sent, count);
    stats
}

fn print(what: &str, stats: &Stats) {
    println!(
        "{what:<32} {:>9.0} ticks/s  ({} ticks, {} requests, {:.2} s)",
        stats.sent as f64 / stats.elapsed.as_secs_f64(),
        stats.sent,
        stats.requests,
        stats.elapsed.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let (dry, emulated) = match std::env::args().any(|arg| arg == "--bench") {
        true => (200_000, 20_000),
        false => (5_000, 500),
    };
    for symbols in [100, 1_000] {
        let stats = measure(Arc::new(DryRunSink), dry, symbols).await;
        print(&format!("dry run, {symbols} symbols"), &stats);
    }
    let config = common::sdk_config();
    let stream = common::unique("producer-bench");
    let client = aws_sdk_kinesis::Client::new(&config);
    client
        .create_stream()
        .stream_name(&stream)
        .shard_count(4)
        .send()
        .await
        .unwrap();
    for symbols in [100, 1_000] {
        let sink = Arc::new(KinesisSink::new(client.clone(), &stream));
        let stats = measure(sink, emulated, symbols).await;
        print(&format!("emulator, {symbols} symbols"), &stats);
    }
}
