//! The rules settings must keep beyond their types, checked once at start by [`Config::load`]:
//! durations and counts where zero (or a huge value) makes no sense, settings that only make
//! sense together (the lease timings, a call's attempt and operation timeouts, the start position
//! and its time, a symbol's price levels), and the shapes AWS expects (namespace, topic ARN,
//! bucket name).
//!
//! In: a [`Config`] as loaded. Out: every refusal at once, each naming the setting as the user
//! writes it (`lease.failover-time`), its value and the rule.

use std::fmt::{self, Display};
use std::time::Duration;

use super::{AwsTimeouts, Config, InitialPosition, KafkaConfig, LeaseConfig, SourceKind};
use crate::model::rules::{RuleConfig, RuleSet};

/// One setting that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting} = {value}: {rule}")]
pub struct SettingError {
    /// The setting as the user writes it in the file: `lease.failover-time`.
    pub setting: String,
    /// Its value, as the user would write it: `2s`, `"AWS/Kinetick"`.
    pub value: String,
    /// What it must be, and why where that is not obvious.
    pub rule: String,
}

/// Kinesis takes no larger record.
const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Below any tick (about 200 bytes as producers send them): every record would be dead-lettered.
const MIN_RECORD_BYTES: usize = 256;

/// The largest lake file an upload in parts can make (10,000 parts of 8 MiB), rounded down.
const MAX_FILE_BYTES: u64 = 50_000_000_000;

impl Config {
    /// Every rule of this module; `Err` holds every setting that breaks one.
    pub fn validate(&self) -> Result<(), Vec<SettingError>> {
        let mut check = Check::default();
        check.at_least("pipeline.mailbox", self.pipeline.mailbox, 1);
        let bytes = self.input.max_record_bytes;
        check.require(
            (MIN_RECORD_BYTES..=MAX_RECORD_BYTES).contains(&bytes),
            "input.max-record-bytes",
            bytes,
            format_args!(
                "must be from {MIN_RECORD_BYTES} (a tick is about 200 bytes) to \
                 {MAX_RECORD_BYTES} (1 MiB, the Kinesis record limit)"
            ),
        );
        check.positive("checkpoint.interval", self.checkpoint.interval);
        check.at_least("checkpoint.max-records", self.checkpoint.max_records, 1);
        check.lease(&self.lease);
        check.windows(self);
        check.rules(&self.rules);
        check.positive("table.flush-interval", self.table.flush_interval);
        check.at_least("table.max-buffered-items", self.table.max_buffered_items, 1);
        if let Some(ttl) = self.table.ttl {
            check.require(
                ttl >= Duration::from_secs(1),
                "table.ttl",
                Human(ttl),
                "must be at least 1s (expires_at is in whole seconds)",
            );
        }
        check.lake_prefix(&self.lake.prefix);
        check.require(
            self.lake.target_file_size <= MAX_FILE_BYTES,
            "lake.target-file-size",
            self.lake.target_file_size,
            "must be at most 50GB (an upload has at most 10,000 parts of 8 MiB; Athena reads \
             files of 64MB to 1GB best)",
        );
        check.require(
            self.lake.max_file_age <= Duration::from_secs(24 * 3600),
            "lake.max-file-age",
            Human(self.lake.max_file_age),
            "must be at most 24h (a new owner of a shard reads again as far back, and the \
             stream must still hold it)",
        );
        check.at_least("alerts.max-backlog", self.alerts.max_backlog, 1);
        if let Some(max) = self.alerts.max_per_minute {
            check.at_least("alerts.max-per-minute", max, 1);
        }
        check.require(
            self.metrics.interval >= Duration::from_secs(1),
            "metrics.interval",
            Human(self.metrics.interval),
            "must be at least 1s",
        );
        let namespace = &self.metrics.namespace;
        check.require(
            is_namespace(namespace),
            "metrics.namespace",
            Quoted(namespace),
            "must be 1 to 255 of A-Z, a-z, 0-9, space and . - _ / # :, not starting with AWS/ \
             (CloudWatch's rule)",
        );
        check.require(
            !self.local.dir.as_os_str().is_empty(),
            "local.dir",
            Quoted(&self.local.dir.display()),
            "must not be empty",
        );
        check.aws(self);
        if self.source.kind == SourceKind::Kafka {
            check.kafka(&self.kafka);
        }
        check.require(
            is_host_port(&self.health.listen),
            "health.listen",
            Quoted(&self.health.listen),
            "must be host:port, e.g. 0.0.0.0:8080",
        );
        check.positive("health.unhealthy-after", self.health.unhealthy_after);
        check.at_least("symbols.max-per-shard", self.symbols.max_per_shard, 1);
        let span = self.windows.span;
        check.require(
            self.symbols.evict_after >= span && !self.symbols.evict_after.is_zero(),
            "symbols.evict-after",
            Human(self.symbols.evict_after),
            format_args!(
                "must be at least windows.span ({}): a symbol evicted sooner loses ticks its \
                 windows still hold",
                Human(span)
            ),
        );
        match check.refused.is_empty() {
            true => Ok(()),
            false => Err(check.refused),
        }
    }
}

/// The refusals found so far.
#[derive(Default)]
struct Check {
    refused: Vec<SettingError>,
}

impl Check {
    /// Refuses `setting` unless `ok`.
    fn require(&mut self, ok: bool, setting: &str, value: impl Display, rule: impl Display) {
        if !ok {
            self.refused.push(SettingError {
                setting: setting.to_owned(),
                value: value.to_string(),
                rule: rule.to_string(),
            });
        }
    }

    fn at_least<N: PartialOrd + Display>(&mut self, setting: &str, value: N, min: N) {
        let rule = format!("must be at least {min}");
        self.require(value >= min, setting, value, rule);
    }

    fn positive(&mut self, setting: &str, value: Duration) {
        self.require(!value.is_zero(), setting, Human(value), "must be above 0");
    }

    fn not_empty(&mut self, setting: &str, value: &str) {
        self.require(
            !value.is_empty(),
            setting,
            Quoted(value),
            "must not be empty",
        );
    }

    fn lease(&mut self, lease: &LeaseConfig) {
        if let Some(id) = &lease.worker_id {
            self.require(
                !id.is_empty() && !id.chars().any(|c| c.is_whitespace() || c.is_control()),
                "lease.worker-id",
                Quoted(id),
                "must be a name without whitespace or control characters",
            );
        }
        if let Some(renew) = lease.renew_interval {
            self.positive("lease.renew-interval", renew);
        }
        self.positive("lease.poll-interval", lease.poll_interval);
        self.positive("lease.shard-sync-interval", lease.shard_sync_interval);
        self.at_least("lease.max-moves-per-poll", lease.max_moves_per_poll, 1);
        // A live owner renews every renew-interval and others see it on their next poll: a
        // failover time within that drops live leases as expired.
        let (renew, poll) = (lease.renew_interval(), lease.poll_interval);
        let defaulted = match lease.renew_interval {
            Some(_) => "",
            None => "; lease.renew-interval is a third of lease.failover-time unless set",
        };
        self.require(
            lease.failover_time > renew + poll,
            "lease.failover-time",
            Human(lease.failover_time),
            format_args!(
                "must be above lease.renew-interval + lease.poll-interval ({} + {}){defaulted}",
                Human(renew),
                Human(poll)
            ),
        );
    }

    fn windows(&mut self, config: &Config) {
        let w = &config.windows;
        if w.sma_short > 0 && w.sma_long > 0 {
            self.require(
                w.sma_short < w.sma_long,
                "windows.sma-short",
                w.sma_short,
                format_args!(
                    "must be below windows.sma-long ({}): the trend is the short average against \
                     the long one (0 switches an average off)",
                    w.sma_long
                ),
            );
        }
        self.require(
            w.span >= Duration::from_millis(1),
            "windows.span",
            Human(w.span),
            "must be at least 1ms",
        );
        self.require(
            w.min_samples >= 2,
            "windows.min-samples",
            w.min_samples,
            "must be at least 2: volatility and the z-score use the sample standard deviation",
        );
        let min_samples = w.min_samples.max(2);
        self.require(
            w.max_span_ticks > min_samples,
            "windows.max-span-ticks",
            w.max_span_ticks,
            format_args!(
                "must be above windows.min-samples ({min_samples}), or the window never holds \
                 enough returns for a z-score"
            ),
        );
    }

    fn rules(&mut self, rules: &RuleConfig) {
        let d = &rules.default;
        self.thresholds(
            "rules.default",
            [
                d.price_above,
                d.price_below,
                d.change_percent,
                d.return_zscore,
                d.volume_spike,
            ],
        );
        for (symbol, o) in &rules.symbols {
            self.thresholds(
                &format!("rules.symbols.{symbol}"),
                [
                    o.price_above,
                    o.price_below,
                    o.change_percent,
                    o.return_zscore,
                    o.volume_spike,
                ],
            );
        }
        self.trend_and_budget("rules.default", d);
        for symbol in rules.symbols.keys() {
            self.trend_and_budget(
                &format!("rules.symbols.{symbol}"),
                &rules.for_symbol(symbol),
            );
        }
        self.price_band("rules.default", d.price_above, d.price_below, None);
        for (symbol, o) in &rules.symbols {
            // A symbol that sets neither level inherits the default's band, checked above.
            if o.price_above.is_none() && o.price_below.is_none() {
                continue;
            }
            let set = rules.for_symbol(symbol);
            self.price_band(
                &format!("rules.symbols.{symbol}"),
                set.price_above,
                set.price_below,
                Some((o.price_above.is_some(), o.price_below.is_some())),
            );
        }
    }

    /// The z-score rule's least move, the trend rule's bars and band, and the alert budget, of
    /// the effective rule set at `section`.
    fn trend_and_budget(&mut self, section: &str, set: &RuleSet) {
        self.positive(&format!("{section}.trend-bar"), set.trend_bar);
        self.at_least(
            &format!("{section}.trend-short-bars"),
            set.trend_short_bars,
            1,
        );
        self.require(
            set.trend_long_bars > set.trend_short_bars,
            &format!("{section}.trend-long-bars"),
            set.trend_long_bars,
            format_args!("must be above trend-short-bars ({})", set.trend_short_bars),
        );
        let min_move = set.return_zscore_min_move;
        self.require(
            min_move.is_finite() && min_move >= 0.0,
            &format!("{section}.return-zscore-min-move"),
            min_move,
            "must be a finite percentage, 0 or more",
        );
        let band = set.trend_band_percent;
        self.require(
            band.is_finite() && band >= 0.0,
            &format!("{section}.trend-band-percent"),
            band,
            "must be a finite percentage, 0 or more",
        );
        if let Some(max) = set.max_alerts_per_hour {
            self.at_least(&format!("{section}.max-alerts-per-hour"), max, 1);
        }
    }

    /// `levels`: price-above, price-below, change-percent, return-zscore and volume-spike of the
    /// rule set at `section`, as set there.
    fn thresholds(&mut self, section: &str, levels: [Option<f64>; 5]) {
        const RULES: [(&str, f64, &str); 5] = [
            ("price-above", 0.0, "must be a finite price above 0"),
            ("price-below", 0.0, "must be a finite price above 0"),
            ("change-percent", 0.0, "must be a finite percentage above 0"),
            (
                "return-zscore",
                0.0,
                "must be a finite number of standard deviations above 0",
            ),
            (
                "volume-spike",
                1.0,
                "must be a finite multiple of the mean volume above 1",
            ),
        ];
        for ((name, floor, rule), level) in RULES.into_iter().zip(levels) {
            if let Some(level) = level {
                let setting = format!("{section}.{name}");
                self.require(level.is_finite() && level > floor, &setting, level, rule);
            }
        }
    }

    /// Both crossing levels of one rule set: a price between them would be above the one and
    /// below the other at once. `set_here`: for a symbol, which of (above, below) its own
    /// section sets; the others it inherits from `rules.default`.
    fn price_band(
        &mut self,
        section: &str,
        above: Option<f64>,
        below: Option<f64>,
        set_here: Option<(bool, bool)>,
    ) {
        let valid = |level: f64| level.is_finite() && level > 0.0;
        let (Some(above), Some(below)) = (above, below) else {
            return;
        };
        if !valid(above) || !valid(below) || below < above {
            return;
        }
        let (above_here, below_here) = set_here.unwrap_or((true, true));
        let source = |here: bool| match here {
            true => section.to_owned(),
            false => "rules.default".to_owned(),
        };
        match below_here {
            true => self.require(
                false,
                &format!("{section}.price-below"),
                below,
                format_args!("must be below {}.price-above ({above})", source(above_here)),
            ),
            false => self.require(
                false,
                &format!("{section}.price-above"),
                above,
                format_args!("must be above rules.default.price-below ({below})"),
            ),
        }
    }

    fn lake_prefix(&mut self, prefix: &str) {
        let rule = if prefix.starts_with('/') {
            Some("must not start with /: object keys are relative to the bucket")
        } else if prefix.contains("//") {
            Some("must not hold an empty folder (//)")
        } else {
            None
        };
        if let Some(rule) = rule {
            self.require(false, "lake.prefix", Quoted(prefix), rule);
        }
    }

    fn kafka(&mut self, kafka: &KafkaConfig) {
        self.require(
            !kafka.brokers().is_empty() && kafka.brokers().iter().all(|b| is_host_port(b)),
            "kafka.bootstrap-servers",
            Quoted(&kafka.bootstrap_servers),
            "must be one or more host:port, comma-separated, with source.kind = \"kafka\"",
        );
        self.not_empty("kafka.topic", &kafka.topic);
        self.not_empty("kafka.client-id", &kafka.client_id);
        if kafka.sasl_mechanism.takes_password() {
            for (setting, value) in [
                ("kafka.sasl-username", &kafka.sasl_username),
                ("kafka.sasl-password", &kafka.sasl_password),
            ] {
                self.require(
                    value.as_deref().is_some_and(|v| !v.is_empty()),
                    setting,
                    "(not set)",
                    "is required by kafka.sasl-mechanism plain and scram-*",
                );
            }
        }
        self.require(
            kafka.tls || !matches!(kafka.sasl_mechanism, super::SaslMechanism::AwsMskIam),
            "kafka.tls",
            false,
            "must be true with kafka.sasl-mechanism = \"aws-msk-iam\" (MSK takes IAM on TLS only)",
        );
        self.positive("kafka.fetch-max-wait", kafka.fetch_max_wait);
        self.at_least("kafka.fetch-max-bytes", kafka.fetch_max_bytes, 1024);
        self.positive("kafka.request-timeout", kafka.request_timeout);
    }

    fn aws(&mut self, config: &Config) {
        let aws = &config.aws;
        self.not_empty("aws.stream-name", &aws.stream_name);
        self.not_empty("aws.ticks-table", &aws.ticks_table);
        self.not_empty("aws.checkpoint-table", &aws.checkpoint_table);
        self.require(
            aws.checkpoint_table != aws.ticks_table,
            "aws.checkpoint-table",
            Quoted(&aws.checkpoint_table),
            "must not be aws.ticks-table: the two tables have different keys",
        );
        // Required by `kinetick run` only, which says so itself.
        self.require(
            !aws.bucket.contains(['/', ':']) && !aws.bucket.contains(char::is_whitespace),
            "aws.bucket",
            Quoted(&aws.bucket),
            "must be a bucket name, not a URL or a path (a folder goes in lake.prefix)",
        );
        if let Some(arn) = &aws.topic_arn {
            self.require(
                is_topic_arn(arn),
                "aws.topic-arn",
                Quoted(arn),
                "must be an SNS topic ARN, arn:<partition>:sns:<region>:<account>:<topic>",
            );
        }
        match (aws.start_position, &aws.start_timestamp) {
            (InitialPosition::AtTimestamp, None) => self.require(
                false,
                "aws.start-position",
                "at-timestamp",
                "needs aws.start-timestamp, the RFC 3339 time to start at",
            ),
            (InitialPosition::AtTimestamp, Some(time)) => self.require(
                chrono::DateTime::parse_from_rfc3339(time).is_ok(),
                "aws.start-timestamp",
                Quoted(time),
                "must be an RFC 3339 time, e.g. 2026-01-02T14:30:00Z",
            ),
            // Set but unused: whoever set it expects the shards to start there.
            (position, Some(time)) => self.require(
                false,
                "aws.start-timestamp",
                Quoted(time),
                format_args!(
                    "is only used with aws.start-position = at-timestamp (it is {})",
                    position_name(position)
                ),
            ),
            (_, None) => {}
        }
        self.at_least(
            "aws.table-write-concurrency",
            aws.table_write_concurrency,
            1,
        );
        self.timeouts(&aws.timeouts, config.lease.failover_time);
    }

    fn timeouts(&mut self, timeouts: &AwsTimeouts, failover_time: Duration) {
        let AwsTimeouts {
            stream,
            table,
            objects,
            alerts,
            leases,
            checkpoints,
            metrics,
        } = timeouts;
        let calls = [
            ("stream", Some(stream)),
            ("table", Some(table)),
            ("objects", Some(objects)),
            ("alerts", Some(alerts)),
            ("leases", leases.as_ref()),
            ("checkpoints", Some(checkpoints)),
            ("metrics", Some(metrics)),
        ];
        let calls = calls
            .into_iter()
            .filter_map(|(kind, call)| Some((kind, call?)));
        for (kind, call) in calls {
            let attempt = format!("aws.timeouts.{kind}.attempt");
            let operation = format!("aws.timeouts.{kind}.operation");
            self.positive(&attempt, call.attempt);
            self.positive(&operation, call.operation);
            if !call.attempt.is_zero() && !call.operation.is_zero() {
                self.require(
                    call.attempt <= call.operation,
                    &attempt,
                    Human(call.attempt),
                    format_args!(
                        "must be at most {operation} ({}), which includes every attempt",
                        Human(call.operation)
                    ),
                );
            }
        }
        let Some(leases) = leases else {
            return;
        };
        self.require(
            leases.operation <= failover_time,
            "aws.timeouts.leases.operation",
            Human(leases.operation),
            format_args!(
                "must be at most lease.failover-time ({}): by then other workers take the \
                 lease as expired, and a renewal's answer keeps nothing",
                Human(failover_time)
            ),
        );
    }
}

/// The position as the setting names it.
fn position_name(position: InitialPosition) -> &'static str {
    match position {
        InitialPosition::TrimHorizon => "trim-horizon",
        InitialPosition::Latest => "latest",
        InitialPosition::AtTimestamp => "at-timestamp",
    }
}

/// CloudWatch's rule for a namespace.
fn is_namespace(namespace: &str) -> bool {
    (1..=255).contains(&namespace.len())
        && namespace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " .-_/#:".contains(c))
        && !namespace.starts_with("AWS/")
}

/// `arn:<partition>:sns:<region>:<12-digit account>:<topic>`, the topic 1 to 256 letters,
/// digits, `-` and `_`, with `.fifo` at the end of a FIFO topic.
fn is_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    let ["arn", partition, "sns", region, account, topic] = parts[..] else {
        return false;
    };
    let name = topic.strip_suffix(".fifo").unwrap_or(topic);
    !partition.is_empty()
        && !region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && (1..=256).contains(&topic.len())
        && !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `host:port` (an IP address, `[IPv6]` or a name), as the endpoint's listener binds it.
fn is_host_port(address: &str) -> bool {
    address.parse::<std::net::SocketAddr>().is_ok()
        || address.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && !host.contains(':') && port.parse::<u16>().is_ok()
        })
}

/// A duration as a setting takes it: `2s`, `500ms`, `5m`; seconds with decimals where whole
/// units would need several (`3.333s`, a third of 10s).
struct Human(Duration);

impl Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d < Duration::from_secs(1) || d.subsec_nanos() == 0 {
            write!(f, "{}", humantime::format_duration(d))
        } else {
            let seconds = format!("{:.3}", d.as_secs_f64());
            write!(
                f,
                "{}s",
                seconds.trim_end_matches('0').trim_end_matches('.')
            )
        }
    }
}

/// A text value, quoted so that an empty one shows.
struct Quoted<T>(T);

impl<T: Display> Display for Quoted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_show_as_settings_take_them() {
        let shown = |d: Duration| Human(d).to_string();
        assert_eq!(shown(Duration::ZERO), "0s");
        assert_eq!(shown(Duration::from_millis(500)), "500ms");
        assert_eq!(shown(Duration::from_secs(90)), "1m 30s");
        assert_eq!(shown(Duration::from_millis(1500)), "1.5s");
        assert_eq!(shown(Duration::from_secs(10) / 3), "3.333s");
    }
}
