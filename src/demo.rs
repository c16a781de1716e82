//! `kinetick demo`: the simulator feeds an in-process stream, and the full pipeline runs on the
//! local ports, writing under one output directory:
//!
//! ```text
//! out/ticks/dt=YYYY-MM-DD/*.parquet    the lake
//! out/dead-letters/dt=YYYY-MM-DD/*.jsonl
//! out/table/ticks.jsonl                the ticks table (DynamoDB JSON items)
//! out/alerts.jsonl                     alerts
//! out/checkpoints/*.json               checkpoints with window snapshots
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::{Bytes, BytesMut};

use crate::config::Config;
use crate::metrics::{Counter, Metrics};
use crate::pipeline::Pipeline;
use crate::ports::Ports;
use crate::producer::simulator::{MarketSimulator, RecordKind, SimulatorConfig};
use crate::shutdown;
use crate::stream::StartPosition;
use crate::stream::local::LocalStream;

/// Records the simulator hands the stream at once.
const PRODUCER_BATCH: usize = 500;
/// A simulated record's usual size, to size a batch's buffer.
const RECORD_BYTES: usize = 200;
/// Unread records a shard of the in-process stream holds before the producer waits.
const SHARD_CAPACITY: usize = 5_000;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub ticks: u64,
    pub symbols: usize,
    pub shards: usize,
    pub out: PathBuf,
    pub seed: u64,
    /// News per symbol per trading session ([`SimulatorConfig::jumps_per_session`]).
    pub jumps_per_session: f64,
    pub progress: bool,
}

/// What the simulator injected, to compare with what the pipeline found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Injected {
    pub records: u64,
    pub jumps: u64,
    pub volume_spikes: u64,
    pub malformed: u64,
}

#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub out: PathBuf,
    pub injected: Injected,
    pub records: u64,
    pub ticks: u64,
    pub dead_letters: u64,
    pub anomalies: u64,
    pub elapsed: Duration,
    pub alerts_by_kind: BTreeMap<String, u64>,
    /// Alerts raised but held by the budgets (per symbol and hour, per minute).
    pub alerts_held: u64,
    pub parquet_files: u64,
    pub table_items: u64,
    pub checkpoints: u64,
}

pub async fn run(mut config: Config, options: DemoOptions) -> anyhow::Result<DemoSummary> {
    anyhow::ensure!(options.shards > 0, "--shards must be at least 1");
    anyhow::ensure!(options.symbols > 0, "--symbols must be at least 1");
    anyhow::ensure!(
        options.jumps_per_session.is_finite() && options.jumps_per_session >= 0.0,
        "--jumps-per-session must be a number of at least 0"
    );
    clear_previous_output(&options.out)?;
    // The demo's only worker takes every shard in its first round.
    config.lease.max_moves_per_poll = config.lease.max_moves_per_poll.max(options.shards);
    let out = &options.out;
    let stream = LocalStream::new(options.shards, SHARD_CAPACITY);
    let print_alerts = config.alerts.print;
    let ports = Ports::local(out, stream.clone(), print_alerts)?;

    let started = Instant::now();
    let pipeline = Pipeline::start(
        &config,
        ports,
        StartPosition::TrimHorizon,
        Arc::new(Metrics::default()),
    )
    .await;
    let simulator = SimulatorConfig {
        symbols: options.symbols,
        seed: options.seed,
        jumps_per_session: options.jumps_per_session,
        ..SimulatorConfig::default()
    };
    let producer = spawn_producer(stream, simulator, options.ticks);
    let metrics = pipeline.metrics().clone();
    // Alert lines printed on the terminal would be drawn through the bar: they show progress
    // instead.
    let bar = !(print_alerts && std::io::stdout().is_terminal());
    let progress = Progress::start(metrics.clone(), options.ticks, options.progress, bar);

    let result = shutdown::run_to_end(pipeline, |_| {
        tracing::warn!("Interrupted: checkpointing what was read.");
    })
    .await;
    progress.finish();
    result?;
    let elapsed = started.elapsed();
    let injected = producer
        .join()
        .map_err(|_| anyhow::anyhow!("the simulator thread panicked"))??;

    Ok(DemoSummary {
        out: out.clone(),
        injected,
        records: metrics.total(Counter::RecordsProcessed),
        ticks: metrics.total(Counter::RecordsProcessed) - metrics.total(Counter::DeadLetters),
        dead_letters: metrics.total(Counter::DeadLetters),
        anomalies: metrics.total(Counter::AnomaliesDetected),
        elapsed,
        alerts_by_kind: count_alerts(&out.join("alerts.jsonl"))?,
        alerts_held: metrics.total(Counter::AlertsHeld),
        parquet_files: metrics.total(Counter::ParquetFilesWritten),
        table_items: metrics.total(Counter::TableItemsWritten),
        checkpoints: metrics.total(Counter::CheckpointsWritten),
    })
}

/// Removes what an earlier demo wrote into `out`, and the manifests of a compaction of its lake,
/// which describe files that are going (only those files and folders).
fn clear_previous_output(out: &Path) -> anyhow::Result<()> {
    for dir in [
        "ticks",
        "dead-letters",
        "table",
        "checkpoints",
        "compaction",
    ] {
        let path = out.join(dir);
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("removing {}", path.display()))?;
        }
    }
    let alerts = out.join("alerts.jsonl");
    if alerts.exists() {
        std::fs::remove_file(&alerts).with_context(|| format!("removing {}", alerts.display()))?;
    }
    Ok(())
}

/// Feeds the stream from the simulator on a thread of its own, then closes it.
fn spawn_producer(
    stream: Arc<LocalStream>,
    config: SimulatorConfig,
    count: u64,
) -> std::thread::JoinHandle<anyhow::Result<Injected>> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let mut injected = Injected::default();
            let mut simulator = MarketSimulator::new(config).take(count as usize).peekable();
            let shards = stream.shard_count();
            while simulator.peek().is_some() {
                // A batch's records share one buffer per shard: one allocation instead of one
                // per record (each freed on a reader's thread), and no readers on two threads
                // contending for one buffer's reference count.
                let mut buffers: Vec<BytesMut> = (0..shards)
                    .map(|_| BytesMut::with_capacity(PRODUCER_BATCH * RECORD_BYTES / shards))
                    .collect();
                let mut records = Vec::with_capacity(PRODUCER_BATCH);
                for record in simulator.by_ref().take(PRODUCER_BATCH) {
                    injected.records += 1;
                    match record.kind {
                        RecordKind::Normal => {}
                        RecordKind::Jump => injected.jumps += 1,
                        RecordKind::VolumeSpike => injected.volume_spikes += 1,
                        RecordKind::Malformed => injected.malformed += 1,
                    }
                    let shard = stream.shard_index(&record.partition_key);
                    let buffer = &mut buffers[shard];
                    let start = buffer.len();
                    buffer.extend_from_slice(&record.data);
                    records.push((record.partition_key, shard, start..buffer.len()));
                }
                let buffers: Vec<Bytes> = buffers.into_iter().map(BytesMut::freeze).collect();
                let batch: Vec<(Arc<str>, Bytes)> = records
                    .into_iter()
                    .map(|(key, shard, range)| (key, buffers[shard].slice(range)))
                    .collect();
                stream.put_batch(batch).await;
            }
            stream.close();
            Ok(injected)
        })
    })
}

fn count_alerts(path: &Path) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut counts = BTreeMap::new();
    if !path.exists() {
        return Ok(counts);
    }
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    for line in std::io::BufReader::new(file).lines() {
        let alert: serde_json::Value = serde_json::from_str(&line?)?;
        let kind = alert["kind"].as_str().unwrap_or("unknown").to_owned();
        *counts.entry(kind).or_insert(0) += 1;
    }
    Ok(counts)
}

/// The live progress line on a terminal, or a log line every few seconds elsewhere.
struct Progress {
    task: Option<tokio::task::JoinHandle<()>>,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// Shows a bar when `bar` allows and stderr is a terminal.
    fn start(metrics: Arc<Metrics>, total: u64, enabled: bool, bar: bool) -> Self {
        if !enabled {
            return Self {
                task: None,
                bar: None,
            };
        }
        let terminal = bar && std::io::stderr().is_terminal();
        let bar = terminal.then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {bar:30} {human_pos}/{human_len} records  {rate}  eta {eta}  {msg}",
                )
                .expect("valid progress template")
                .with_key(
                    "rate",
                    |state: &indicatif::ProgressState, out: &mut dyn fmt::Write| {
                        let _ = out.write_str(&rate(state.per_sec()));
                    },
                ),
            );
            bar
        });
        // Log lines (the rejection summary, warnings) are printed above the bar, not through it.
        crate::telemetry::set_progress_bar(bar.clone());
        let shown = bar.clone();
        let task = actix::spawn(async move {
            let period = if terminal {
                Duration::from_millis(100)
            } else {
                Duration::from_secs(5)
            };
            let mut ticker = tokio::time::interval(period);
            loop {
                ticker.tick().await;
                let records = metrics.total(Counter::RecordsProcessed);
                let alerts = metrics.total(Counter::AlertsPublished);
                let files = metrics.total(Counter::ParquetFilesWritten);
                match &shown {
                    Some(bar) => {
                        bar.set_position(records);
                        bar.set_message(format!("{alerts} alerts, {files} files"));
                    }
                    None => tracing::info!(records, total, alerts, files, "Demo progress."),
                }
            }
        });
        Self {
            task: Some(task),
            bar,
        }
    }

    fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
        }
        if let Some(bar) = self.bar {
            crate::telemetry::set_progress_bar(None);
            bar.finish_and_clear();
        }
    }
}

/// Records per second as the progress bar shows them: a whole number, `236,713/s`.
fn rate(per_second: f64) -> String {
    format!("{}/s", indicatif::HumanCount(per_second.round() as u64))
}

impl fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.elapsed.as_secs_f64();
        writeln!(f, "kinetick demo finished in {seconds:.2} s")?;
        writeln!(
            f,
            "  records    {} read ({:.0}/s): {} ticks, {} dead letters",
            self.records,
            self.records as f64 / seconds.max(1e-9),
            self.ticks,
            self.dead_letters
        )?;
        writeln!(
            f,
            "  injected   {} price jumps, {} volume spikes, {} malformed records",
            self.injected.jumps, self.injected.volume_spikes, self.injected.malformed
        )?;
        let total_alerts: u64 = self.alerts_by_kind.values().sum();
        let by_kind: Vec<String> = self
            .alerts_by_kind
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        writeln!(
            f,
            "  anomalies  {} ticks flagged; {total_alerts} alerts{}; {} held by the alert budgets",
            self.anomalies,
            match by_kind.is_empty() {
                true => String::new(),
                false => format!(" ({})", by_kind.join(", ")),
            },
            self.alerts_held
        )?;
        writeln!(
            f,
            "  written    {} Parquet files, {} table items, {} checkpoints",
            self.parquet_files, self.table_items, self.checkpoints
        )?;
        let out = self.out.display();
        writeln!(
            f,
            "  output     {out}/ticks/ (lake), {out}/table/ticks.jsonl, {out}/alerts.jsonl, {out}/dead-letters/"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_a_whole_number() {
        assert_eq!(rate(236_713.400_2), "236,713/s");
        assert_eq!(rate(0.6), "1/s");
        assert_eq!(rate(0.0), "0/s");
    }
}
