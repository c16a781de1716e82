//! The digest: the report in a few lines for a mail client, which `kinetick report --publish`
//! sends to the alert topic after the page is written (and uploaded).
//!
//! In: the [`Report`] (its day at a glance) and where the page can be read. Out: a subject under
//! SNS's 100 characters and a plain-text body, one section per part of the glance. Pure: no I/O.
//!
//! ```text
//! kinetick digest 2026-01-05: NVDA -6.20 %, 12 alerts, 48,210 ticks, 60 dead letters
//! ```

use indicatif::HumanCount;

use super::Report;
use super::summary::{Glance, Mover};

/// The `kind` attribute of the digest's SNS message, which subscription filters select it by.
pub const KIND: &str = "digest";

/// Longest subject: SNS takes up to 100 characters.
const MAX_SUBJECT: usize = 99;
/// Characters of a symbol kept in the subject (symbols may be up to 32 bytes).
const SUBJECT_SYMBOL: usize = 10;
/// Characters of a dead letter's example reason kept in the body.
const EXAMPLE: usize = 60;

/// What is published: the subject line and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// `digest/2026-01-05`: the same for every run of a date.
    pub id: String,
    pub subject: String,
    pub body: String,
}

/// One part of the body: a title and its lines, or one line saying there is nothing to show.
struct Section {
    title: String,
    lines: Vec<String>,
}

impl Section {
    fn new(title: impl Into<String>, lines: Vec<String>, when_empty: &str) -> Self {
        Self {
            title: title.into(),
            lines: if lines.is_empty() {
                vec![when_empty.to_owned()]
            } else {
                lines
            },
        }
    }
}

/// The body's sections, in order. A new figure of the glance is one more function here.
const SECTIONS: [fn(&Report) -> Section; 7] = [
    overview,
    gainers,
    losers,
    most_anomalies,
    alerts,
    held_alerts,
    dead_letters,
];

/// The digest of `report`, whose page is at `page` (`s3://bucket/…/report.html`, or a path).
pub fn digest(report: &Report, page: &str) -> Digest {
    let mut body = format!("kinetick digest for {}\n", report.date_label());
    for section in SECTIONS.iter().map(|section| section(report)) {
        body.push('\n');
        body.push_str(&section.title);
        body.push('\n');
        for line in &section.lines {
            body.push_str("  ");
            body.push_str(line);
            body.push('\n');
        }
    }
    body.push_str(&format!(
        "\nThe report, with a chart per top mover, the hours of the day and the seed queries' \
         answers:\n  {page}\n"
    ));
    if page.starts_with("s3://") {
        body.push_str(&format!("  (to open it: aws s3 cp {page} .)\n"));
    }
    let (first, last) = (report.dates.first(), report.dates.last());
    Digest {
        id: id(
            first.map_or("", String::as_str),
            last.map_or("", String::as_str),
        ),
        subject: subject(report),
        body,
    }
}

/// The digest of dates the lake has no tick files for (a market holiday, or nothing reached the
/// lake): there is no report to point to; `why` says what the lake holds.
pub fn without_ticks(first: &str, last: &str, why: &str) -> Digest {
    let label = match first == last {
        true => first.to_owned(),
        false => format!("{first} to {last}"),
    };
    Digest {
        id: id(first, last),
        subject: subject_line(&format!("kinetick digest {label}: no ticks")),
        body: format!(
            "kinetick digest for {label}\n\nNo ticks: {why}.\nA market holiday, or nothing \
             reached the lake: no report was written.\n"
        ),
    }
}

/// `digest/2026-01-05`, or `digest/2026-01-05..2026-01-07` for a range.
fn id(first: &str, last: &str) -> String {
    match first == last {
        true => format!("{KIND}/{first}"),
        false => format!("{KIND}/{first}..{last}"),
    }
}

/// `kinetick digest 2026-01-05: NVDA -6.20 %, 12 alerts, 48,210 ticks`: the biggest move, the
/// alerts (or the lake's anomalies), the ticks and any dead letters, within SNS's limit.
fn subject(report: &Report) -> String {
    let glance = &report.glance;
    let mut parts = Vec::new();
    if let Some(mover) = biggest_move(glance) {
        let symbol: String = mover.symbol.chars().take(SUBJECT_SYMBOL).collect();
        parts.push(format!("{symbol} {:+.2} %", mover.change_percent));
    }
    parts.push(match &glance.alerts {
        Some(alerts) => counted(alerts.total, "alert"),
        None => counted(lake_anomalies(glance), "anomaly"),
    });
    parts.push(counted(report.rows, "tick"));
    if glance.dead_letters > 0 {
        parts.push(counted(glance.dead_letters, "dead letter"));
    }
    subject_line(&format!(
        "kinetick digest {}: {}",
        report.date_label(),
        parts.join(", ")
    ))
}

/// `text` as SNS takes a subject (printable ASCII), cut to [`MAX_SUBJECT`] characters with an
/// ellipsis when it is longer.
fn subject_line(text: &str) -> String {
    let printable = crate::alerts::sns::subject_line(text);
    if printable.len() <= MAX_SUBJECT {
        return printable;
    }
    format!("{}...", &printable[..MAX_SUBJECT - 3])
}

/// The gainer or loser whose change against the previous close is largest.
fn biggest_move(glance: &Glance) -> Option<&Mover> {
    glance
        .gainers
        .first()
        .into_iter()
        .chain(glance.losers.first())
        .max_by(|a, b| a.change_percent.abs().total_cmp(&b.change_percent.abs()))
}

/// `48,210`: a string, so that it pads to a width.
fn count(n: u64) -> String {
    HumanCount(n).to_string()
}

/// `1 alert`, `12 alerts`, `1,024 anomalies`.
fn counted(count: u64, noun: &str) -> String {
    let noun = match (count, noun) {
        (1, noun) => noun.to_owned(),
        (_, "anomaly") => "anomalies".to_owned(),
        (_, noun) => format!("{noun}s"),
    };
    format!("{} {noun}", HumanCount(count))
}

fn lake_anomalies(glance: &Glance) -> u64 {
    glance.lake_by_hour.iter().map(|hour| hour.anomalies).sum()
}

fn overview(report: &Report) -> Section {
    let glance = &report.glance;
    let mut lines = vec![format!(
        "{} of {} symbols",
        counted(report.rows, "tick"),
        HumanCount(glance.symbols as u64)
    )];
    if let (Some(first), Some(last)) = (&glance.first_event_time, &glance.last_event_time) {
        lines.push(format!(
            "event times {} to {} UTC",
            moment(first),
            moment(last)
        ));
    }
    Section::new("The day", lines, "")
}

/// `2026-01-05 14:30:00` of `2026-01-05T14:30:00.000Z`.
fn moment(iso: &str) -> String {
    iso.get(..19).unwrap_or(iso).replace('T', " ")
}

/// The width of a column of names: the longest, and at least 8.
fn width<'a>(names: impl IntoIterator<Item = &'a str>) -> usize {
    names
        .into_iter()
        .map(|name| name.chars().count())
        .max()
        .unwrap_or(0)
        .max(8)
}

fn mover_lines(movers: &[Mover]) -> Vec<String> {
    let w = width(movers.iter().map(|m| m.symbol.as_str()));
    movers
        .iter()
        .map(|m| {
            format!(
                "{:<w$} {:>+8.2} %  {:>10.2} (previous close {:.2})",
                m.symbol, m.change_percent, m.price, m.previous_close
            )
        })
        .collect()
}

fn gainers(report: &Report) -> Section {
    Section::new(
        "Top gainers, last price against the previous close",
        mover_lines(&report.glance.gainers),
        "none: no symbol ended above its previous close",
    )
}

fn losers(report: &Report) -> Section {
    Section::new(
        "Top losers, last price against the previous close",
        mover_lines(&report.glance.losers),
        "none: no symbol ended below its previous close",
    )
}

fn most_anomalies(report: &Report) -> Section {
    let symbols = &report.glance.most_anomalies;
    let w = width(symbols.iter().map(|a| a.symbol.as_str()));
    let lines = symbols
        .iter()
        .map(|a| {
            format!(
                "{:<w$} {:>6} of {} ticks",
                a.symbol,
                count(a.anomalies),
                count(a.ticks)
            )
        })
        .collect();
    Section::new("Most anomalies", lines, "none flagged")
}

fn alerts(report: &Report) -> Section {
    let glance = &report.glance;
    match &glance.alerts {
        Some(alerts) => {
            let w = width(alerts.by_kind.keys().copied());
            Section::new(
                format!("Alerts by kind ({})", HumanCount(alerts.total)),
                alerts
                    .by_kind
                    .iter()
                    .map(|(kind, n)| format!("{kind:<w$} {:>6}", count(*n)))
                    .collect(),
                "none",
            )
        }
        None => {
            let (up, down) = glance.lake_by_hour.iter().fold((0, 0), |(up, down), h| {
                (up + h.trend_up, down + h.trend_down)
            });
            Section::new(
                "Alerts",
                vec![
                    "none known for these dates; what the lake itself flagged:".to_owned(),
                    format!(
                        "{}, {} up and {} down",
                        counted(lake_anomalies(glance), "anomaly"),
                        counted(up, "trend change"),
                        HumanCount(down)
                    ),
                ],
                "",
            )
        }
    }
}

/// What the budgets held back: the excess the alert mails did not carry.
fn held_alerts(report: &Report) -> Section {
    let held = &report.glance.alerts_held;
    let mut lines = Vec::new();
    if held.total > 0 {
        let kinds: Vec<String> = held
            .by_kind
            .iter()
            .map(|(kind, n)| format!("{kind} {}", count(*n)))
            .collect();
        let most: Vec<String> = held
            .symbols
            .iter()
            .map(|(symbol, n)| format!("{symbol} {}", count(*n)))
            .collect();
        lines.push(format!(
            "per symbol and hour  {:>6}: {}; most held: {}",
            count(held.total),
            kinds.join(", "),
            most.join(", ")
        ));
    }
    if let Some(capped) = report.alerts_capped.filter(|&n| n > 0) {
        lines.push(format!(
            "per task and minute  {:>6} (the AlertsCapped metric)",
            count(capped)
        ));
    }
    Section::new("Alerts held back by the budgets", lines, "none")
}

fn dead_letters(report: &Report) -> Section {
    let glance = &report.glance;
    let reasons = &glance.dead_letters_by_reason;
    let w = width(reasons.iter().map(|r| r.reason_code.as_str()));
    let lines = reasons
        .iter()
        .map(|r| {
            let mut example: String = r.example.chars().take(EXAMPLE).collect();
            if r.example.chars().count() > EXAMPLE {
                example.push_str("...");
            }
            format!(
                "{:<w$} {:>6}   e.g. {example}",
                r.reason_code,
                count(r.count)
            )
        })
        .collect();
    Section::new(
        format!(
            "Dead letters by reason ({}, arrived {})",
            HumanCount(glance.dead_letters),
            match report.dead_letter_dates.as_slice() {
                [] => "on no date read".to_owned(),
                [one] => format!("on {one}"),
                [first, .., last] => format!("{first} to {last}"),
            }
        ),
        lines,
        "none",
    )
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::report::seed::SeedQueries;
    use crate::report::summary::{
        self, AlertSummary, AnomalyCount, DeadLetterCounts, HeldAlerts, LakeHour, ReasonCount,
    };
    use crate::report::tally::Tally;

    fn mover(symbol: &str, change_percent: f64) -> Mover {
        Mover {
            symbol: symbol.into(),
            event_time: "2026-01-05T20:59:59.000Z".into(),
            price: 100.0 + change_percent,
            previous_close: 100.0,
            change_percent,
        }
    }

    /// A report whose glance is built field by field (from an empty one, so a field added to
    /// the glance keeps its value from the lake: none).
    fn report() -> Report {
        let dates = BTreeSet::from(["2026-01-05".to_owned()]);
        let mut glance =
            summary::glance(&Tally::default(), None, &dates, DeadLetterCounts::default());
        glance.symbols = 100;
        glance.first_event_time = Some("2026-01-05T14:30:00.000Z".into());
        glance.last_event_time = Some("2026-01-05T20:59:59.000Z".into());
        glance.gainers = vec![mover("AAPL", 3.25), mover("MSFT", 1.0)];
        glance.losers = vec![mover("NVDA", -6.2)];
        glance.most_anomalies = vec![AnomalyCount {
            symbol: "TSLA".into(),
            anomalies: 14,
            ticks: 2_310,
        }];
        glance.alerts = Some(AlertSummary {
            total: 12,
            by_kind: BTreeMap::from([("price_spike", 5), ("trend_up", 7)]),
            by_hour: Vec::new(),
        });
        glance.alerts_held = HeldAlerts {
            total: 9,
            by_kind: BTreeMap::from([("return_zscore", 6), ("volume_spike", 3)]),
            symbols: vec![("TSLA".into(), 5), ("AAPL".into(), 4)],
        };
        glance.lake_by_hour = vec![LakeHour {
            hour: "2026-01-05 14:00".into(),
            ticks: 48_210,
            anomalies: 40,
            trend_up: 3,
            trend_down: 2,
        }];
        glance.dead_letters = 60;
        glance.dead_letters_by_reason = vec![ReasonCount {
            reason_code: "malformed_json".into(),
            count: 60,
            example: "expected value at line 1 column 1".into(),
        }];
        Report {
            lake: "s3://market/lake/".into(),
            dates: dates.into_iter().collect(),
            files: 4,
            rows: 48_210,
            dead_letter_dates: vec!["2026-01-05".into()],
            alert_log: None,
            chart_choice: String::new(),
            charts: Vec::new(),
            glance,
            alerts_capped: Some(3),
            seed_queries: SeedQueries::default().finish(),
        }
    }

    const PAGE: &str = "s3://market/lake/reports/dt=2026-01-05/report.html";

    #[test]
    fn the_subject_names_the_biggest_move_and_the_counts() {
        let digest = digest(&report(), PAGE);
        assert_eq!(
            digest.subject,
            "kinetick digest 2026-01-05: NVDA -6.20 %, 12 alerts, 48,210 ticks, 60 dead letters"
        );
        assert_eq!(digest.id, "digest/2026-01-05");
    }

    #[test]
    fn the_subject_stays_within_what_sns_takes() {
        let mut report = report();
        report.dates.push("2026-01-09".into());
        report.glance.losers[0].symbol = "A-VERY-LONG-SYMBOL-\u{e9}\u{e9}\u{e9}".into();
        report.rows = u64::MAX;
        report.glance.dead_letters = u64::MAX;
        let subject = digest(&report, PAGE).subject;
        assert!(subject.len() < 100, "{} chars: {subject}", subject.len());
        assert!(subject.chars().all(|c| c.is_ascii_graphic() || c == ' '));
        assert!(subject.starts_with("kinetick digest 2026-01-05 to 2026-01-09: A-VERY-LON "));
        assert!(subject.ends_with("..."));
    }

    #[test]
    fn without_an_alert_log_the_subject_counts_the_lakes_anomalies() {
        let mut report = report();
        report.glance.alerts = None;
        report.glance.dead_letters = 0;
        report.glance.gainers.clear();
        report.glance.losers.clear();
        report.rows = 1;
        assert_eq!(
            digest(&report, PAGE).subject,
            "kinetick digest 2026-01-05: 40 anomalies, 1 tick"
        );
    }

    #[test]
    fn a_date_without_ticks_says_so() {
        let digest = without_ticks("2026-01-19", "2026-01-19", "no lake files for 2026-01-19");
        assert_eq!(digest.subject, "kinetick digest 2026-01-19: no ticks");
        assert_eq!(digest.id, "digest/2026-01-19");
        assert!(
            digest
                .body
                .contains("No ticks: no lake files for 2026-01-19.\n")
        );
        let range = without_ticks("2026-01-19", "2026-01-20", "none");
        assert_eq!(range.id, "digest/2026-01-19..2026-01-20");
        assert_eq!(
            range.subject,
            "kinetick digest 2026-01-19 to 2026-01-20: no ticks"
        );
    }

    #[test]
    fn the_body_has_a_section_per_part_of_the_glance_and_the_reports_key() {
        let body = digest(&report(), PAGE).body;
        let expected = "\
kinetick digest for 2026-01-05

The day
  48,210 ticks of 100 symbols
  event times 2026-01-05 14:30:00 to 2026-01-05 20:59:59 UTC

Top gainers, last price against the previous close
  AAPL        +3.25 %      103.25 (previous close 100.00)
  MSFT        +1.00 %      101.00 (previous close 100.00)

Top losers, last price against the previous close
  NVDA        -6.20 %       93.80 (previous close 100.00)

Most anomalies
  TSLA         14 of 2,310 ticks

Alerts by kind (12)
  price_spike      5
  trend_up         7

Alerts held back by the budgets
  per symbol and hour       9: return_zscore 6, volume_spike 3; most held: TSLA 5, AAPL 4
  per task and minute       3 (the AlertsCapped metric)

Dead letters by reason (60, arrived on 2026-01-05)
  malformed_json     60   e.g. expected value at line 1 column 1

The report, with a chart per top mover, the hours of the day and the seed queries' answers:
  s3://market/lake/reports/dt=2026-01-05/report.html
  (to open it: aws s3 cp s3://market/lake/reports/dt=2026-01-05/report.html .)
";
        assert_eq!(body, expected);
    }

    #[test]
    fn empty_parts_say_so_and_the_lakes_marks_stand_in_for_alerts() {
        let mut report = report();
        report.glance.gainers.clear();
        report.glance.most_anomalies.clear();
        report.glance.alerts = None;
        report.glance.dead_letters = 0;
        report.glance.dead_letters_by_reason.clear();
        let body = digest(&report, "/tmp/report/report.html").body;
        assert!(body.contains(
            "Top gainers, last price against the previous close\n  none: no symbol ended above"
        ));
        assert!(body.contains("Most anomalies\n  none flagged\n"));
        assert!(body.contains(
            "Alerts\n  none known for these dates; what the lake itself flagged:\n  \
             40 anomalies, 3 trend changes up and 2 down\n"
        ));
        assert!(body.contains("Dead letters by reason (0, arrived on 2026-01-05)\n  none\n"));
        assert!(body.ends_with("answers:\n  /tmp/report/report.html\n"));
    }
}
