//! What the sinks do to every tick, on one checkpoint's worth of a busy shard (100k enriched
//! ticks of 1,000 symbols, all on one date): the lake's Parquet files, as `ParquetBatcher` hands
//! them to `encode_files`, and the ticks table's items as the file table writes them. Also the
//! checkpoint's window snapshot of such a shard, as the file checkpoint store writes it.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kinetick::checkpoint::ShardSnapshot;
use kinetick::checkpoint::snapshot;
use kinetick::model::enriched::EnrichedTick;
use kinetick::model::item::Item;
use kinetick::model::lake::encode_files;
use kinetick::model::rules::{AlertKinds, RuleSet, Trend};
use kinetick::model::state::SymbolState;
use kinetick::model::tick::{Position, SequenceNumber, Tick};
use kinetick::model::window::{Indicators, WindowConfig};
use kinetick::table::file::encode_chunk;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TICKS: usize = 100_000;
const SYMBOLS: usize = 1_000;
/// 2026-01-02T14:30:00Z: the whole run stays inside one date.
const START_MS: i64 = 1_767_364_200_000;

/// Ticks in stream order, built directly (no simulator or windows) with realistic value spread,
/// so compression and dictionaries see what production data looks like.
fn ticks() -> Vec<EnrichedTick> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let shard: Arc<str> = "shardId-000000000007".into();
    let symbols: Vec<String> = (0..SYMBOLS).map(|i| format!("SYM{i:04}")).collect();
    let mut prices: Vec<f64> = (0..SYMBOLS).map(|_| rng.random_range(5.0..900.0)).collect();
    (0..TICKS)
        .map(|i| {
            let s = rng.random_range(0..SYMBOLS);
            let previous = prices[s];
            let price =
                (previous * (1.0 + rng.random_range(-0.002..0.002)) * 100.0).round() / 100.0;
            prices[s] = price;
            let warm = i >= 20 * SYMBOLS;
            let warm_value = |value: f64| warm.then_some(value);
            EnrichedTick {
                tick: Tick {
                    symbol: symbols[s].as_str().into(),
                    price,
                    event_time_ms: START_MS + i as i64 * 3,
                    open: Some(100.0 + s as f64),
                    high: None,
                    low: None,
                    previous_close: Some(99.0 + s as f64),
                    change: None,
                    change_percent: None,
                    volume: Some(f64::from(rng.random_range(1u32..5_000))),
                },
                shard_id: shard.clone(),
                position: Position::new(
                    SequenceNumber::new(format!(
                        "4959033827149025660855969253836157109592157598913{i:07}"
                    )),
                    0,
                ),
                arrival_time_ms: START_MS + i as i64 * 3 + rng.random_range(5..200),
                indicators: Indicators {
                    sma_short: warm_value(price * 0.999),
                    sma_long: warm_value(price * 1.001),
                    ema: warm_value(price * 0.9995),
                    vwap: warm_value(price * 1.0002),
                    window_high: warm_value(price * 1.01),
                    window_low: warm_value(price * 0.99),
                    volatility: warm_value(rng.random_range(0.0001..0.01)),
                    log_return: Some((price / previous).ln()),
                    return_zscore: warm_value(rng.random_range(-3.0..3.0)),
                    volume_ratio: warm_value(rng.random_range(0.1..4.0)),
                    change: Some(price - (99.0 + s as f64)),
                    change_percent: Some((price / (99.0 + s as f64) - 1.0) * 100.0),
                },
                anomaly: rng.random_bool(0.001),
                trend: warm.then(|| {
                    if rng.random_bool(0.5) {
                        Trend::Up
                    } else {
                        Trend::Down
                    }
                }),
                alerts: AlertKinds::default(),
                alerts_held: AlertKinds::default(),
            }
        })
        .collect()
}

fn parquet_encoding(c: &mut Criterion) {
    let rows = ticks();
    let mut group = c.benchmark_group("parquet_encoding");
    group.throughput(Throughput::Elements(TICKS as u64));
    group.sample_size(20);
    group.bench_function("encode_files_100k_ticks_1k_symbols", |b| {
        b.iter(|| encode_files("lake/", "shardId-000000000007", black_box(&rows)).unwrap())
    });
    group.finish();
}

fn table_items(c: &mut Criterion) {
    let rows = ticks();
    let items: Vec<Item> = rows
        .iter()
        .map(|tick| Item::Tick {
            tick,
            expires_at: Some(tick.tick.event_time_ms / 1000 + 86_400),
        })
        .collect();
    let mut group = c.benchmark_group("table_items");
    group.throughput(Throughput::Elements(TICKS as u64));
    group.sample_size(20);
    group.bench_function("json_lines_100k_ticks", |b| {
        // As the file table encodes a batch: a chunk at a time, into one buffer.
        let mut lines = Vec::new();
        b.iter(|| {
            let mut rest = black_box(&items[..]);
            while !rest.is_empty() {
                lines.clear();
                rest = &rest[encode_chunk(rest, &mut lines).unwrap()..];
            }
        })
    });
    group.finish();
}

/// A demo shard's snapshot: 250 symbols that ticked every 3 s for 50 minutes, so each holds a
/// full 5-minute window (about 100 ticks).
fn shard_snapshot() -> ShardSnapshot {
    const SHARD_SYMBOLS: usize = 250;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let shard: Arc<str> = "shardId-000000000007".into();
    let rules = RuleSet::default();
    let mut alerts = Vec::new();
    let mut snapshot = ShardSnapshot::new();
    for s in 0..SHARD_SYMBOLS {
        let mut state = SymbolState::new(WindowConfig::default());
        let mut price: f64 = rng.random_range(5.0..900.0);
        for i in 0..1_000i64 {
            price = (price * (1.0 + rng.random_range(-0.002..0.002)) * 100.0).round() / 100.0;
            let tick = Tick {
                symbol: format!("SYM{s:04}").as_str().into(),
                price,
                event_time_ms: START_MS + i * 3_000 + s as i64,
                open: None,
                high: None,
                low: None,
                previous_close: Some(100.0),
                change: None,
                change_percent: None,
                volume: Some(f64::from(rng.random_range(1u32..5_000))),
            };
            let position = Position::new(SequenceNumber::new(format!("{}", 1_000 + i)), 0);
            state.process(tick, &shard, position, 0, &rules, &mut alerts);
        }
        snapshot.insert(format!("SYM{s:04}").as_str().into(), state);
    }
    snapshot
}

fn checkpoint_snapshot(c: &mut Criterion) {
    let snapshot = shard_snapshot();
    let mut group = c.benchmark_group("checkpoint_snapshot");
    group.throughput(Throughput::Bytes(snapshot::encode(&snapshot).len() as u64));
    group.sample_size(20);
    group.bench_function("cbor_250_symbols", |b| {
        b.iter(|| snapshot::encode(black_box(&snapshot)))
    });
    group.bench_function("file_text_250_symbols", |b| {
        let (mut cbor, mut out) = (Vec::new(), Vec::new());
        b.iter(|| {
            snapshot::encode_into(black_box(&snapshot), &mut cbor);
            out.clear();
            snapshot::text::append_json(&cbor, &mut out);
        })
    });
    group.finish();
}

criterion_group!(benches, parquet_encoding, table_items, checkpoint_snapshot);
criterion_main!(benches);
