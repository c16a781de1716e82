//! The per-tick hot path of a shard: decode + validate a seed-format record, update the symbol's
//! windows, evaluate the rules. Target: >= 1.5 M ticks/s on one core.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use foldhash::HashMap;
use kinetick::model::decode::{DecodeLimits, decode_tick};
use kinetick::model::rules::RuleConfig;
use kinetick::model::state::SymbolState;
use kinetick::model::tick::{Position, SequenceNumber, Symbol};
use kinetick::model::window::WindowConfig;
use kinetick::producer::simulator::{MarketSimulator, RecordKind, SimulatorConfig};

const RECORDS: usize = 100_000;

fn hot_path(c: &mut Criterion) {
    let config = SimulatorConfig {
        symbols: 1_000,
        malformed_rate: 0.0,
        ..SimulatorConfig::default()
    };
    let records: Vec<Vec<u8>> = MarketSimulator::new(config)
        .filter(|r| r.kind != RecordKind::Malformed)
        .take(RECORDS)
        .map(|r| r.data)
        .collect();
    let mean_bytes = records.iter().map(Vec::len).sum::<usize>() / records.len();
    let limits = DecodeLimits::default();
    let rules = RuleConfig::default().for_symbol("any");
    let windows = WindowConfig::default();
    let shard: Arc<str> = "shardId-000000000000".into();
    let position = Position::new(
        SequenceNumber::new("49590338271490256608559692538361571095921575989136588898"),
        0,
    );

    let mut group = c.benchmark_group("model_hot_path");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function(
        format!("decode_windows_rules_{mean_bytes}B_1000_symbols"),
        |b| {
            let mut alerts = Vec::new();
            // Fresh state each pass: a second pass over the same records would be a pass of
            // ticks that all arrive late, which real streams are not.
            b.iter_batched_ref(
                HashMap::<Symbol, SymbolState>::default,
                |states| {
                    for record in &records {
                        let tick = decode_tick(record, &limits).expect("valid record");
                        let state = match states.get_mut(&tick.symbol) {
                            Some(state) => state,
                            None => states
                                .entry(tick.symbol.clone())
                                .or_insert_with(|| SymbolState::new(windows)),
                        };
                        black_box(state.process(
                            tick,
                            &shard,
                            position.clone(),
                            0,
                            &rules,
                            &mut alerts,
                        ));
                        alerts.clear();
                    }
                },
                BatchSize::LargeInput,
            );
        },
    );
    group.bench_function("decode_only", |b| {
        b.iter(|| {
            for record in &records {
                black_box(decode_tick(record, &limits).expect("valid record"));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
