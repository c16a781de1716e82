//! What the pipeline counts, and the port it is published through.
//!
//! Stages count into one shared [`Metrics`] where the event happens (atomics, no locks on the hot
//! path); the metrics publisher drains it every interval into [`Datum`]s for a [`MetricsSink`]:
//! a log line locally, CloudWatch `PutMetricData` on AWS. Names follow the KCL where the idea is
//! the same; dimensions are the shard or the worker, never the symbol (cardinality).

pub mod cloudwatch;
pub mod log;
pub mod rejections;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::model::ids::ShardId;
use crate::model::ids::WorkerId;

/// Monotonic counters, published as per-interval sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Counter {
    RecordsProcessed,
    BytesProcessed,
    DeadLetters,
    AnomaliesDetected,
    AlertsPublished,
    TableItemsWritten,
    ParquetFilesWritten,
    ParquetRowsWritten,
    CheckpointsWritten,
    /// Ticks too late for their minute's bar (bars mode): in the lake, not in the bars.
    BarLateTicks,
    /// HTTP requests sent to each AWS service, retries included: what AWS bills.
    KinesisRequests,
    DynamoDbRequests,
    S3Requests,
    SnsRequests,
    CloudWatchRequests,
    /// Leases this worker took (free, expired or handed over), and lost to another worker.
    LeasesTaken,
    LeasesLost,
    /// Batches a sink did not write because this worker's clock said the shard's lease may have
    /// expired (a stale owner stopping itself).
    WritesFenced,
    /// Ticks whose record's partition key is not their symbol (a symbol's state follows the key
    /// its records carry through a reshard).
    RecordsKeyedOtherwise,
    /// Symbols whose state a shard dropped after `symbols.evict-after` of event time without a
    /// tick.
    SymbolsEvicted,
    /// Records dead-lettered (`symbol_limit`) because their shard keeps state for
    /// `symbols.max-per-shard` other symbols.
    RecordsOverSymbolLimit,
    /// Writes of a sink, checkpoint or mark that failed and are tried again (transient or
    /// refused; see `crate::failure`).
    WriteFailures,
    /// Items a service refused (a table item, an alert), dead-lettered with the reason.
    ItemsRefused,
    /// Gaps found on resuming a shard: the checkpoint's record, and any records after it, were
    /// trimmed by the stream's retention before they were read (one per gap; how many records a
    /// gap held is not knowable from Kinesis).
    RecordsLostToRetention,
    /// Alerts raised but not sent: beyond a symbol's hourly budget
    /// (`rules.*.max-alerts-per-hour`, also in the lake's `alerts_held` column) or the task's
    /// cap per minute (`alerts.max-per-minute`).
    AlertsHeld,
    /// The part of `AlertsHeld` the task's cap per minute held (`alerts.max-per-minute`), which
    /// the lake does not record: the daily digest reads it from here.
    AlertsCapped,
}

impl Counter {
    pub const ALL: [Counter; 26] = [
        Counter::RecordsProcessed,
        Counter::BytesProcessed,
        Counter::DeadLetters,
        Counter::AnomaliesDetected,
        Counter::AlertsPublished,
        Counter::TableItemsWritten,
        Counter::ParquetFilesWritten,
        Counter::ParquetRowsWritten,
        Counter::CheckpointsWritten,
        Counter::BarLateTicks,
        Counter::KinesisRequests,
        Counter::DynamoDbRequests,
        Counter::S3Requests,
        Counter::SnsRequests,
        Counter::CloudWatchRequests,
        Counter::LeasesTaken,
        Counter::LeasesLost,
        Counter::WritesFenced,
        Counter::RecordsKeyedOtherwise,
        Counter::SymbolsEvicted,
        Counter::RecordsOverSymbolLimit,
        Counter::WriteFailures,
        Counter::ItemsRefused,
        Counter::RecordsLostToRetention,
        Counter::AlertsHeld,
        Counter::AlertsCapped,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::RecordsProcessed => "RecordsProcessed",
            Counter::BytesProcessed => "BytesProcessed",
            Counter::DeadLetters => "DeadLetters",
            Counter::AnomaliesDetected => "AnomaliesDetected",
            Counter::AlertsPublished => "AlertsPublished",
            Counter::TableItemsWritten => "TableItemsWritten",
            Counter::ParquetFilesWritten => "ParquetFilesWritten",
            Counter::ParquetRowsWritten => "ParquetRowsWritten",
            Counter::CheckpointsWritten => "CheckpointsWritten",
            Counter::BarLateTicks => "BarLateTicks",
            Counter::KinesisRequests => "KinesisRequests",
            Counter::DynamoDbRequests => "DynamoDBRequests",
            Counter::S3Requests => "S3Requests",
            Counter::SnsRequests => "SNSRequests",
            Counter::CloudWatchRequests => "CloudWatchRequests",
            Counter::LeasesTaken => "LeasesTaken",
            Counter::LeasesLost => "LeasesLost",
            Counter::WritesFenced => "WritesFenced",
            Counter::RecordsKeyedOtherwise => "RecordsKeyedOtherwise",
            Counter::SymbolsEvicted => "SymbolsEvicted",
            Counter::RecordsOverSymbolLimit => "RecordsOverSymbolLimit",
            Counter::WriteFailures => "WriteFailures",
            Counter::ItemsRefused => "ItemsRefused",
            Counter::RecordsLostToRetention => "RecordsLostToRetention",
            Counter::AlertsHeld => "AlertsHeld",
            Counter::AlertsCapped => "AlertsCapped",
        }
    }

    /// Lease counters are per worker, so operators see which task took or lost what.
    fn per_worker(self) -> bool {
        matches!(
            self,
            Counter::LeasesTaken
                | Counter::LeasesLost
                | Counter::WritesFenced
                | Counter::WriteFailures
        )
    }

    pub fn unit(self) -> Unit {
        match self {
            Counter::BytesProcessed => Unit::Bytes,
            _ => Unit::Count,
        }
    }
}

/// Measured durations, published as statistic sets (count, sum, min, max).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Latency {
    /// One ticks-table write call.
    TableWriteLatency,
    /// From the stream's arrival time of a record to the moment its checkpoint was written.
    EndToEndLatency,
}

impl Latency {
    pub fn name(self) -> &'static str {
        match self {
            Latency::TableWriteLatency => "DynamoWriteLatency",
            Latency::EndToEndLatency => "EndToEndLatency",
        }
    }
}

/// Per-shard gauges, published with a `ShardId` dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ShardGauge {
    MillisBehindLatest,
    /// Records in the shard past the last one read, where the stream says (a Kafka consumer's
    /// lag).
    RecordsBehindLatest,
    /// Records read but not yet covered by a checkpoint.
    CheckpointLag,
}

/// A reader reads an idle shard every `aws.idle-poll-interval`; a reading this old means its
/// reader is stuck, and the shard falls behind by the time since.
const STALE_READING: Duration = Duration::from_secs(10);

impl ShardGauge {
    /// The gauge's value `age` after it was set: how far behind a shard is grows while its
    /// reader reads nothing, instead of repeating a value from before it got stuck.
    fn aged(self, value: f64, age: Duration) -> f64 {
        match self {
            ShardGauge::MillisBehindLatest if age >= STALE_READING => {
                value + age.as_millis() as f64
            }
            _ => value,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ShardGauge::MillisBehindLatest => "MillisBehindLatest",
            ShardGauge::RecordsBehindLatest => "RecordsBehindLatest",
            ShardGauge::CheckpointLag => "CheckpointLag",
        }
    }

    pub fn unit(self) -> Unit {
        match self {
            ShardGauge::MillisBehindLatest => Unit::Milliseconds,
            ShardGauge::RecordsBehindLatest | ShardGauge::CheckpointLag => Unit::Count,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Bytes,
    Milliseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Count, sum, min and max of the samples of one interval (a CloudWatch statistic set).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatisticSet {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl StatisticSet {
    fn single(value: f64) -> Self {
        Self {
            count: 1,
            sum: value,
            min: value,
            max: value,
        }
    }

    fn add(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }
}

/// What a value is about, besides the whole process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dimension {
    Shard(ShardId),
    Worker(WorkerId),
}

impl Dimension {
    pub fn name(&self) -> &'static str {
        match self {
            Dimension::Shard(_) => "ShardId",
            Dimension::Worker(_) => "WorkerId",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Dimension::Shard(id) | Dimension::Worker(id) => id,
        }
    }
}

/// One published value.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub name: &'static str,
    pub unit: Unit,
    pub dimension: Option<Dimension>,
    pub value: StatisticSet,
}

/// The shared counting board of one process.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: [AtomicU64; Counter::ALL.len()],
    latencies: Mutex<BTreeMap<Latency, StatisticSet>>,
    /// Each gauge's value and when it was set.
    gauges: Mutex<BTreeMap<(ShardGauge, ShardId), (f64, Instant)>>,
    /// Leases this worker holds (published once the worker has a name).
    leases_held: AtomicU64,
    /// 1 while the worker's health endpoint answers 503 (see [`crate::health`]).
    unhealthy: AtomicU64,
    worker: OnceLock<WorkerId>,
    /// Rejected records by reason code, for the log's summary (not published: a log line says
    /// more to the person reading it than a metric dimension per reason would).
    rejections: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Names the worker for the per-worker metrics; the first name given stays.
    pub fn set_worker(&self, worker: &WorkerId) {
        let _ = self.worker.set(worker.clone());
    }

    pub fn set_leases_held(&self, count: usize) {
        self.leases_held.store(count as u64, Ordering::Relaxed);
    }

    pub fn set_unhealthy(&self, unhealthy: bool) {
        self.unhealthy
            .store(u64::from(unhealthy), Ordering::Relaxed);
    }

    pub fn add(&self, counter: Counter, n: u64) {
        self.counters[counter as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Total since start (for progress lines and summaries; publishing uses deltas).
    pub fn total(&self, counter: Counter) -> u64 {
        self.counters[counter as usize].load(Ordering::Relaxed)
    }

    pub fn observe(&self, latency: Latency, millis: f64) {
        let mut latencies = self.latencies.lock().expect("metrics lock");
        latencies
            .entry(latency)
            .and_modify(|set| set.add(millis))
            .or_insert_with(|| StatisticSet::single(millis));
    }

    pub fn set_gauge(&self, gauge: ShardGauge, shard_id: &ShardId, value: f64) {
        let mut gauges = self.gauges.lock().expect("metrics lock");
        gauges.insert((gauge, shard_id.clone()), (value, Instant::now()));
    }

    /// Counts `n` records rejected for `reason_code` (a
    /// [`Rejection::code`](crate::model::decode::Rejection::code)) where they are dead-lettered.
    pub fn add_rejections(&self, reason_code: &'static str, n: u64) {
        let mut rejections = self.rejections.lock().expect("metrics lock");
        *rejections.entry(reason_code).or_insert(0) += n;
    }

    /// Rejected records since start, by reason code.
    pub fn rejections(&self) -> rejections::Rejections {
        rejections::Rejections::from(self.rejections.lock().expect("metrics lock").clone())
    }

    /// Forgets a shard's gauges (the shard ended or moved to another task).
    pub fn remove_shard(&self, shard_id: &ShardId) {
        let mut gauges = self.gauges.lock().expect("metrics lock");
        gauges.retain(|(_, shard), _| shard != shard_id);
    }
}

/// Turns totals into per-interval data: remembers what was published last.
#[derive(Debug, Default)]
pub struct Drain {
    published: [u64; Counter::ALL.len()],
}

impl Drain {
    /// Counter deltas since the last call, the interval's latency sets, and current gauges.
    pub fn take(&mut self, metrics: &Metrics) -> Vec<Datum> {
        let mut data = Vec::new();
        for counter in Counter::ALL {
            let total = metrics.total(counter);
            let delta = total - self.published[counter as usize];
            self.published[counter as usize] = total;
            let worker = metrics.worker.get().map(|w| Dimension::Worker(w.clone()));
            if counter.per_worker() && worker.is_none() {
                continue;
            }
            data.push(Datum {
                name: counter.name(),
                unit: counter.unit(),
                dimension: worker.filter(|_| counter.per_worker()),
                value: StatisticSet::single(delta as f64),
            });
        }
        if let Some(worker) = metrics.worker.get() {
            data.push(Datum {
                name: "LeasesHeld",
                unit: Unit::Count,
                dimension: Some(Dimension::Worker(worker.clone())),
                value: StatisticSet::single(metrics.leases_held.load(Ordering::Relaxed) as f64),
            });
            // Without a dimension, so one alarm on its maximum covers every task.
            data.push(Datum {
                name: "Unhealthy",
                unit: Unit::Count,
                dimension: None,
                value: StatisticSet::single(metrics.unhealthy.load(Ordering::Relaxed) as f64),
            });
        }
        let latencies = std::mem::take(&mut *metrics.latencies.lock().expect("metrics lock"));
        data.extend(latencies.into_iter().map(|(latency, value)| Datum {
            name: latency.name(),
            unit: Unit::Milliseconds,
            dimension: None,
            value,
        }));
        let gauges = metrics.gauges.lock().expect("metrics lock");
        let now = Instant::now();
        data.extend(gauges.iter().map(|((gauge, shard), (value, set))| Datum {
            name: gauge.name(),
            unit: gauge.unit(),
            dimension: Some(Dimension::Shard(shard.clone())),
            value: StatisticSet::single(gauge.aged(*value, now.saturating_duration_since(*set))),
        }));
        data
    }
}

#[derive(Debug, thiserror::Error)]
#[error("metrics could not be published: {message}")]
pub struct MetricsError {
    pub message: String,
    pub retryable: bool,
}

#[async_trait]
pub trait MetricsSink: Send + Sync + 'static {
    async fn publish(&self, data: &[Datum]) -> Result<(), MetricsError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_publishes_deltas_and_resets_latencies() {
        let metrics = Metrics::default();
        let mut drain = Drain::default();
        metrics.add(Counter::RecordsProcessed, 5);
        metrics.observe(Latency::EndToEndLatency, 10.0);
        metrics.observe(Latency::EndToEndLatency, 30.0);
        let shard: ShardId = "shardId-0".into();
        metrics.set_gauge(ShardGauge::MillisBehindLatest, &shard, 250.0);

        let first = drain.take(&metrics);
        let value =
            |data: &[Datum], name: &str| data.iter().find(|d| d.name == name).map(|d| d.value);
        assert_eq!(value(&first, "RecordsProcessed").unwrap().sum, 5.0);
        let latency = value(&first, "EndToEndLatency").unwrap();
        assert_eq!(
            (latency.count, latency.min, latency.max, latency.sum),
            (2, 10.0, 30.0, 40.0)
        );
        assert_eq!(value(&first, "MillisBehindLatest").unwrap().sum, 250.0);

        metrics.add(Counter::RecordsProcessed, 2);
        let second = drain.take(&metrics);
        assert_eq!(value(&second, "RecordsProcessed").unwrap().sum, 2.0);
        assert!(value(&second, "EndToEndLatency").is_none());
        assert_eq!(metrics.total(Counter::RecordsProcessed), 7);
    }

    #[test]
    fn a_stale_reading_of_how_far_behind_grows_with_its_age() {
        let gauge = ShardGauge::MillisBehindLatest;
        assert_eq!(gauge.aged(250.0, Duration::from_secs(1)), 250.0);
        assert_eq!(gauge.aged(250.0, Duration::from_secs(30)), 30_250.0);
        assert_eq!(
            ShardGauge::CheckpointLag.aged(7.0, Duration::from_secs(30)),
            7.0
        );
    }

    #[test]
    fn lease_metrics_are_per_worker_once_the_worker_is_named() {
        let metrics = Metrics::default();
        metrics.add(Counter::LeasesTaken, 3);
        let unnamed = Drain::default().take(&metrics);
        assert!(!unnamed.iter().any(|d| d.name.starts_with("Leases")));

        metrics.set_worker(&"worker-1".into());
        metrics.set_leases_held(2);
        let data = Drain::default().take(&metrics);
        let worker = Some(Dimension::Worker("worker-1".into()));
        let find = |name: &str| data.iter().find(|d| d.name == name).unwrap();
        assert_eq!(
            (
                find("LeasesTaken").value.sum,
                &find("LeasesTaken").dimension
            ),
            (3.0, &worker)
        );
        assert_eq!(
            (find("LeasesHeld").value.sum, &find("LeasesHeld").dimension),
            (2.0, &worker)
        );
        assert_eq!(find("LeasesLost").value.sum, 0.0);
        assert_eq!(find("RecordsProcessed").dimension, None);
    }
}
