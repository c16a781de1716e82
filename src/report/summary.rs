//! The day at a glance: top gainers and losers against the previous close, the symbols with most
//! anomalies, alerts by kind and hour (or, with no alert log, the lake's anomalies and trend
//! changes by hour), dead letters by reason.
//!
//! In: the first read's [`Tally`] (with the trend changes of its late symbols counted by the
//! second read), the alerts of the alert log if there is one, the dead letters' reason codes and
//! reasons. Out: [`Glance`], which `summary.json` holds and the page shows. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::row::iso_millis;
use super::tally::{MS_PER_HOUR, Tally, hour_of};
use crate::model::lake::partition_date;
use crate::model::rules::{Alert, AlertKind};

/// Gainers and losers shown.
pub const MOVERS: usize = 5;
/// Symbols shown by anomaly count.
pub const MOST_ANOMALIES: usize = 10;

/// A symbol's last tick of the report's range against its previous close.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mover {
    pub symbol: String,
    pub event_time: String,
    pub price: f64,
    pub previous_close: f64,
    pub change_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyCount {
    pub symbol: String,
    pub anomalies: u64,
    pub ticks: u64,
}

/// Alerts of one hour (UTC) by kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertHour {
    /// `2026-01-05 14:00`, UTC.
    pub hour: String,
    pub total: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
}

/// The alerts of the report's dates: from the alert log (each id once), or, without one, from
/// the lake's `alerts` column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertSummary {
    pub total: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    pub by_hour: Vec<AlertHour>,
}

/// What the lake itself says per hour (UTC): rows flagged as anomalies, and trend changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LakeHour {
    pub hour: String,
    pub ticks: u64,
    pub anomalies: u64,
    pub trend_up: u64,
    pub trend_down: u64,
}

/// Alerts held back by the per-symbol budget, by kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HeldAlerts {
    pub total: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    /// The symbols that had most held, most first (at most [`MOST_ANOMALIES`]).
    pub symbols: Vec<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonCount {
    pub reason_code: String,
    pub count: u64,
    /// One of the reasons given (they name the field and value).
    pub example: String,
}

/// The day at a glance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Glance {
    pub symbols: usize,
    pub first_event_time: Option<String>,
    pub last_event_time: Option<String>,
    pub gainers: Vec<Mover>,
    pub losers: Vec<Mover>,
    pub most_anomalies: Vec<AnomalyCount>,
    /// From the alert log if there is one, else from the lake's `alerts` column; `None` when
    /// neither has an alert (a quiet range, or a lake written before it kept alert kinds).
    pub alerts: Option<AlertSummary>,
    /// Alerts the symbols' hourly budgets held back (the lake's `alerts_held` column).
    pub alerts_held: HeldAlerts,
    pub lake_by_hour: Vec<LakeHour>,
    pub dead_letters: u64,
    pub dead_letters_by_reason: Vec<ReasonCount>,
}

/// Dead letters by reason code, fed one at a time.
#[derive(Debug, Default)]
pub struct DeadLetterCounts {
    by_code: BTreeMap<String, (u64, String)>,
}

impl DeadLetterCounts {
    pub fn add(&mut self, reason_code: &str, reason: &str) {
        match self.by_code.get_mut(reason_code) {
            Some((count, _)) => *count += 1,
            None => {
                self.by_code
                    .insert(reason_code.to_owned(), (1, reason.to_owned()));
            }
        }
    }

    /// Most frequent first, then by code.
    fn ranked(self) -> Vec<ReasonCount> {
        let mut ranked: Vec<ReasonCount> = self
            .by_code
            .into_iter()
            .map(|(reason_code, (count, example))| ReasonCount {
                reason_code,
                count,
                example,
            })
            .collect();
        ranked.sort_by_key(|r| std::cmp::Reverse(r.count));
        ranked
    }
}

/// `2026-01-05 14:00` of an hour number since the epoch.
fn hour_label(hour: i64) -> String {
    let text = iso_millis(hour * MS_PER_HOUR);
    format!("{} {}", &text[..10], &text[11..16])
}

/// The day at a glance of `tally`; `alerts` (the alert log, if any) are counted when their
/// event date is one of `dates`, each id once.
///
/// # Panics
/// If a symbol with late runs has no trend changes counted: the second read counts them
/// ([`super::replay::Replay::finish`]).
pub fn glance(
    tally: &Tally,
    alerts: Option<&[Alert]>,
    dates: &BTreeSet<String>,
    dead_letters: DeadLetterCounts,
) -> Glance {
    let mut movers = Vec::new();
    let mut anomalies = Vec::new();
    let mut by_hour: BTreeMap<i64, LakeHour> = tally
        .by_hour
        .iter()
        .map(|(&hour, counts)| {
            let lake_hour = LakeHour {
                ticks: counts.ticks,
                anomalies: counts.anomalies,
                ..LakeHour::default()
            };
            (hour, lake_hour)
        })
        .collect();
    let (mut first, mut last) = (None::<i64>, None::<i64>);
    for (symbol, symbol_tally) in tally.symbols() {
        let tail = &symbol_tally.last;
        first = Some(first.map_or(symbol_tally.first_ms, |t| t.min(symbol_tally.first_ms)));
        last = Some(last.map_or(tail.time_ms, |t| t.max(tail.time_ms)));
        if let (Some(close), Some(change)) = (tail.previous_close, tail.change_vs_close()) {
            movers.push(Mover {
                symbol: symbol.to_owned(),
                event_time: iso_millis(tail.time_ms),
                price: tail.price,
                previous_close: close,
                change_percent: change,
            });
        }
        if symbol_tally.anomalies > 0 {
            anomalies.push(AnomalyCount {
                symbol: symbol.to_owned(),
                anomalies: symbol_tally.anomalies,
                ticks: symbol_tally.ticks,
            });
        }
        let trend = symbol_tally
            .trend()
            .unwrap_or_else(|| panic!("trend changes of {symbol} not counted in order"));
        for (hour, up, down) in trend.by_hour() {
            let lake_hour = by_hour.entry(hour).or_default();
            lake_hour.trend_up += up;
            lake_hour.trend_down += down;
        }
    }

    let (gainers, losers) = gainers_and_losers(movers);
    anomalies.sort_by(|a, b| {
        b.anomalies
            .cmp(&a.anomalies)
            .then_with(|| a.symbol.cmp(&b.symbol))
    });
    anomalies.truncate(MOST_ANOMALIES);
    let dead_letters_total = dead_letters.by_code.values().map(|(count, _)| count).sum();

    Glance {
        symbols: tally.len(),
        first_event_time: first.map(iso_millis),
        last_event_time: last.map(iso_millis),
        gainers,
        losers,
        most_anomalies: anomalies,
        alerts: match alerts {
            Some(log) => Some(alert_summary(log, dates)),
            None => lake_alert_summary(tally),
        },
        alerts_held: held_alerts(tally),
        lake_by_hour: by_hour
            .into_iter()
            .map(|(hour, counts)| LakeHour {
                hour: hour_label(hour),
                ..counts
            })
            .collect(),
        dead_letters: dead_letters_total,
        dead_letters_by_reason: dead_letters.ranked(),
    }
}

/// The alerts the lake's `alerts` column holds, by kind and hour; `None` without any.
fn lake_alert_summary(tally: &Tally) -> Option<AlertSummary> {
    let counts = KindCounts {
        by_hour: tally
            .sent
            .iter()
            .map(|(&hour, kinds)| {
                let kinds = kinds.iter().map(|(kind, &n)| (kind.as_str(), n)).collect();
                (hour, kinds)
            })
            .collect(),
    };
    counts.summary()
}

/// What the symbols' hourly budgets held back (the lake's `alerts_held` column), with the
/// symbols that had most held.
fn held_alerts(tally: &Tally) -> HeldAlerts {
    let mut symbols: Vec<(String, u64)> = tally
        .symbols()
        .filter(|(_, symbol)| symbol.held > 0)
        .map(|(name, symbol)| (name.to_owned(), symbol.held))
        .collect();
    symbols.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    symbols.truncate(MOST_ANOMALIES);
    HeldAlerts {
        total: tally.held.values().sum(),
        by_kind: tally
            .held
            .iter()
            .map(|(kind, &n)| (kind.as_str(), n))
            .collect(),
        symbols,
    }
}

/// Alert kinds counted by kind and hour.
#[derive(Debug, Default)]
struct KindCounts {
    by_hour: BTreeMap<i64, BTreeMap<&'static str, u64>>,
}

impl KindCounts {
    fn add(&mut self, time_ms: i64, kind: AlertKind) {
        *self
            .by_hour
            .entry(hour_of(time_ms))
            .or_default()
            .entry(kind.as_str())
            .or_default() += 1;
    }

    /// `None` without any alert.
    fn summary(self) -> Option<AlertSummary> {
        let mut by_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
        let by_hour: Vec<AlertHour> = self
            .by_hour
            .into_iter()
            .map(|(hour, kinds)| {
                for (kind, n) in &kinds {
                    *by_kind.entry(kind).or_default() += n;
                }
                AlertHour {
                    hour: hour_label(hour),
                    total: kinds.values().sum(),
                    by_kind: kinds,
                }
            })
            .collect();
        (!by_hour.is_empty()).then(|| AlertSummary {
            total: by_kind.values().sum(),
            by_kind,
            by_hour,
        })
    }
}

/// The [`MOVERS`] symbols that rose most and those that fell most, vs previous close.
fn gainers_and_losers(mut movers: Vec<Mover>) -> (Vec<Mover>, Vec<Mover>) {
    movers.sort_by(|a, b| {
        b.change_percent
            .total_cmp(&a.change_percent)
            .then_with(|| a.symbol.cmp(&b.symbol))
    });
    let gainers = movers
        .iter()
        .filter(|m| m.change_percent > 0.0)
        .take(MOVERS)
        .cloned()
        .collect();
    let losers = movers
        .iter()
        .rev()
        .filter(|m| m.change_percent < 0.0)
        .take(MOVERS)
        .cloned()
        .collect();
    (gainers, losers)
}

/// Alerts whose event date is one of `dates`, each id once (a replay after a crash may have
/// appended an alert twice), by kind and by hour.
fn alert_summary(alerts: &[Alert], dates: &BTreeSet<String>) -> AlertSummary {
    let mut seen = BTreeSet::new();
    let mut counts = KindCounts::default();
    for alert in alerts {
        if dates.contains(&partition_date(alert.event_time_ms)) && seen.insert(&alert.id) {
            counts.add(alert.event_time_ms, alert.kind);
        }
    }
    counts.summary().unwrap_or(AlertSummary {
        total: 0,
        by_kind: BTreeMap::new(),
        by_hour: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::replay::both_reads;
    use super::super::row::Row;
    use super::*;
    use crate::model::rules::{AlertKind, Severity, Trend};

    const DAY: i64 = 1_767_571_200_000; // 2026-01-05T00:00:00Z

    /// The tally of `rows` (one file) after both reads.
    fn tally(rows: &[Row]) -> Tally {
        both_reads(&[rows.to_vec()], &[]).0
    }

    fn tick(symbol: &str, time_ms: i64, price: f64, close: Option<f64>) -> Row {
        Row {
            symbol: symbol.into(),
            event_time_ms: time_ms,
            price,
            previous_close: close,
            ..Row::default()
        }
    }

    fn dates() -> BTreeSet<String> {
        BTreeSet::from(["2026-01-05".to_owned()])
    }

    fn alert(id: &str, kind: AlertKind, time_ms: i64) -> Alert {
        Alert {
            id: id.into(),
            symbol: "AAPL".into(),
            kind,
            severity: Severity::Info,
            event_time_ms: time_ms,
            price: 1.0,
            value: 1.0,
            threshold: 1.0,
            message: String::new(),
        }
    }

    #[test]
    fn movers_compare_each_symbols_last_tick_with_its_previous_close() {
        let mut rows = Vec::new();
        // Eight symbols whose last tick is +8 %, +6 %, ..., -6 %; an earlier tick says otherwise.
        for (i, percent) in [8.0, 6.0, 4.0, 2.0, 1.0, -2.0, -4.0, -6.0]
            .iter()
            .enumerate()
        {
            let symbol = format!("S{i}");
            rows.push(tick(&symbol, DAY + 2_000, 100.0 + percent, Some(100.0)));
            rows.push(tick(&symbol, DAY + 1_000, 50.0, Some(100.0)));
        }
        // The last tick has no previous close: no change to rank.
        rows.push(tick("NOCLOSE", DAY + 5_000, 10.0, None));
        let glance = glance(&tally(&rows), None, &dates(), DeadLetterCounts::default());
        let symbols =
            |movers: &[Mover]| -> Vec<String> { movers.iter().map(|m| m.symbol.clone()).collect() };
        assert_eq!(symbols(&glance.gainers), ["S0", "S1", "S2", "S3", "S4"]);
        assert_eq!(symbols(&glance.losers), ["S7", "S6", "S5"]);
        assert!((glance.gainers[0].change_percent - 8.0).abs() < 1e-9);
        assert_eq!(glance.gainers[0].event_time, "2026-01-05T00:00:02.000Z");
        assert_eq!(glance.symbols, 9);
        assert_eq!(
            glance.last_event_time.as_deref(),
            Some("2026-01-05T00:00:05.000Z")
        );
    }

    #[test]
    fn anomalies_and_trend_changes_are_counted_per_symbol_and_hour() {
        let mut rows = Vec::new();
        let trends = [None, Some(Trend::Up), Some(Trend::Down), Some(Trend::Up)];
        for (i, trend) in trends.into_iter().enumerate() {
            rows.push(Row {
                trend,
                anomaly: i == 2,
                ..tick("A", DAY + i as i64 * 1_800_000, 1.0, None)
            });
        }
        rows.push(Row {
            anomaly: true,
            ..tick("B", DAY, 1.0, None)
        });
        rows.push(Row {
            anomaly: true,
            ..tick("B", DAY + 1, 1.0, None)
        });
        let glance = glance(&tally(&rows), None, &dates(), DeadLetterCounts::default());
        assert_eq!(
            glance.most_anomalies,
            [
                AnomalyCount {
                    symbol: "B".into(),
                    anomalies: 2,
                    ticks: 2
                },
                AnomalyCount {
                    symbol: "A".into(),
                    anomalies: 1,
                    ticks: 4
                },
            ]
        );
        assert_eq!(
            glance.lake_by_hour,
            [
                LakeHour {
                    hour: "2026-01-05 00:00".into(),
                    ticks: 4,
                    anomalies: 2,
                    trend_up: 0,
                    trend_down: 0,
                },
                LakeHour {
                    hour: "2026-01-05 01:00".into(),
                    ticks: 2,
                    anomalies: 1,
                    trend_up: 1,
                    trend_down: 1,
                },
            ]
        );
        assert_eq!(glance.alerts, None);
    }

    #[test]
    fn alerts_count_once_per_id_within_the_dates() {
        let alerts = [
            alert("a", AlertKind::TrendUp, DAY + 10),
            alert("a", AlertKind::TrendUp, DAY + 10), // replayed
            alert("b", AlertKind::VolumeSpike, DAY + 20),
            alert("c", AlertKind::TrendUp, DAY + 3_600_000),
            alert("d", AlertKind::TrendUp, DAY - 1), // the day before
        ];
        let glance = glance(
            &tally(&[]),
            Some(&alerts),
            &dates(),
            DeadLetterCounts::default(),
        );
        let summary = glance.alerts.unwrap();
        assert_eq!(summary.total, 3);
        assert_eq!(
            summary.by_kind,
            BTreeMap::from([("trend_up", 2), ("volume_spike", 1)])
        );
        assert_eq!(summary.by_hour.len(), 2);
        assert_eq!(summary.by_hour[0].hour, "2026-01-05 00:00");
        assert_eq!(
            summary.by_hour[0].by_kind,
            BTreeMap::from([("trend_up", 1), ("volume_spike", 1)])
        );
        assert_eq!(summary.by_hour[1].total, 1);
    }

    #[test]
    fn without_an_alert_log_the_lakes_alert_columns_are_counted() {
        let kinds = |k: &[AlertKind]| k.iter().copied().collect();
        let rows = [
            Row {
                alerts: kinds(&[AlertKind::TrendUp, AlertKind::VolumeSpike]),
                ..tick("A", DAY + 10, 1.0, None)
            },
            Row {
                alerts_held: kinds(&[AlertKind::ReturnZscore]),
                ..tick("A", DAY + 20, 1.0, None)
            },
            Row {
                alerts: kinds(&[AlertKind::TrendDown]),
                alerts_held: kinds(&[AlertKind::ReturnZscore, AlertKind::VolumeSpike]),
                ..tick("B", DAY + 3_600_000, 1.0, None)
            },
        ];
        let glance = glance(&tally(&rows), None, &dates(), DeadLetterCounts::default());
        let sent = glance.alerts.unwrap();
        assert_eq!(sent.total, 3);
        assert_eq!(
            sent.by_kind,
            BTreeMap::from([("trend_down", 1), ("trend_up", 1), ("volume_spike", 1)])
        );
        assert_eq!(sent.by_hour.len(), 2);
        let held = glance.alerts_held;
        assert_eq!(held.total, 3);
        assert_eq!(
            held.by_kind,
            BTreeMap::from([("return_zscore", 2), ("volume_spike", 1)])
        );
        assert_eq!(held.symbols, [("B".to_owned(), 2), ("A".to_owned(), 1)]);
    }

    #[test]
    fn dead_letters_rank_by_count_with_an_example_reason() {
        let mut counts = DeadLetterCounts::default();
        counts.add("missing_field", "missing required field `price`");
        counts.add("malformed_json", "expected value at line 1");
        counts.add("missing_field", "missing required field `symbol`");
        let glance = glance(&tally(&[]), None, &dates(), counts);
        assert_eq!(glance.dead_letters, 3);
        assert_eq!(
            glance.dead_letters_by_reason[0],
            ReasonCount {
                reason_code: "missing_field".into(),
                count: 2,
                example: "missing required field `price`".into(),
            }
        );
        assert_eq!(
            glance.dead_letters_by_reason[1].reason_code,
            "malformed_json"
        );
    }
}
