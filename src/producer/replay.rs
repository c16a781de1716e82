//! `kinetick replay`: historical bars from CSV files as ticks.
//!
//! Two layouts, told apart by the header: the one finance sites export
//! (`Date,Open,High,Low,Close,Adj Close,Volume`, daily or intraday; the symbol comes from
//! `--symbol` or the file name) and a generic `timestamp,symbol,price[,volume]`. Each row becomes
//! one tick; `previous_close` is the symbol's last price of the previous day, from which `change`
//! and `change_percent` follow. All files are merged in time order, and sent as fast as allowed
//! or time-compressed by `speed`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::{Producer, ProducerError, RecordSink, SeedTick, Stats};

/// A line that could not be replayed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct BadLine {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

/// One row, before `previous_close` is known.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    time: DateTime<Utc>,
    tick: SeedTick,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    /// `Date,Open,High,Low,Close,Adj Close,Volume`.
    Bars,
    /// `timestamp,symbol,price[,volume]`.
    Ticks,
}

/// Column positions of a header.
struct Columns {
    layout: Layout,
    index: HashMap<String, usize>,
}

impl Columns {
    fn of(header: &csv::StringRecord) -> Result<Self, String> {
        let index: HashMap<String, usize> = header
            .iter()
            .enumerate()
            .map(|(i, name)| (name.trim().to_ascii_lowercase(), i))
            .collect();
        let has = |names: &[&str]| names.iter().all(|n| index.contains_key(*n));
        let layout = if has(&["date", "close"]) {
            Layout::Bars
        } else if has(&["timestamp", "symbol", "price"]) {
            Layout::Ticks
        } else {
            return Err(format!(
                "unknown header {:?}: expected Date,Open,High,Low,Close,Adj Close,Volume or timestamp,symbol,price,volume",
                header.iter().collect::<Vec<_>>()
            ));
        };
        Ok(Self { layout, index })
    }

    fn field<'r>(&self, record: &'r csv::StringRecord, name: &str) -> Option<&'r str> {
        self.index
            .get(name)
            .and_then(|i| record.get(*i))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    fn number(&self, record: &csv::StringRecord, name: &str) -> Result<Option<f64>, String> {
        match self.field(record, name) {
            None => Ok(None),
            Some(text) => match text.parse::<f64>() {
                Ok(value) if value.is_finite() => Ok(Some(value)),
                _ => Err(format!("{name} is not a number: {text:?}")),
            },
        }
    }

    fn row(&self, record: &csv::StringRecord, symbol: Option<&str>) -> Result<Row, String> {
        let (time_column, price_column) = match self.layout {
            Layout::Bars => ("date", "close"),
            Layout::Ticks => ("timestamp", "price"),
        };
        let time_text = self
            .field(record, time_column)
            .ok_or_else(|| format!("{time_column} is missing"))?;
        let time = parse_time(time_text)?;
        let symbol = match self.layout {
            Layout::Bars => symbol.map(str::to_owned),
            Layout::Ticks => self.field(record, "symbol").map(str::to_owned),
        }
        .ok_or("symbol is missing (give --symbol for files without a symbol column)")?;
        let price = self
            .number(record, price_column)?
            .ok_or_else(|| format!("{price_column} is missing"))?;
        if price <= 0.0 {
            return Err(format!("{price_column} must be positive, got {price}"));
        }
        let volume = self.number(record, "volume")?;
        if volume.is_some_and(|v| v < 0.0) {
            return Err("volume is negative".into());
        }
        Ok(Row {
            time,
            tick: SeedTick {
                symbol,
                open: self.number(record, "open")?,
                high: self.number(record, "high")?,
                low: self.number(record, "low")?,
                price,
                previous_close: None,
                change: None,
                change_percent: None,
                volume,
                timestamp: time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            },
        })
    }
}

/// RFC 3339, `YYYY-MM-DD HH:MM:SS[±HH:MM]` (UTC without an offset), a date (midnight UTC),
/// or epoch seconds / milliseconds.
fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%:z", "%Y-%m-%d %H:%M:%S%z"] {
        if let Ok(time) = DateTime::parse_from_str(text, format) {
            return Ok(time.with_timezone(&Utc));
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(time.and_utc());
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc());
    }
    if let Ok(number) = text.parse::<i64>() {
        let millis = if number.abs() >= 100_000_000_000 {
            number
        } else {
            number * 1000
        };
        if let Some(time) = DateTime::from_timestamp_millis(millis) {
            return Ok(time);
        }
    }
    Err(format!("timestamp not understood: {text:?}"))
}

/// Reads one CSV file: its rows in file order, and its bad lines.
fn read_file(path: &Path, symbol: Option<&str>) -> Result<(Vec<Row>, Vec<BadLine>), BadLine> {
    let file = path.display().to_string();
    let bad = |line: u64, reason: String| BadLine {
        file: file.clone(),
        line,
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| bad(0, e.to_string()))?;
    let header = reader.headers().map_err(|e| bad(1, e.to_string()))?.clone();
    let columns = Columns::of(&header).map_err(|reason| bad(1, reason))?;
    // Bars files name the symbol in the file name (AAPL.csv) unless told otherwise.
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_ascii_uppercase());
    let symbol = symbol.map(str::to_owned).or(stem);
    let (mut rows, mut bad_lines) = (Vec::new(), Vec::new());
    for result in reader.records() {
        match result {
            Ok(record) => {
                let line = record.position().map_or(0, |p| p.line());
                match columns.row(&record, symbol.as_deref()) {
                    Ok(row) => rows.push(row),
                    Err(reason) => bad_lines.push(bad(line, reason)),
                }
            }
            Err(error) => {
                let line = error.position().map_or(0, |p| p.line());
                bad_lines.push(bad(line, error.to_string()));
            }
        }
    }
    Ok((rows, bad_lines))
}

/// The CSV files named, directories expanded to the `.csv` files in them (sorted).
pub fn expand(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// A tick and the instant it stands for.
pub type TimedTick = (DateTime<Utc>, SeedTick);

/// Every file's ticks merged in time order with `previous_close` filled in, and the bad lines.
pub fn load(files: &[PathBuf], symbol: Option<&str>) -> (Vec<TimedTick>, Vec<BadLine>) {
    let mut rows = Vec::new();
    let mut bad_lines = Vec::new();
    for file in files {
        match read_file(file, symbol) {
            Ok((file_rows, file_bad)) => {
                rows.extend(file_rows);
                bad_lines.extend(file_bad);
            }
            Err(unreadable) => bad_lines.push(unreadable),
        }
    }
    // Stable: rows at the same instant keep their file order.
    rows.sort_by_key(|row| row.time);
    let mut last: HashMap<String, (NaiveDate, f64)> = HashMap::new();
    let mut previous_close: HashMap<String, f64> = HashMap::new();
    let mut ticks = Vec::with_capacity(rows.len());
    for row in rows {
        let day = row.time.date_naive();
        let symbol = row.tick.symbol.clone();
        if let Some((last_day, last_price)) = last.get(&symbol)
            && *last_day < day
        {
            previous_close.insert(symbol.clone(), *last_price);
        }
        last.insert(symbol.clone(), (day, row.tick.price));
        let tick = row
            .tick
            .with_previous_close(previous_close.get(&symbol).copied());
        ticks.push((row.time, tick));
    }
    (ticks, bad_lines)
}

/// Sends the ticks in order: as fast as the stream takes them, or with the gaps between their
/// timestamps divided by `speed`.
pub async fn replay(
    ticks: Vec<TimedTick>,
    speed: Option<f64>,
    sink: Arc<dyn RecordSink>,
    progress: bool,
) -> (Stats, Result<(), ProducerError>) {
    let mut producer = Producer::new(sink, Some(ticks.len() as u64), progress);
    let interrupted = super::simulated::interrupt_flag();
    let mut result = Ok(());
    let mut previous: Option<DateTime<Utc>> = None;
    for (time, tick) in ticks {
        if interrupted.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        if let (Some(speed), Some(previous)) = (speed, previous) {
            let gap = (time - previous).to_std().unwrap_or_default();
            if !gap.is_zero() {
                // Everything before this instant goes out before waiting.
                if let Err(error) = producer.send_while_above(1).await {
                    result = Err(error);
                    break;
                }
                tokio::time::sleep(Duration::from_secs_f64(gap.as_secs_f64() / speed)).await;
            }
        }
        previous = Some(time);
        producer.push(tick.record());
        if producer.backlog() >= super::batch::MAX_RECORDS
            && let Err(error) = producer.send_while_above(super::batch::MAX_RECORDS).await
        {
            result = Err(error);
            break;
        }
    }
    let (stats, finished) = producer.finish().await;
    (stats, result.and(finished))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn daily_bars_become_ticks_with_the_previous_close() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "aapl.csv",
            "Date,Open,High,Low,Close,Adj Close,Volume\n\
             2024-01-02,187.15,188.44,183.89,185.64,184.94,82488700\n\
             2024-01-03,184.22,185.88,183.43,184.25,183.55,58414500\n",
        );
        let (ticks, bad) = load(&[file], None);
        let ticks: Vec<SeedTick> = ticks.into_iter().map(|(_, t)| t).collect();
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ticks.len(), 2);
        assert_eq!(ticks[0].symbol, "AAPL");
        assert_eq!(ticks[0].previous_close, None);
        assert_eq!(ticks[1].previous_close, Some(185.64));
        assert_eq!(ticks[1].change, Some(-1.39));
        assert_eq!(ticks[1].change_percent, Some(-0.7488));
        assert_eq!(ticks[1].timestamp, "2024-01-03T00:00:00.000Z");
        assert_eq!(
            (ticks[1].open, ticks[1].volume),
            (Some(184.22), Some(58414500.0))
        );
    }

    #[test]
    fn intraday_ticks_take_the_previous_days_last_price() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "ticks.csv",
            "timestamp,symbol,price,volume\n\
             2024-01-02T15:59:00Z,MSFT,370.00,100\n\
             2024-01-02T20:59:00Z,MSFT,371.00,100\n\
             2024-01-03 14:30:00,MSFT,375.10,200\n\
             1704292260000,MSFT,376.00,50\n",
        );
        let (ticks, bad) = load(&[file], None);
        assert!(bad.is_empty(), "{bad:?}");
        let closes: Vec<_> = ticks.iter().map(|(_, t)| t.previous_close).collect();
        assert_eq!(closes, vec![None, None, Some(371.0), Some(371.0)]);
    }

    #[test]
    fn bad_lines_are_reported_with_file_and_line_and_the_rest_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "IBM.csv",
            "Date,Open,High,Low,Close,Adj Close,Volume\n\
             2024-01-02,160,161,159,160.5,160.5,1000\n\
             2024-01-03,null,null,null,null,null,null\n\
             yesterday,160,161,159,160.5,160.5,1000\n\
             2024-01-05,160,161,159,-3,160.5,1000\n\
             2024-01-08,160,161,159,162,162,1000\n",
        );
        let (ticks, bad) = load(std::slice::from_ref(&file), None);
        assert_eq!(ticks.len(), 2);
        let lines: Vec<_> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![3, 4, 5]);
        assert!(
            bad[0]
                .to_string()
                .starts_with(&format!("{}:3: ", file.display()))
        );
        assert!(bad[0].reason.contains("open is not a number") || bad[0].reason.contains("close"));
        assert!(bad[1].reason.contains("timestamp not understood"));
        assert!(bad[2].reason.contains("must be positive"));
    }

    #[test]
    fn files_merge_in_time_order_and_unknown_headers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a.csv",
            "timestamp,symbol,price\n2024-01-02T10:00:02Z,A,1\n",
        );
        write(
            dir.path(),
            "b.csv",
            "timestamp,symbol,price\n2024-01-02T10:00:01Z,B,1\n",
        );
        write(dir.path(), "c.txt", "not a csv\n");
        let files = expand(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(files.len(), 2);
        let (ticks, _) = load(&files, None);
        let symbols: Vec<_> = ticks.iter().map(|(_, t)| t.symbol.as_str()).collect();
        assert_eq!(symbols, vec!["B", "A"]);

        let odd = write(dir.path(), "odd.csv", "when,what\n1,2\n");
        let (_, bad) = load(&[odd], None);
        assert_eq!(bad.len(), 1);
        assert!(bad[0].reason.contains("unknown header"));
    }
}
