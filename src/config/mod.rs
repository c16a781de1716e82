//! Configuration: one struct, defaults in code, overridden by a TOML file, then by `KINETICK_...`
//! environment variables (what an ECS task definition sets).
//!
//! Env vars name a setting by its path: sections separated by `__`, words by `_`, e.g.
//! `KINETICK_CHECKPOINT__INTERVAL=10s` sets `[checkpoint] interval`, and
//! `KINETICK_RULES__DEFAULT__CHANGE_PERCENT=3` sets `[rules.default] change-percent`.
//!
//! Loading refuses what cannot be read (an unknown setting, a wrong type), then what was read
//! but breaks a rule ([`Config::validate`]), all of it at once, before anything starts.

mod kafka;
pub mod size;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::model::decode::DecodeLimits;
use crate::model::rules::RuleConfig;
use crate::model::window::WindowConfig;

pub use kafka::{KafkaConfig, SaslMechanism, SourceConfig, SourceKind};
pub use validate::SettingError;

/// Everything kinetick can be told.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Config {
    pub pipeline: PipelineConfig,
    pub source: SourceConfig,
    pub kafka: KafkaConfig,
    pub input: InputConfig,
    pub checkpoint: CheckpointConfig,
    pub lease: LeaseConfig,
    pub windows: WindowConfig,
    pub rules: RuleConfig,
    pub table: TableConfig,
    pub lake: LakeConfig,
    pub alerts: AlertsConfig,
    pub metrics: MetricsConfig,
    pub local: LocalConfig,
    pub aws: AwsConfig,
    pub health: HealthConfig,
    pub symbols: SymbolsConfig,
}

/// Threads and queues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Arbiters (threads) that run shard readers and their aggregators; 0 = one per core.
    pub workers: usize,
    /// Mailbox capacity of every actor: how many batches may wait before senders are slowed.
    pub mailbox: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            workers: 0,
            mailbox: 16,
        }
    }
}

impl PipelineConfig {
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }
}

/// What a record must look like to be accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct InputConfig {
    /// Larger records are dead-lettered unparsed (bytes).
    pub max_record_bytes: usize,
}

impl Default for InputConfig {
    fn default() -> Self {
        Self {
            max_record_bytes: 16 * 1024,
        }
    }
}

impl InputConfig {
    pub fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_record_bytes: self.max_record_bytes,
            ..DecodeLimits::default()
        }
    }
}

/// When a shard's barriers fall: at each, the table and the alerts are durable and recorded;
/// the lake's files close at the first barrier after their size or age is reached
/// ([`LakeConfig`]), and that barrier is the shard's checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// Longest time between two barriers of a shard that has new records.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Records after which a barrier falls even before `interval` (the first time sooner, by a
    /// share set by the shard's number, so that shards do not all reach it at once).
    pub max_records: u64,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            max_records: 20_000,
        }
    }
}

/// How workers split the shards through leases (see `src/lease/`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct LeaseConfig {
    /// This worker's name in the lease table; unique per task. Default: host name, process id
    /// and a random suffix.
    pub worker_id: Option<String>,
    /// A lease whose owner has not renewed it for this long is taken by another worker.
    #[serde(with = "humantime_serde")]
    pub failover_time: Duration,
    /// How often an owner renews its leases; default a third of `failover-time`.
    #[serde(with = "humantime_serde")]
    pub renew_interval: Option<Duration>,
    /// How often the lease table is read: how soon free and handed-over leases are taken.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How often the stream's shard list is read for new shards (resharding).
    #[serde(with = "humantime_serde")]
    pub shard_sync_interval: Duration,
    /// Most leases a worker takes or asks for in one poll.
    pub max_moves_per_poll: usize,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            worker_id: None,
            failover_time: Duration::from_secs(10),
            renew_interval: None,
            poll_interval: Duration::from_secs(1),
            shard_sync_interval: Duration::from_secs(10),
            max_moves_per_poll: 2,
        }
    }
}

impl LeaseConfig {
    pub fn renew_interval(&self) -> Duration {
        self.renew_interval.unwrap_or(self.failover_time / 3)
    }
}

/// The ticks table writer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct TableConfig {
    /// Buffered items are written at least this often, so lookups stay fresh.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Buffered items are written once this many wait.
    pub max_buffered_items: usize,
    /// Items expire this long after their event time (DynamoDB TTL attribute `expires_at`).
    #[serde(with = "humantime_serde")]
    pub ttl: Option<Duration>,
    /// What the table holds: an item per tick, per symbol and minute, or both.
    pub mode: TableMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TableMode {
    /// One item per tick.
    #[default]
    Ticks,
    /// One item per symbol and minute (OHLCV, VWAP, trades), rewritten as the minute fills:
    /// for streams too fast for an item per tick.
    Bars,
    Both,
}

impl TableMode {
    pub fn ticks(self) -> bool {
        matches!(self, TableMode::Ticks | TableMode::Both)
    }

    pub fn bars(self) -> bool {
        matches!(self, TableMode::Bars | TableMode::Both)
    }
}

impl Default for TableConfig {
    fn default() -> Self {
        Self {
            flush_interval: Duration::from_secs(1),
            max_buffered_items: 500,
            ttl: None,
            mode: TableMode::Ticks,
        }
    }
}

/// Object keys of the lake and the dead letters, and when their files close.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct LakeConfig {
    /// Prefix of every object key: `""` or a folder (a missing trailing `/` is added on load, so
    /// the lake, the dead letters and the snapshots all land under the same folder).
    #[serde(deserialize_with = "folder")]
    pub prefix: String,
    /// A shard's open lake file closes at the first barrier after it reaches this size
    /// (`"128MB"`, `"64MiB"` or bytes). Its row groups are uploaded as it grows.
    #[serde(with = "size")]
    pub target_file_size: u64,
    /// ... or after it has been open this long, whatever its size: how late data may reach
    /// Athena, and how far back a new owner of the shard reads again.
    #[serde(with = "humantime_serde")]
    pub max_file_age: Duration,
}

impl Default for LakeConfig {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            target_file_size: 128 << 20,
            max_file_age: Duration::from_secs(300),
        }
    }
}

impl LakeConfig {
    pub fn file_sizing(&self) -> crate::barrier::FileSizing {
        crate::barrier::FileSizing {
            target_bytes: self.target_file_size,
            max_age: self.max_file_age,
        }
    }
}

fn folder<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let mut prefix = String::deserialize(deserializer)?;
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    Ok(prefix)
}

/// The alerter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// `kinetick demo`: also print each alert on stdout (they are always in `alerts.jsonl`). Off
    /// by default: the demo raises alerts by the thousand, and the terminal is for its progress
    /// and summary; on a terminal the alert lines take the progress bar's place.
    pub print: bool,
    /// Alerts held in memory while the alert topic cannot be reached; the table and the lake go
    /// on meanwhile. Once this many wait, the alerter takes no more batches (and so, in turn,
    /// neither do the readers) until the topic answers again.
    pub max_backlog: usize,
    /// At most this many alerts of each minute of event time are sent by one task, over all its
    /// symbols; the rest are held (counted in `AlertsHeld`, and logged). Off when unset.
    pub max_per_minute: Option<u32>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            print: false,
            max_backlog: 10_000,
            max_per_minute: Some(120),
        }
    }
}

/// How many symbols a shard keeps state for, so a flood of distinct symbols (a producer bug)
/// cannot exhaust memory or bloat checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct SymbolsConfig {
    /// Most symbols one shard keeps state for; records of further symbols are dead-lettered
    /// (`symbol_limit`) until idle ones are evicted.
    pub max_per_shard: usize,
    /// A symbol without a tick for this long in event time (by the shard's newest tick) is
    /// evicted: its windows and rule state are dropped, and the next tick starts it afresh.
    /// Event time, not the clock, so a replay evicts exactly where the first run did.
    #[serde(with = "humantime_serde")]
    pub evict_after: Duration,
}

impl Default for SymbolsConfig {
    fn default() -> Self {
        Self {
            max_per_shard: 10_000,
            evict_after: Duration::from_secs(24 * 3600),
        }
    }
}

/// Metrics publishing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// How often counters are published.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// CloudWatch namespace.
    pub namespace: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            namespace: "Kinetick".into(),
        }
    }
}

/// Where the local ports (no AWS) keep their files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct LocalConfig {
    /// Output directory of `kinetick demo` when `--out` is not given.
    pub dir: PathBuf,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("out"),
        }
    }
}

/// The AWS resources `kinetick run` uses. Region, credentials and endpoints come from the SDK's
/// default chain (`AWS_REGION`, `AWS_ENDPOINT_URL`, the task role), not from here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct AwsConfig {
    /// Kinesis stream to read.
    pub stream_name: String,
    /// DynamoDB ticks table (partition key `symbol`, sort key `timestamp`).
    pub ticks_table: String,
    /// DynamoDB table of checkpoints and leases (partition key `shard_id`).
    pub checkpoint_table: String,
    /// S3 bucket of the lake, the dead letters and large snapshots.
    pub bucket: String,
    /// SNS topic of the alerts; without one, alerts are only logged.
    pub topic_arn: Option<String>,
    /// Path-style S3 addressing (`endpoint/bucket/key`), for S3-compatible endpoints and emulators.
    pub s3_force_path_style: bool,
    /// Where shards (or Kafka partitions) without a checkpoint start.
    pub start_position: InitialPosition,
    /// With `start-position = "at-timestamp"`: RFC 3339 time to start at.
    pub start_timestamp: Option<String>,
    /// Gap between two reads of a shard that had nothing new.
    #[serde(with = "humantime_serde")]
    pub idle_poll_interval: Duration,
    /// `BatchWriteItem` requests in flight at once.
    pub table_write_concurrency: usize,
    /// How long each kind of call may take before it is abandoned and retried like a 5xx.
    pub timeouts: AwsTimeouts,
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            stream_name: "kinetick-ticks".into(),
            ticks_table: "kinetick-ticks".into(),
            checkpoint_table: "kinetick-leases".into(),
            bucket: String::new(),
            topic_arn: None,
            s3_force_path_style: false,
            start_position: InitialPosition::TrimHorizon,
            start_timestamp: None,
            idle_poll_interval: Duration::from_millis(500),
            table_write_concurrency: 8,
            timeouts: AwsTimeouts::default(),
        }
    }
}

/// Timeouts of the AWS calls by kind, so that a call that never answers is abandoned and retried
/// instead of stalling a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct AwsTimeouts {
    /// Kinesis: shard listing, iterators, `GetRecords`.
    pub stream: CallTimeout,
    /// DynamoDB ticks table writes.
    pub table: CallTimeout,
    /// S3: lake and dead-letter files, large snapshots.
    pub objects: CallTimeout,
    /// SNS `Publish`.
    pub alerts: CallTimeout,
    /// Lease table reads, takes and renewals; by default attempts of half `lease.failover-time`
    /// and the whole call within it. Renewals go out on their own timer, so a slow one holds
    /// none back, and a slow answer still counts (from when it was sent): a shorter limit would
    /// only turn slow renewals into lost leases. The operation timeout may not exceed
    /// `lease.failover-time`, by when other workers take the lease as expired and a renewal's
    /// answer keeps nothing.
    pub leases: Option<CallTimeout>,
    /// Checkpoint saves and marks (the same table as the leases).
    pub checkpoints: CallTimeout,
    /// CloudWatch `PutMetricData`.
    pub metrics: CallTimeout,
}

/// The limits of one kind of call: each attempt, and the whole call with the SDK's own retries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CallTimeout {
    #[serde(with = "humantime_serde")]
    pub attempt: Duration,
    #[serde(with = "humantime_serde")]
    pub operation: Duration,
}

impl Config {
    /// The limits of lease-table calls: `aws.timeouts.leases`, or derived from the failover time.
    pub fn lease_call_timeout(&self) -> CallTimeout {
        self.aws.timeouts.leases.unwrap_or(CallTimeout {
            attempt: self.lease.failover_time / 2,
            operation: self.lease.failover_time,
        })
    }
}

impl CallTimeout {
    const fn seconds(attempt: u64, operation: u64) -> Self {
        Self {
            attempt: Duration::from_secs(attempt),
            operation: Duration::from_secs(operation),
        }
    }
}

impl Default for AwsTimeouts {
    fn default() -> Self {
        Self {
            stream: CallTimeout::seconds(5, 15),
            table: CallTimeout::seconds(10, 30),
            objects: CallTimeout::seconds(60, 180),
            alerts: CallTimeout::seconds(5, 15),
            leases: None,
            checkpoints: CallTimeout::seconds(5, 15),
            metrics: CallTimeout::seconds(10, 30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitialPosition {
    /// The oldest record kept (Kafka's `earliest`, which is taken too).
    #[serde(alias = "earliest")]
    TrimHorizon,
    Latest,
    AtTimestamp,
}

/// The health endpoint of `kinetick run` (the container check).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Address of the endpoint (`GET /health`).
    pub listen: String,
    /// The endpoint answers 503 once a shard with records waiting has made no progress for this
    /// long, or a sink's writes or the lease renewals have failed for this long.
    #[serde(with = "humantime_serde")]
    pub unhealthy_after: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".into(),
            unhealthy_after: Duration::from_secs(60),
        }
    }
}

/// Settings the process refuses to start with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file that does not parse, an unknown setting or a value of the wrong type. figment's
    /// error already names the setting and where it came from, so it is the message, not a
    /// source (an error chain would print it twice).
    #[error("invalid configuration: {0}")]
    Unreadable(Box<figment::Error>),
    /// Settings that were read but break a rule: every one of them, not just the first.
    #[error("{}", one_per_line(.0))]
    Invalid(Vec<SettingError>),
}

fn one_per_line(errors: &[SettingError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    /// One line per problem, for the terminal and the log.
    pub fn lines(&self) -> Vec<String> {
        match self {
            ConfigError::Unreadable(error) => (**error)
                .clone()
                .into_iter()
                .map(|error| format!("invalid configuration: {error}"))
                .collect(),
            ConfigError::Invalid(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }
}

impl Config {
    /// Defaults, then `file` (if given), then `KINETICK_...` variables of the environment; then
    /// every rule of [`Config::validate`].
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(
            Env::prefixed("KINETICK_")
                .ignore(&["config"])
                .map(|key| key.as_str().replace("__", ".").replace('_', "-").into()),
        );
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Unreadable(Box::new(e)))?;
        config.validate().map_err(ConfigError::Invalid)?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests;
