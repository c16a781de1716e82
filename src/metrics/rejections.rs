//! Rejected records summed by reason, for the person reading the log: instead of a line per batch
//! of dead letters (hundreds a second under bad input), one line every few seconds with that
//! interval's counts by reason code, and one at the end with the totals.
//!
//! In: what the shard readers count with [`Metrics::add_rejections`]. Out: WARN log lines
//! `Records rejected and dead-lettered.` with the fields `count` and `reasons`
//! (`malformed_json 60, missing_field 41`), pretty on a terminal and JSON on ECS. Each batch
//! still has its own line at DEBUG level (`RUST_LOG=debug`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::Metrics;

/// How often the summary is logged while records are being rejected.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// Record counts by reason code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejections(BTreeMap<&'static str, u64>);

impl From<BTreeMap<&'static str, u64>> for Rejections {
    fn from(counts: BTreeMap<&'static str, u64>) -> Self {
        Self(counts)
    }
}

impl Rejections {
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn get(&self, reason_code: &str) -> u64 {
        self.0.get(reason_code).copied().unwrap_or(0)
    }

    /// What was counted after `earlier`, an older reading of the same totals; reasons with
    /// nothing new are left out.
    pub fn since(&self, earlier: &Rejections) -> Rejections {
        Rejections(
            self.0
                .iter()
                .filter_map(|(&code, &n)| {
                    let new = n.saturating_sub(earlier.get(code));
                    (new > 0).then_some((code, new))
                })
                .collect(),
        )
    }
}

/// `malformed_json 60, missing_field 41, wrong_type 9`: the most frequent reason first.
impl fmt::Display for Rejections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut counts: Vec<(&str, u64)> = self.0.iter().map(|(&code, &n)| (code, n)).collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        for (i, (code, n)) in counts.into_iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{code} {n}")?;
        }
        Ok(())
    }
}

/// Logs the summary every interval in which records were rejected, until [`Self::finish`] logs
/// the totals.
pub struct RejectionReport {
    metrics: Arc<Metrics>,
    task: tokio::task::JoinHandle<()>,
}

impl RejectionReport {
    /// Starts reporting what is counted into `metrics`; must run inside a tokio runtime.
    pub fn start(metrics: Arc<Metrics>, interval: Duration) -> Self {
        let counted = metrics.clone();
        let mut reported = metrics.rejections();
        let task = tokio::spawn(async move {
            let start = tokio::time::Instant::now() + interval;
            let mut ticker = tokio::time::interval_at(start, interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let totals = counted.rejections();
                let new = totals.since(&reported);
                reported = totals;
                if new.total() > 0 {
                    tracing::warn!(count = new.total(), reasons = %new,
                        interval = %humantime::format_duration(interval),
                        "Records rejected and dead-lettered.");
                }
            }
        });
        Self { metrics, task }
    }

    /// Stops the periodic lines and logs the totals since start, if any record was rejected.
    pub fn finish(self) {
        self.task.abort();
        let totals = self.metrics.rejections();
        if totals.total() > 0 {
            tracing::warn!(count = totals.total(), reasons = %totals,
                "Records rejected and dead-lettered in all.");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn metrics_count_rejections_by_reason() {
        let metrics = Metrics::default();
        metrics.add_rejections("malformed_json", 2);
        metrics.add_rejections("missing_field", 1);
        metrics.add_rejections("malformed_json", 3);
        let counted = metrics.rejections();
        assert_eq!(counted.get("malformed_json"), 5);
        assert_eq!(counted.get("missing_field"), 1);
        assert_eq!(counted.get("wrong_type"), 0);
        assert_eq!(counted.total(), 6);
    }

    #[test]
    fn since_keeps_only_what_is_new() {
        let earlier = Rejections::from(BTreeMap::from([("malformed_json", 5), ("wrong_type", 2)]));
        let now = Rejections::from(BTreeMap::from([
            ("malformed_json", 7),
            ("missing_field", 4),
            ("wrong_type", 2),
        ]));
        assert_eq!(
            now.since(&earlier),
            Rejections::from(BTreeMap::from([
                ("malformed_json", 2),
                ("missing_field", 4)
            ]))
        );
        assert_eq!(now.since(&now), Rejections::default());
    }

    #[test]
    fn summary_lists_the_most_frequent_reason_first() {
        let counts = Rejections::from(BTreeMap::from([
            ("wrong_type", 9),
            ("malformed_json", 60),
            ("missing_field", 41),
            ("non_finite", 9),
        ]));
        assert_eq!(
            counts.to_string(),
            "malformed_json 60, missing_field 41, non_finite 9, wrong_type 9"
        );
        assert_eq!(Rejections::default().to_string(), "");
    }

    /// Log lines captured by a test subscriber.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn report_logs_each_interval_with_rejections_then_the_totals() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let metrics = Arc::new(Metrics::default());
        let interval = Duration::from_secs(5);
        let report = RejectionReport::start(metrics.clone(), interval);

        metrics.add_rejections("missing_field", 1);
        metrics.add_rejections("malformed_json", 2);
        tokio::time::sleep(interval + Duration::from_millis(10)).await;
        let first = captured.lines();
        assert_eq!(first.len(), 1, "{first:?}");
        assert!(
            first[0].contains("Records rejected and dead-lettered. count=3")
                && first[0].contains("reasons=malformed_json 2, missing_field 1"),
            "{first:?}"
        );

        // A quiet interval logs nothing; the next one only what is new.
        tokio::time::sleep(interval).await;
        assert_eq!(captured.lines().len(), 1);
        metrics.add_rejections("missing_field", 4);
        tokio::time::sleep(interval).await;
        let lines = captured.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[1].contains("count=4") && lines[1].contains("reasons=missing_field 4"),
            "{lines:?}"
        );

        report.finish();
        let lines = captured.lines();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[2].contains("Records rejected and dead-lettered in all. count=7")
                && lines[2].contains("reasons=missing_field 5, malformed_json 2"),
            "{lines:?}"
        );
    }
}
