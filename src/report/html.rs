//! The report page: one self-contained HTML file (inline CSS, charts as inline SVG, no script
//! and nothing fetched), readable in any browser and mail client that shows HTML.
//!
//! In: the [`Report`] (what `summary.json` holds) and each chart's SVG. Out: the page's text.
//! Every text that comes from data (symbols, reasons, paths) is escaped.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde_json::Value;

use super::Report;
use super::seed::Answer;
use super::summary::{AlertSummary, Glance, Mover};

/// Rows of the big-moves answer shown on the page (`summary.json` has them all).
const MOVES_SHOWN: usize = 20;

const STYLE: &str = "
body { font-family: -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif;
  color: #222; background: #f4f5f7; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 24px 40px; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h1 span { color: #1f4e79; }
h2 { font-size: 20px; margin: 32px 0 10px; border-bottom: 2px solid #dde1e6; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 0 0 8px; }
p.meta, p.note { color: #555; font-size: 13px; margin: 4px 0 10px; }
code, pre { font-family: 'SFMono-Regular', Menlo, Consolas, monospace; font-size: 12px; }
pre { background: #eef1f4; padding: 8px 10px; border-radius: 4px; white-space: pre-wrap; margin: 0 0 6px; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 14px; }
.card { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 12px 14px; }
.wide { margin-top: 14px; }
.scroll { max-height: 360px; overflow: auto; }
.wide-table { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
table.narrow { width: auto; min-width: 420px; }
th, td { padding: 3px 8px; text-align: left; border-bottom: 1px solid #eceef1; white-space: nowrap; }
th { background: #f7f8fa; font-weight: 600; position: sticky; top: 0; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.up { color: #2e7d32; } td.down { color: #c62828; }
td.reason { white-space: normal; color: #555; }
figure { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; margin: 0 0 14px; padding: 4px; }
figure svg { display: block; width: 100%; height: auto; }
footer { color: #777; font-size: 12px; margin-top: 30px; }
";

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A number as a table shows it: at most 4 decimals, no trailing zeros.
fn number(value: f64) -> String {
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    match text {
        "-0" => "0".to_owned(),
        text => text.to_owned(),
    }
}

/// `1,234,567`.
fn count(value: u64) -> String {
    let digits = value.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

fn percent_cell(value: f64) -> String {
    let class = if value > 0.0 {
        "n up"
    } else if value < 0.0 {
        "n down"
    } else {
        "n"
    };
    format!("<td class=\"{class}\">{value:+.2} %</td>")
}

fn value_cell(value: &Value) -> String {
    match value {
        Value::Null => "<td class=\"n\">NULL</td>".to_owned(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("<td class=\"n\">{}</td>", number(f)),
            _ => format!("<td class=\"n\">{n}</td>"),
        },
        Value::String(s) => format!("<td>{}</td>", escape(s)),
        other => format!("<td>{}</td>", escape(&other.to_string())),
    }
}

/// The whole page; `svgs[i]` is the drawing of `report.charts[i]`.
pub fn page(report: &Report, svgs: &[String]) -> String {
    let mut html = String::with_capacity(64 * 1024 + svgs.iter().map(String::len).sum::<usize>());
    let dates = report.date_label();
    let glance = &report.glance;
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>kinetick report {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        escape(&dates)
    );
    let span = match (&glance.first_event_time, &glance.last_event_time) {
        (Some(first), Some(last)) => format!(
            " · event time {} to {} UTC",
            escape(&first.replace('T', " ").replace('Z', "")),
            escape(&last.replace('T', " ").replace('Z', ""))
        ),
        _ => String::new(),
    };
    let _ = write!(
        html,
        "<h1>kinetick report <span>{}</span></h1>\n\
         <p class=\"meta\">Lake <code>{}</code> · {} files · {} rows · {} symbols{span}</p>\n",
        escape(&dates),
        escape(&report.lake),
        count(report.files as u64),
        count(report.rows),
        count(glance.symbols as u64),
    );

    glance_section(&mut html, report);
    charts_section(&mut html, report, svgs);
    seed_section(&mut html, report);

    let _ = write!(
        html,
        "<footer>Written by <code>kinetick report</code> {}. <code>summary.json</code> beside \
         this page holds every number shown here, and every row of the answers.</footer>\n\
         </main>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    html
}

fn movers_table(html: &mut String, title: &str, movers: &[Mover], empty: &str) {
    let _ = write!(html, "<div class=\"card\"><h3>{title}</h3>");
    if movers.is_empty() {
        let _ = writeln!(html, "<p class=\"note\">{empty}</p></div>");
        return;
    }
    html.push_str(
        "<table><tr><th>symbol</th><th class=\"n\">last price</th>\
         <th class=\"n\">previous close</th><th class=\"n\">change</th></tr>",
    );
    for m in movers {
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>{}</tr>",
            escape(&m.symbol),
            number(m.price),
            number(m.previous_close),
            percent_cell(m.change_percent)
        );
    }
    html.push_str("</table></div>\n");
}

fn glance_section(html: &mut String, report: &Report) {
    let glance: &Glance = &report.glance;
    html.push_str("<h2>The day at a glance</h2>\n<div class=\"grid\">\n");
    movers_table(
        html,
        "Top gainers vs previous close",
        &glance.gainers,
        "No symbol closed the range above its previous close.",
    );
    movers_table(
        html,
        "Top losers vs previous close",
        &glance.losers,
        "No symbol closed the range below its previous close.",
    );
    anomalies_card(html, glance);
    dead_letters_card(html, report);
    html.push_str("</div>\n");
    html.push_str("<div class=\"card wide\">");
    match &glance.alerts {
        Some(alerts) => alerts_by_hour(html, alerts, report.alert_log.as_deref()),
        None => lake_marks_by_hour(html, glance),
    }
    held_alerts(html, glance);
    html.push_str("</div>\n");
}

/// The symbols with the most rows flagged as anomalies.
fn anomalies_card(html: &mut String, glance: &Glance) {
    html.push_str("<div class=\"card\"><h3>Most anomalies</h3>");
    if glance.most_anomalies.is_empty() {
        html.push_str("<p class=\"note\">No row is flagged as an anomaly.</p>");
    } else {
        html.push_str(
            "<table><tr><th>symbol</th><th class=\"n\">anomalies</th>\
             <th class=\"n\">ticks</th></tr>",
        );
        for a in &glance.most_anomalies {
            let _ = write!(
                html,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(&a.symbol),
                count(a.anomalies),
                count(a.ticks)
            );
        }
        html.push_str("</table>");
    }
    html.push_str("</div>\n");
}

/// Rejected records by reason, with an example of each.
fn dead_letters_card(html: &mut String, report: &Report) {
    let glance: &Glance = &report.glance;
    let _ = write!(
        html,
        "<div class=\"card\"><h3>Dead letters by reason</h3>\
         <p class=\"note\">{} rejected records that arrived on {} (dead letters are filed by \
         arrival date: the dates the report's ticks arrived on).</p>",
        count(glance.dead_letters),
        escape(&list_or_none(&report.dead_letter_dates))
    );
    if !glance.dead_letters_by_reason.is_empty() {
        html.push_str(
            "<table><tr><th>reason code</th><th class=\"n\">records</th>\
             <th>for example</th></tr>",
        );
        for r in &glance.dead_letters_by_reason {
            let _ = write!(
                html,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"reason\">{}</td></tr>",
                escape(&r.reason_code),
                count(r.count),
                escape(&r.example)
            );
        }
        html.push_str("</table>");
    }
    html.push_str("</div>\n");
}

/// The alerts by kind and hour, from the alert log or the lake.
fn alerts_by_hour(html: &mut String, alerts: &AlertSummary, log: Option<&str>) {
    let source = match log {
        Some(log) => format!("<code>{}</code>, each id once", escape(log)),
        None => "the lake's <code>alerts</code> column (what the rules sent on)".to_owned(),
    };
    let _ = write!(
        html,
        "<h3>Alerts by kind and hour (UTC)</h3><p class=\"note\">{} alerts from {source}.</p>",
        count(alerts.total),
    );
    let kinds: BTreeSet<&str> = alerts.by_kind.keys().copied().collect();
    html.push_str("<div class=\"wide-table\"><table><tr><th>hour</th>");
    for kind in &kinds {
        let _ = write!(html, "<th class=\"n\">{}</th>", escape(kind));
    }
    html.push_str("<th class=\"n\">total</th></tr>");
    for hour in &alerts.by_hour {
        let _ = write!(html, "<tr><td>{}</td>", escape(&hour.hour));
        for kind in &kinds {
            let n = hour.by_kind.get(kind).copied().unwrap_or(0);
            let _ = write!(html, "<td class=\"n\">{}</td>", count(n));
        }
        let _ = write!(html, "<td class=\"n\">{}</td></tr>", count(hour.total));
    }
    html.push_str("<tr><th>all hours</th>");
    for kind in &kinds {
        let _ = write!(html, "<th class=\"n\">{}</th>", count(alerts.by_kind[kind]));
    }
    let _ = write!(
        html,
        "<th class=\"n\">{}</th></tr></table></div>",
        count(alerts.total)
    );
}

/// What the symbols' alert budgets held back, if anything.
fn held_alerts(html: &mut String, glance: &Glance) {
    let held = &glance.alerts_held;
    if held.total == 0 {
        return;
    }
    let kinds: Vec<String> = held
        .by_kind
        .iter()
        .map(|(kind, n)| format!("{} {}", escape(kind), count(*n)))
        .collect();
    let symbols: Vec<String> = held
        .symbols
        .iter()
        .map(|(symbol, n)| format!("{} {}", escape(symbol), count(*n)))
        .collect();
    let _ = write!(
        html,
        "<p class=\"note\">{} alerts held back by the per-symbol hourly budget \
         (<code>rules.default.max-alerts-per-hour</code>): {}. Most held: {}.</p>",
        count(held.total),
        kinds.join(", "),
        symbols.join(", ")
    );
}

/// Without alerts from a log or the lake: the lake's anomalies and trend changes by hour.
fn lake_marks_by_hour(html: &mut String, glance: &Glance) {
    html.push_str(
        "<h3>Anomalies and trend changes by hour (UTC)</h3><p class=\"note\">No alert \
             was sent in this range, by the alert log or the lake's <code>alerts</code> column \
             (files written before the lake kept alert kinds have none). Shown instead: the \
             lake's rows flagged as anomalies, and its trend changes (the rows where the trend \
             turned, before any alert cooldown).</p>",
    );
    html.push_str(
        "<table><tr><th>hour</th><th class=\"n\">ticks</th><th class=\"n\">anomalies</th>\
             <th class=\"n\">trend up</th><th class=\"n\">trend down</th></tr>",
    );
    for hour in &glance.lake_by_hour {
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&hour.hour),
            count(hour.ticks),
            count(hour.anomalies),
            count(hour.trend_up),
            count(hour.trend_down)
        );
    }
    html.push_str("</table>");
}

fn list_or_none(items: &[String]) -> String {
    match items {
        [] => "no date".to_owned(),
        items => items.join(", "),
    }
}

fn charts_section(html: &mut String, report: &Report, svgs: &[String]) {
    html.push_str("<h2>Symbols</h2>\n");
    let _ = writeln!(
        html,
        "<p class=\"note\">{}. Price with its short and long SMAs and VWAP; circles mark rows \
         flagged as anomalies, triangles the rows where the trend turned up (below the price) \
         or down (above it), in two rows along the top of a chart with more than {} of them; \
         volume below, summed over equal slices of time. Times are UTC.</p>",
        escape(&report.chart_choice),
        super::render::INLINE_TREND_MARKERS
    );
    for (chart, svg) in report.charts.iter().zip(svgs) {
        let _ = writeln!(
            html,
            "<figure id=\"chart-{}\">{svg}</figure>",
            escape(&chart.file)
        );
    }
}

fn answer_table(html: &mut String, answer: &Answer, rows: usize) {
    // A narrow answer keeps its columns together instead of spreading over the page.
    let class = if answer.columns.len() <= 4 {
        " class=\"narrow\""
    } else {
        ""
    };
    let _ = write!(html, "<div class=\"wide-table\"><table{class}><tr>");
    for (index, column) in answer.columns.iter().enumerate() {
        let numeric = answer.rows.iter().any(|row| row[index].is_number());
        let class = if numeric { " class=\"n\"" } else { "" };
        let _ = write!(html, "<th{class}>{}</th>", escape(column));
    }
    html.push_str("</tr>");
    for row in answer.rows.iter().take(rows) {
        html.push_str("<tr>");
        for value in row {
            html.push_str(&value_cell(value));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table></div>");
}

fn seed_section(html: &mut String, report: &Report) {
    let seed = &report.seed_queries;
    html.push_str(
        "<h2>The seed queries</h2>\n<p class=\"note\">The four queries the earlier system ran \
         in Athena, answered over the same rows (<code>t</code> is the lake of the dates \
         above). NULLs count as SQL counts them: a row without a previous close has no price \
         change and is no move; <code>AVG</code> skips missing volumes.</p>\n",
    );
    let items: [(&str, &Answer, usize, String); 4] = [
        ("First rows", &seed.first_rows, usize::MAX, String::new()),
        (
            "Top 5 price changes",
            &seed.top_price_changes,
            usize::MAX,
            String::new(),
        ),
        (
            "Average volume per symbol",
            &seed.avg_volume,
            usize::MAX,
            format!("{} symbols.", count(seed.avg_volume.count as u64)),
        ),
        (
            "Moves over 5 % vs previous close",
            &seed.moves_over_5_percent,
            MOVES_SHOWN,
            format!(
                "{} rows; the first {} shown, all in <code>summary.json</code>.",
                count(seed.moves_over_5_percent.count as u64),
                MOVES_SHOWN.min(seed.moves_over_5_percent.count)
            ),
        ),
    ];
    for (title, answer, rows, extra) in items {
        let _ = write!(
            html,
            "<div class=\"card wide\"><h3>{title}</h3><pre><code>{}</code></pre>\
             <p class=\"note\">Order: {}. {extra}</p>",
            escape(answer.sql),
            escape(answer.order)
        );
        if answer.columns.len() == 2 {
            html.push_str("<div class=\"scroll\">");
            answer_table(html, answer, rows);
            html.push_str("</div>");
        } else {
            answer_table(html, answer, rows);
        }
        html.push_str("</div>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn numbers_and_counts() {
        assert_eq!(number(229.99200000000002), "229.992");
        assert_eq!(number(12.0), "12");
        assert_eq!(number(-0.00001), "0");
        assert_eq!(number(0.0129), "0.0129");
        assert_eq!(count(0), "0");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(100), "100");
    }
}
