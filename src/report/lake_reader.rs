//! Reads a lake through the [`ObjectStore`] port: which dates it holds, the rows of the tick
//! files of some dates, and the reasons of the dead letters of some dates.
//!
//! In: a store and the lake's key prefix (`""` for a directory `kinetick demo` wrote, `prefix/`
//! under an S3 bucket). Out: [`Row`]s, file by file in key order (all of them, or only some
//! symbols'), and dead-letter reasons.
//!
//! Files are fetched a few at a time (one GET each) and decoded off the async thread (Parquet
//! through Arrow's reader), and handed on in key order, so every run reads the rows in the same
//! order. A file's rows go on a record batch at a time, so memory holds the files being fetched
//! and a few batches of rows, whatever the size of the range. When only some symbols are wanted,
//! row groups whose `symbol` statistics exclude them are skipped, and of the others only the
//! wanted rows are decoded beyond the `symbol` column (files are sorted by symbol).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow_schema::ArrowError;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowPredicateFn, ParquetRecordBatchReaderBuilder, RowFilter};
use parquet::file::metadata::ParquetMetaData;
use tokio::sync::mpsc;

use super::row::Row;
use super::summary::DeadLetterCounts;
use crate::model::lake::{MEASURE_COLUMNS, partition_date};
use crate::model::rules::{AlertKinds, Trend};
use crate::objects::{ObjectError, ObjectStore};

/// Files fetched and decoded at once.
const READ_AHEAD: usize = 4;
/// Record batches a file decoded ahead of the one being handed on holds at most.
const BATCHES_AHEAD: usize = 2;

/// Rows of one record batch, or why the file could not be read.
type Batch = Result<Vec<Row>, ReadError>;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error("lake file {key} vanished while it was read")]
    Vanished { key: String },
    #[error("lake file {key} is not a tick file kinetick reads: {message}")]
    Parquet { key: String, message: String },
    #[error("--lake {0}: expected a directory or s3://bucket[/prefix]")]
    Location(String),
    #[error("{0}")]
    Dates(String),
}

/// Where the lake is: a local directory, or a bucket and key prefix on S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LakeLocation {
    Directory(PathBuf),
    S3 {
        bucket: String,
        /// `""` or a folder ending in `/`, as `lake.prefix`.
        prefix: String,
    },
}

impl LakeLocation {
    /// `s3://bucket[/prefix]`, or else a directory.
    pub fn parse(text: &str) -> Result<Self, ReadError> {
        let Some(rest) = text.strip_prefix("s3://") else {
            if text.is_empty() {
                return Err(ReadError::Location(text.to_owned()));
            }
            return Ok(Self::Directory(PathBuf::from(text)));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(ReadError::Location(text.to_owned()));
        }
        let prefix = prefix.trim_end_matches('/');
        Ok(Self::S3 {
            bucket: bucket.to_owned(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        })
    }
}

impl fmt::Display for LakeLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Directory(dir) => write!(f, "{}", dir.display()),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// The `YYYY-MM-DD` of a `…/dt=YYYY-MM-DD/…` key.
fn date_of(key: &str) -> Option<&str> {
    let start = key.find("/dt=")? + 4;
    let date = key.get(start..start + 10)?;
    (key.as_bytes().get(start + 10) == Some(&b'/')).then_some(date)
}

/// A date as `--date` and `--to` take it: `today` and `yesterday` (UTC, as the lake's `dt`
/// partitions are: a schedule cannot compute a date) become `YYYY-MM-DD`; anything else is kept
/// for [`select_dates`] to check.
pub fn resolve_day(text: &str, today: chrono::NaiveDate) -> String {
    let day = match text {
        "today" => today,
        "yesterday" => today - chrono::Days::new(1),
        _ => return text.to_owned(),
    };
    day.format("%Y-%m-%d").to_string()
}

/// The dates to report: `from` to `to` (both given as `YYYY-MM-DD`), `from` alone, or with
/// neither the newest date the lake holds.
pub fn select_dates(
    available: &BTreeSet<String>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<BTreeSet<String>, ReadError> {
    let valid = |date: &str| chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok();
    for date in from.iter().chain(to.iter()) {
        if !valid(date) || date.len() != 10 {
            return Err(ReadError::Dates(format!(
                "{date:?} is not a date: YYYY-MM-DD, today or yesterday"
            )));
        }
    }
    let (from, to) = match (from, to) {
        (Some(from), Some(to)) if to < from => {
            return Err(ReadError::Dates(format!(
                "--to {to} is before --date {from}"
            )));
        }
        (Some(from), to) => (from, to.unwrap_or(from)),
        (None, _) => match available.last() {
            Some(newest) => (newest.as_str(), newest.as_str()),
            None => return Ok(BTreeSet::new()),
        },
    };
    Ok(available
        .iter()
        .filter(|d| d.as_str() >= from && d.as_str() <= to)
        .cloned()
        .collect())
}

/// Every date from the first to the last of `ms` (epoch ms), as `YYYY-MM-DD`.
pub fn dates_between(first_ms: i64, last_ms: i64) -> Vec<String> {
    const MS_PER_DAY: i64 = 86_400_000;
    (first_ms.div_euclid(MS_PER_DAY)..=last_ms.div_euclid(MS_PER_DAY))
        .map(|day| partition_date(day * MS_PER_DAY))
        .collect()
}

/// What [`Lake::read_ticks`] hands on, in order.
#[derive(Debug)]
pub enum Ticks {
    /// Rows of the file at this index of the keys (a record batch of them).
    Rows(usize, Vec<Row>),
    /// The file at this index has been read.
    FileDone(usize),
}

/// A lake in an object store.
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl Lake {
    pub fn new(store: Arc<dyn ObjectStore>, prefix: impl Into<String>) -> Self {
        Self {
            store,
            prefix: prefix.into(),
        }
    }

    /// The tick files by date (keys in order).
    pub async fn tick_files(&self) -> Result<BTreeMap<String, Vec<String>>, ReadError> {
        self.files("ticks/", ".parquet").await
    }

    async fn files(
        &self,
        folder: &str,
        extension: &str,
    ) -> Result<BTreeMap<String, Vec<String>>, ReadError> {
        let mut by_date: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for key in self.store.list(&format!("{}{folder}", self.prefix)).await? {
            if let Some(date) = date_of(&key)
                && key.ends_with(extension)
            {
                by_date.entry(date.to_owned()).or_default().push(key);
            }
        }
        Ok(by_date)
    }

    /// Reads the tick files `keys`, in that order, handing on each file's rows a record batch
    /// at a time, then its end. With `only`, only those symbols' rows are decoded and handed on.
    pub async fn read_ticks(
        &self,
        keys: &[String],
        only: Option<Arc<BTreeSet<String>>>,
        mut take: impl FnMut(Ticks),
    ) -> Result<(), ReadError> {
        let mut files = futures::stream::iter(keys.iter().cloned().enumerate())
            .map(|(index, key)| {
                let (store, only) = (self.store.clone(), only.clone());
                async move {
                    let body = store
                        .get(&key)
                        .await?
                        .ok_or_else(|| ReadError::Vanished { key: key.clone() })?;
                    let (sender, batches) = mpsc::channel(BATCHES_AHEAD);
                    let name = key.clone();
                    let task = tokio::task::spawn_blocking(move || {
                        decode(&name, body, only.as_deref(), &sender);
                    });
                    Ok::<_, ReadError>((index, key, batches, task))
                }
            })
            .buffered(READ_AHEAD);
        while let Some((index, key, mut batches, task)) = files.try_next().await? {
            while let Some(batch) = batches.recv().await {
                take(Ticks::Rows(index, batch?));
            }
            // A decoding task that panicked closed its channel early.
            task.await.map_err(|e| ReadError::Parquet {
                key,
                message: format!("the decoding task failed: {e}"),
            })?;
            take(Ticks::FileDone(index));
        }
        Ok(())
    }

    /// The dead letters of `dates` (their arrival dates) by reason code, and the dates that had
    /// any.
    pub async fn dead_letters(
        &self,
        dates: &[String],
    ) -> Result<(DeadLetterCounts, Vec<String>), ReadError> {
        let wanted: BTreeSet<&str> = dates.iter().map(String::as_str).collect();
        let mut counts = DeadLetterCounts::default();
        let mut found = Vec::new();
        for (date, keys) in self.files("dead-letters/", ".jsonl").await? {
            if !wanted.contains(date.as_str()) {
                continue;
            }
            found.push(date);
            for key in keys {
                let Some(body) = self.store.get(&key).await? else {
                    continue;
                };
                count_reasons(&body, &mut counts);
            }
        }
        Ok((counts, found))
    }
}

/// Adds the reasons of one dead-letter file's lines; a line that is not a dead letter counts as
/// `unreadable_line`.
fn count_reasons(body: &[u8], counts: &mut DeadLetterCounts) {
    #[derive(serde::Deserialize)]
    struct Line {
        reason_code: String,
        reason: String,
    }
    for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<Line>(line) {
            Ok(line) => counts.add(&line.reason_code, &line.reason),
            Err(e) => counts.add("unreadable_line", &format!("not a dead letter: {e}")),
        }
    }
}

/// Sends the rows of one tick file (with `only`, of those symbols) a record batch at a time,
/// then an error if it cannot be read; stops early if nobody listens any more.
fn decode(key: &str, body: Bytes, only: Option<&BTreeSet<String>>, batches: &mpsc::Sender<Batch>) {
    let failed = |message: String| ReadError::Parquet {
        key: key.to_owned(),
        message,
    };
    let dt: Arc<str> = date_of(key).unwrap_or_default().into();
    let reader = ParquetRecordBatchReaderBuilder::try_new(body)
        .map_err(|e| e.to_string())
        .and_then(|builder| match only {
            Some(symbols) => only_symbols(builder, symbols),
            None => Ok(builder),
        })
        .and_then(|builder| builder.build().map_err(|e| e.to_string()));
    let reader = match reader {
        Ok(reader) => reader,
        Err(message) => {
            let _ = batches.blocking_send(Err(failed(message)));
            return;
        }
    };
    for batch in reader {
        let mut rows = Vec::new();
        let decoded = batch
            .map_err(|e| e.to_string())
            .and_then(|batch| batch_rows(&batch, &dt, &mut rows));
        let sent = match decoded {
            Ok(()) if rows.is_empty() => continue,
            Ok(()) => batches.blocking_send(Ok(rows)),
            Err(message) => {
                let _ = batches.blocking_send(Err(failed(message)));
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

/// The reader of `symbols`' rows only: row groups whose `symbol` statistics leave them all out
/// are skipped, and a filter on the `symbol` column selects the rows the other columns are
/// decoded for.
fn only_symbols(
    builder: ParquetRecordBatchReaderBuilder<Bytes>,
    symbols: &BTreeSet<String>,
) -> Result<ParquetRecordBatchReaderBuilder<Bytes>, String> {
    let leaf = builder
        .parquet_schema()
        .columns()
        .iter()
        .position(|column| column.name() == "symbol")
        .ok_or("no column `symbol`")?;
    let groups = row_groups_with(builder.metadata(), leaf, symbols);
    let mask = ProjectionMask::leaves(builder.parquet_schema(), [leaf]);
    let wanted = symbols.clone();
    let predicate = ArrowPredicateFn::new(mask, move |batch: RecordBatch| {
        let column = batch
            .column(0)
            .as_string_opt::<i32>()
            .ok_or_else(|| ArrowError::SchemaError("column `symbol` is not a string".into()))?;
        Ok(column
            .iter()
            .map(|symbol| Some(symbol.is_some_and(|s| wanted.contains(s))))
            .collect::<BooleanArray>())
    });
    Ok(builder
        .with_row_groups(groups)
        .with_row_filter(RowFilter::new(vec![Box::new(predicate)])))
}

/// Row groups whose `symbol` column (leaf `leaf`) may hold one of `symbols`, by its statistics.
fn row_groups_with(
    metadata: &ParquetMetaData,
    leaf: usize,
    symbols: &BTreeSet<String>,
) -> Vec<usize> {
    metadata
        .row_groups()
        .iter()
        .enumerate()
        .filter(|(_, group)| {
            let statistics = group.column(leaf).statistics();
            match statistics.and_then(|s| s.min_bytes_opt().zip(s.max_bytes_opt())) {
                Some((min, max)) => symbols
                    .iter()
                    .any(|symbol| (min..=max).contains(&symbol.as_bytes())),
                None => true,
            }
        })
        .map(|(index, _)| index)
        .collect()
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, String> {
    batch
        .column_by_name(name)
        .ok_or_else(|| format!("no column `{name}`"))
}

/// Appends the rows of one record batch. One function on purpose: it is the lake's schema read
/// column by column (each typed once), then row by row, and split it would only pass the
/// columns around.
fn batch_rows(batch: &RecordBatch, dt: &Arc<str>, rows: &mut Vec<Row>) -> Result<(), String> {
    let wrong = |name: &str| format!("column `{name}` has an unexpected type");
    let strings = |name: &'static str| {
        column(batch, name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| wrong(name))
    };
    let times = |name: &'static str| {
        column(batch, name)?
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| wrong(name))
    };
    let doubles = |name: &'static str| {
        column(batch, name)?
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| wrong(name))
    };
    let (symbol, event_time, price) = (strings("symbol")?, times("event_time")?, doubles("price")?);
    // In the lake's order: `at(j)` below reads measure `j`.
    let measures = MEASURE_COLUMNS.map(doubles);
    let mut m = Vec::with_capacity(measures.len());
    for measure in measures {
        m.push(measure?);
    }
    let anomaly = column(batch, "anomaly")?
        .as_boolean_opt()
        .ok_or_else(|| wrong("anomaly"))?;
    let trend = strings("trend")?;
    let (shard, sequence) = (strings("shard_id")?, strings("sequence_number")?);
    let sub_sequence = column(batch, "sub_sequence_number")?
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| wrong("sub_sequence_number"))?;
    let arrival = times("arrival_time")?;
    // Absent from files written before the lake kept alert kinds.
    let kinds = |name: &'static str| match batch.column_by_name(name) {
        None => Ok(None),
        Some(column) => column
            .as_string_opt::<i32>()
            .map(Some)
            .ok_or_else(|| wrong(name)),
    };
    let (alerts, alerts_held) = (kinds("alerts")?, kinds("alerts_held")?);
    let kinds_at = |column: Option<&StringArray>, i: usize| {
        column
            .filter(|c| !c.is_null(i))
            .map_or_else(AlertKinds::default, |c| AlertKinds::parse(c.value(i)))
    };

    rows.reserve(batch.num_rows());
    for i in 0..batch.num_rows() {
        let at = |j: usize| (!m[j].is_null(i)).then(|| m[j].value(i));
        let trend = match (!trend.is_null(i)).then(|| trend.value(i)) {
            None => None,
            Some("up") => Some(Trend::Up),
            Some("down") => Some(Trend::Down),
            Some(other) => return Err(format!("row {i}: trend {other:?} is not up or down")),
        };
        rows.push(Row {
            symbol: symbol.value(i).to_owned(),
            event_time_ms: event_time.value(i),
            price: price.value(i),
            open: at(0),
            high: at(1),
            low: at(2),
            previous_close: at(3),
            change: at(4),
            change_percent: at(5),
            volume: at(6),
            sma_short: at(7),
            sma_long: at(8),
            ema: at(9),
            vwap: at(10),
            window_high: at(11),
            window_low: at(12),
            volatility: at(13),
            log_return: at(14),
            return_zscore: at(15),
            volume_ratio: at(16),
            anomaly: !anomaly.is_null(i) && anomaly.value(i),
            trend,
            shard_id: shard.value(i).to_owned(),
            sequence_number: sequence.value(i).to_owned(),
            sub_sequence_number: sub_sequence.value(i),
            arrival_time_ms: arrival.value(i),
            alerts: kinds_at(alerts, i),
            alerts_held: kinds_at(alerts_held, i),
            dt: dt.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::enriched::EnrichedTick;
    use crate::model::lake::encode_files;
    use crate::model::tick::{Position, SequenceNumber, Tick};
    use crate::model::window::Indicators;
    use crate::objects::local::LocalObjectStore;

    fn sample_ticks(n: usize) -> Vec<EnrichedTick> {
        (0..n)
            .map(|i| EnrichedTick {
                tick: Tick {
                    symbol: ["MSFT", "AAPL"][i % 2].into(),
                    price: 100.0 + i as f64,
                    event_time_ms: 1_767_623_400_000 + i as i64,
                    open: Some(99.5),
                    high: None,
                    low: None,
                    previous_close: (i != 1).then_some(98.0),
                    change: None,
                    change_percent: None,
                    volume: Some(10.0 * i as f64),
                },
                shard_id: "shard-1".into(),
                position: Position::new(SequenceNumber::new(format!("{:03}", 100 + i)), 0),
                arrival_time_ms: 1_767_623_400_040 + i as i64,
                indicators: Indicators {
                    sma_short: (i > 0).then_some(100.25),
                    ..Indicators::default()
                },
                anomaly: i == 2,
                trend: (i > 1).then_some(Trend::Down),
                alerts: AlertKinds::default(),
                alerts_held: AlertKinds::default(),
            })
            .collect()
    }

    fn dates(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn locations() {
        assert_eq!(
            LakeLocation::parse("s3://bucket/lake/one/").unwrap(),
            LakeLocation::S3 {
                bucket: "bucket".into(),
                prefix: "lake/one/".into()
            }
        );
        for bare in ["s3://bucket", "s3://bucket/"] {
            assert_eq!(
                LakeLocation::parse(bare).unwrap(),
                LakeLocation::S3 {
                    bucket: "bucket".into(),
                    prefix: String::new()
                }
            );
        }
        assert!(LakeLocation::parse("s3://").is_err());
        assert_eq!(
            LakeLocation::parse("out").unwrap(),
            LakeLocation::Directory("out".into())
        );
        assert_eq!(
            LakeLocation::parse("s3://b/p").unwrap().to_string(),
            "s3://b/p/"
        );
    }

    #[test]
    fn dates_default_to_the_newest_and_ranges_are_inclusive() {
        let available = dates(&["2026-01-05", "2026-01-06", "2026-01-08"]);
        assert_eq!(
            select_dates(&available, None, None).unwrap(),
            dates(&["2026-01-08"])
        );
        assert_eq!(
            select_dates(&available, Some("2026-01-06"), None).unwrap(),
            dates(&["2026-01-06"])
        );
        assert_eq!(
            select_dates(&available, Some("2026-01-05"), Some("2026-01-07")).unwrap(),
            dates(&["2026-01-05", "2026-01-06"])
        );
        assert!(
            select_dates(&available, Some("2026-01-07"), None)
                .unwrap()
                .is_empty()
        );
        assert!(select_dates(&available, Some("2026-1-5"), None).is_err());
        assert!(select_dates(&available, Some("2026-01-06"), Some("2026-01-05")).is_err());
        assert!(
            select_dates(&BTreeSet::new(), None, None)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn today_and_yesterday_are_dates() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(resolve_day("today", today), "2026-03-01");
        assert_eq!(resolve_day("yesterday", today), "2026-02-28");
        assert_eq!(resolve_day("2026-01-05", today), "2026-01-05");
        assert_eq!(
            resolve_day("Today", today),
            "Today",
            "left for select_dates to refuse"
        );
    }

    #[test]
    fn partition_dates_of_keys() {
        assert_eq!(
            date_of("p/ticks/dt=2026-01-05/shard-1.parquet"),
            Some("2026-01-05")
        );
        assert_eq!(date_of("ticks/dt=2026-01-05.parquet"), None);
        assert_eq!(date_of("ticks/x.parquet"), None);
        assert_eq!(
            dates_between(1_767_571_200_000 - 1, 1_767_571_200_000 + 86_400_000),
            ["2026-01-04", "2026-01-05", "2026-01-06"]
        );
    }

    #[test]
    fn row_groups_without_the_symbols_are_skipped() {
        let files = encode_files("", "shard-1", &sample_ticks(6)).unwrap();
        let body = Bytes::from(files[0].bytes.clone());
        let batches: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(body)
            .unwrap()
            .build()
            .unwrap()
            .map(Result::unwrap)
            .collect();
        // The same rows (AAPL's three, then MSFT's), two to a row group.
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(2))
            .build();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(Vec::new(), batches[0].schema(), Some(props))
                .unwrap();
        for batch in &batches {
            writer.write(batch).unwrap();
        }
        let body = Bytes::from(writer.into_inner().unwrap());
        let builder = ParquetRecordBatchReaderBuilder::try_new(body).unwrap();
        let only = |symbols: &[&str]| {
            let symbols = symbols.iter().map(|s| s.to_string()).collect();
            row_groups_with(builder.metadata(), 0, &symbols)
        };
        assert_eq!(builder.metadata().num_row_groups(), 3);
        assert_eq!(only(&["MSFT"]), [1, 2], "the middle group holds both");
        assert_eq!(only(&["AAPL"]), [0, 1]);
        assert_eq!(
            only(&["IBM"]),
            [1],
            "between the middle group's least and greatest"
        );
        assert!(only(&["NVDA"]).is_empty());
        assert_eq!(only(&["AAPL", "ZZZ"]), [0, 1]);
    }

    #[tokio::test]
    async fn reads_back_the_rows_the_lake_writer_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalObjectStore::new(dir.path());
        let ticks = sample_ticks(3);
        let files = encode_files("", "shard-1", &ticks).unwrap();
        for file in &files {
            store
                .put(&file.key, Bytes::from(file.bytes.clone()), "")
                .await
                .unwrap();
        }
        store
            .put(
                "dead-letters/dt=2026-01-05/shard-1-1.jsonl",
                Bytes::from_static(
                    b"{\"reason_code\":\"missing_field\",\"reason\":\"no price\"}\nnot json\n",
                ),
                "",
            )
            .await
            .unwrap();
        let lake = Lake::new(Arc::new(store), "");
        let by_date = lake.tick_files().await.unwrap();
        let keys: Vec<String> = by_date.values().flatten().cloned().collect();
        let mut rows = Vec::new();
        let mut done = 0;
        lake.read_ticks(&keys, None, |ticks| match ticks {
            Ticks::Rows(_, r) => rows.extend(r),
            Ticks::FileDone(_) => done += 1,
        })
        .await
        .unwrap();
        assert_eq!(done, keys.len());
        assert_eq!(rows.len(), ticks.len());
        // Files hold a symbol's rows together: AAPL's row comes first.
        let sequences: Vec<&str> = rows.iter().map(|r| r.sequence_number.as_str()).collect();
        assert_eq!(sequences, ["101", "100", "102"]);
        let row = &rows[2];
        assert_eq!(row.symbol, "MSFT");
        assert_eq!(row.event_time_ms, 1_767_623_400_002);
        assert_eq!(row.price, 102.0);
        assert_eq!(row.previous_close, Some(98.0));
        assert_eq!(rows[0].previous_close, None);
        assert_eq!(row.volume, Some(20.0));
        assert_eq!(row.sma_short, Some(100.25));
        assert_eq!(row.ema, None);
        assert!(row.anomaly && !rows[1].anomaly);
        assert_eq!((row.trend, rows[1].trend), (Some(Trend::Down), None));
        assert_eq!(row.arrival_time_ms, 1_767_623_400_042);
        assert_eq!((row.shard_id.as_str(), &*row.dt), ("shard-1", "2026-01-05"));

        // Only some symbols: the others' rows are not handed on.
        let only = Arc::new(BTreeSet::from(["MSFT".to_owned()]));
        let mut msft = Vec::new();
        lake.read_ticks(&keys, Some(only), |ticks| {
            if let Ticks::Rows(_, r) = ticks {
                msft.extend(r);
            }
        })
        .await
        .unwrap();
        let sequences: Vec<&str> = msft.iter().map(|r| r.sequence_number.as_str()).collect();
        assert_eq!(sequences, ["100", "102"]);
        assert_eq!(msft[1], rows[2]);

        let (counts, found) = lake
            .dead_letters(&["2026-01-05".to_owned(), "2026-01-06".to_owned()])
            .await
            .unwrap();
        assert_eq!(found, ["2026-01-05"]);
        let glance = super::super::summary::glance(
            &super::super::tally::Tally::default(),
            None,
            &BTreeSet::new(),
            counts,
        );
        assert_eq!(glance.dead_letters, 2);
    }
}
