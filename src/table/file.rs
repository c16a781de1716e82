//! The ticks table as a JSON-lines file of DynamoDB JSON items (one item per line). Appending is
//! the write; reading keeps the last item per key, which gives put semantics to replays.
//!
//! In: [`Item`]s. Out: lines such as `{"symbol":{"S":"AAPL"},"price":{"N":"1.5"}}` appended to
//! one file, readable with [`FileTicksTable::scan`].
//!
//! Crash safety: a line counts only once its `\n` is on disk. A write cut short by `kill -9`
//! leaves at most one unterminated last line; `scan` skips it and reopening the table truncates
//! it, so the next append starts on a line of its own. Its items were never acknowledged, so
//! the replay from the last checkpoint writes them again.
//!
//! Durability: `put_items` returns once its lines are handed to the OS (survives `kill -9`);
//! [`FileTicksTable::with_fsync`] also syncs the file (power loss). One process writes a file.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{TableError, TicksTable};
use crate::failure::Failure;
use crate::local_files::{LineLog, complete_lines, is_transient};
use crate::model::item::{AttributeSink, Item};

/// Errors of opening and reading the table file; writes report [`TableError`].
#[derive(Debug, thiserror::Error)]
pub enum FileTableError {
    #[error("ticks table file {} could not be opened: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("ticks table file {} could not be read: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// A complete line that is not an item: damage, not a torn write, so it is not skipped.
    #[error("ticks table file {}, line {line}: {message}", path.display())]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// The local ticks table: a JSON-lines file shared by every writer of the process.
#[derive(Debug)]
pub struct FileTicksTable {
    log: LineLog,
}

impl FileTicksTable {
    /// Opens (or creates) the table file, creating its parent directories, and truncates a torn
    /// last line left by a crash.
    pub fn new(path: impl Into<PathBuf>) -> Result<Self, FileTableError> {
        let path = path.into();
        let log = LineLog::open(&path).map_err(|source| FileTableError::Open { path, source })?;
        Ok(Self { log })
    }

    /// Also `fsync` the file before `put_items` returns (off by default: the local table serves
    /// demos, where surviving `kill -9` is the promise, not power loss).
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.log.fsync = fsync;
        self
    }

    pub fn path(&self) -> &Path {
        self.log.path()
    }

    /// The table as DynamoDB would hold it: the last item written per (`symbol`, `timestamp`),
    /// sorted by that key. A torn last line is skipped with a warning.
    pub async fn scan(path: impl AsRef<Path>) -> Result<Vec<serde_json::Value>, FileTableError> {
        let path = path.as_ref();
        let bytes = read_log(path).await?;
        let mut rows = BTreeMap::new();
        for (index, line) in complete_lines(path, &bytes).enumerate() {
            let corrupt = |message: String| FileTableError::Corrupt {
                path: path.to_owned(),
                line: index + 1,
                message,
            };
            let item: serde_json::Value =
                serde_json::from_slice(line).map_err(|e| corrupt(e.to_string()))?;
            let key = item_key(&item).ok_or_else(|| {
                corrupt("item lacks a string `symbol` or `timestamp` attribute".into())
            })?;
            rows.insert(key, item);
        }
        Ok(rows.into_values().collect())
    }

    /// Complete lines in the file, i.e. items written including overwritten ones, so tests can
    /// tell "written once" from "written twice, read once".
    pub async fn line_count(path: impl AsRef<Path>) -> Result<usize, FileTableError> {
        let path = path.as_ref();
        let bytes = read_log(path).await?;
        Ok(complete_lines(path, &bytes).count())
    }
}

#[async_trait]
impl TicksTable for FileTicksTable {
    async fn put_items(&self, items: &[Item<'_>]) -> Result<(), TableError> {
        let error = |message: String, failure: Failure| TableError::Write {
            items: items.len(),
            message,
            failure,
        };
        let io_error = |e: io::Error| {
            error(
                format!("{}: {e}", self.log.path().display()),
                Failure::from_retryable(is_transient(&e)),
            )
        };
        // A chunk is written as soon as it is encoded, while it is still in the CPU's cache, and
        // each writer encodes its own (the log is locked only for the write).
        let mut lines = Vec::new();
        let mut rest = items;
        while !rest.is_empty() {
            lines.clear();
            let encoded = encode_chunk(rest, &mut lines)
                .map_err(|message| error(message, Failure::ItemRefused))?;
            self.log.append(&lines).await.map_err(io_error)?;
            rest = &rest[encoded..];
        }
        self.log.sync().await.map_err(io_error)
    }
}

/// How many bytes of lines the table encodes before it writes them: a batch goes to the log a
/// chunk at a time, as a batch goes to DynamoDB 25 items at a time. If one fails, those before
/// it stay written, and the retry of the batch writes their items again (put semantics).
///
/// Each chunk is written while it is still in the CPU's cache (a core has 512 KiB to 2 MiB of
/// it); encoding a batch's megabytes of lines first and writing them after would read them all
/// back from memory.
const CHUNK_BYTES: usize = 256 << 10;

/// Appends the lines of `items` to `out` until it holds `CHUNK_BYTES` or the items run out,
/// and returns how many were encoded: [`FileTicksTable::put_items`] writes a chunk at a time.
/// Fails on an item that cannot be stored.
pub fn encode_chunk(items: &[Item<'_>], out: &mut Vec<u8>) -> Result<usize, String> {
    // Room for a chunk and the line that ends it (a tick's is about 900 bytes).
    out.reserve((CHUNK_BYTES + 4096).saturating_sub(out.len()));
    for (encoded, item) in items.iter().enumerate() {
        if out.len() >= CHUNK_BYTES {
            return Ok(encoded);
        }
        // DynamoDB refuses an item without its key; so does this table, or scans would fail.
        encode_item(item, out)?;
    }
    Ok(items.len())
}

/// Appends one item as a DynamoDB JSON line, attributes in item order, or says why it cannot
/// be stored (no string `symbol` or `timestamp`).
fn encode_item(item: &Item, out: &mut Vec<u8>) -> Result<(), String> {
    let mut line = JsonLine {
        out,
        has_symbol: false,
        has_timestamp: false,
    };
    let start = line.out.len();
    line.out.push(b'{');
    item.write(&mut line);
    if !(line.has_symbol && line.has_timestamp) {
        line.out.truncate(start);
        return Err("item lacks a string `symbol` or `timestamp` attribute".into());
    }
    // Every attribute ends in a comma; the last one's closes the object instead.
    let end = line
        .out
        .last_mut()
        .expect("the key attributes were written");
    *end = b'}';
    line.out.push(b'\n');
    Ok(())
}

/// Writes attributes as the members of a DynamoDB JSON object, each followed by a comma.
///
/// Hand-written rather than through serde: this is the demo's busiest loop (one line per tick),
/// and only string values can need escaping. An attribute is five appends (name and value, and
/// the constant text around them, in one piece each): every append checks the buffer's room, and
/// numbers, a tick's 19 most common attributes, are written for every tick.
struct JsonLine<'a> {
    out: &'a mut Vec<u8>,
    has_symbol: bool,
    has_timestamp: bool,
}

impl JsonLine<'_> {
    /// `"name` and `opening`, which closes the name and opens the value (`":{"N":"`); the caller
    /// writes the value and what closes the attribute.
    #[inline(always)]
    fn open(&mut self, name: &'static str, opening: &'static [u8]) {
        // Attribute names are the item module's identifiers: nothing to escape.
        debug_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(opening);
    }

    /// Notes the key attributes, which every line must have.
    fn saw_string(&mut self, name: &'static str) {
        match name {
            "symbol" => self.has_symbol = true,
            "timestamp" => self.has_timestamp = true,
            _ => {}
        }
    }
}

impl AttributeSink for JsonLine<'_> {
    fn string(&mut self, name: &'static str, value: &str) {
        self.open(name, b"\":{\"S\":");
        write_string(value, self.out);
        self.out.extend_from_slice(b"},");
        self.saw_string(name);
    }

    fn joined_string(&mut self, name: &'static str, pieces: &[&str]) {
        if pieces.iter().any(|piece| needs_escape(piece)) {
            return self.string(name, &pieces.concat());
        }
        self.open(name, b"\":{\"S\":\"");
        for piece in pieces {
            self.out.extend_from_slice(piece.as_bytes());
        }
        self.out.extend_from_slice(b"\"},");
        self.saw_string(name);
    }

    #[inline]
    fn number(&mut self, name: &'static str, value: &str) {
        // Numbers are digits, sign, point and exponent: nothing to escape.
        self.open(name, b"\":{\"N\":\"");
        self.out.extend_from_slice(value.as_bytes());
        self.out.extend_from_slice(b"\"},");
    }

    fn boolean(&mut self, name: &'static str, value: bool) {
        self.open(name, b"\":{\"BOOL\":");
        self.out
            .extend_from_slice(if value { b"true}," } else { b"false}," });
    }
}

/// A JSON string; serde's escaping only when a character needs it.
fn write_string(text: &str, out: &mut Vec<u8>) {
    if needs_escape(text) {
        serde_json::to_writer(&mut *out, text).expect("a string encodes into memory");
        return;
    }
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
}

/// Whether a JSON string of `text` needs escapes. Every byte is looked at (no early exit) so the
/// compiler checks 16 or 32 at a time: the strings are short and seldom need escaping, and a
/// byte-by-byte scan was a tenth of the line.
fn needs_escape(text: &str) -> bool {
    text.bytes().fold(false, |found, b| {
        found | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

fn item_key(item: &serde_json::Value) -> Option<(String, String)> {
    let string = |name: &str| item.get(name)?.get("S")?.as_str().map(str::to_owned);
    Some((string("symbol")?, string("timestamp")?))
}

async fn read_log(path: &Path) -> Result<Vec<u8>, FileTableError> {
    tokio::fs::read(path)
        .await
        .map_err(|source| FileTableError::Read {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use super::*;
    use crate::model::item::AttrValue;
    use serde_json::json;

    fn item(symbol: &str, timestamp: &str, price: &str) -> Item<'static> {
        Item::Attributes(vec![
            ("symbol", AttrValue::S(symbol.into())),
            ("timestamp", AttrValue::S(timestamp.into())),
            ("price", AttrValue::N(price.into())),
            ("anomaly", AttrValue::Bool(false)),
        ])
    }

    fn table() -> (tempfile::TempDir, FileTicksTable) {
        let dir = tempfile::tempdir().unwrap();
        let table = FileTicksTable::new(dir.path().join("nested/dir/ticks.jsonl")).unwrap();
        (dir, table)
    }

    #[tokio::test]
    async fn put_then_scan_gives_dynamodb_json_sorted_by_key() {
        let (_dir, table) = table();
        let t1 = "2026-01-05T14:30:00.000Z#1";
        let t2 = "2026-01-05T14:30:01.000Z#2";
        table
            .put_items(&[
                item("MSFT", t1, "410"),
                item("AAPL", t2, "1.5"),
                item("AAPL", t1, "1.4"),
            ])
            .await
            .unwrap();
        let rows = FileTicksTable::scan(table.path()).await.unwrap();
        assert_eq!(
            rows,
            [
                json!({"symbol":{"S":"AAPL"},"timestamp":{"S":t1},"price":{"N":"1.4"},"anomaly":{"BOOL":false}}),
                json!({"symbol":{"S":"AAPL"},"timestamp":{"S":t2},"price":{"N":"1.5"},"anomaly":{"BOOL":false}}),
                json!({"symbol":{"S":"MSFT"},"timestamp":{"S":t1},"price":{"N":"410"},"anomaly":{"BOOL":false}}),
            ]
        );
        let text = std::fs::read_to_string(table.path()).unwrap();
        assert!(
            text.starts_with(r#"{"symbol":{"S":"MSFT"},"timestamp":{"S":"#),
            "attributes keep item order: {text}"
        );
    }

    #[test]
    fn lines_are_the_dynamodb_json_of_the_item_whatever_the_strings_hold() {
        let Item::Attributes(mut tricky) = item("A\"B\\C", "2026-01-02T00:00:00.000Z#1", "-1.5e-7")
        else {
            unreachable!()
        };
        tricky.push(("trend", AttrValue::S("line\nbreak\u{1}é".into())));
        tricky.push(("anomaly", AttrValue::Bool(false)));
        let tricky = Item::Attributes(tricky);
        let mut line = Vec::new();
        encode_item(&tricky, &mut line).unwrap();
        assert_eq!(line.last(), Some(&b'\n'));
        let parsed: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(parsed, crate::model::item::item_to_json(&tricky));
    }

    #[test]
    fn tick_lines_are_the_dynamodb_json_of_the_item() {
        let mut tick = crate::model::item::tests::sample();
        let plain = Item::Tick {
            tick: &tick,
            expires_at: Some(1_769_956_200),
        };
        let mut line = Vec::new();
        encode_item(&plain, &mut line).unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(parsed, crate::model::item::item_to_json(&plain));

        // The sort key is written in pieces; one that needs escaping still comes out right.
        tick.position.sequence = crate::model::tick::SequenceNumber::new("4\"9\\0");
        let odd = Item::Tick {
            tick: &tick,
            expires_at: None,
        };
        line.clear();
        encode_item(&odd, &mut line).unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(parsed, crate::model::item::item_to_json(&odd));
        assert!(
            parsed["timestamp"]["S"]
                .as_str()
                .unwrap()
                .ends_with("#4\"9\\0.2")
        );
    }

    #[tokio::test]
    async fn the_last_write_of_a_key_wins() {
        let (_dir, table) = table();
        table.put_items(&[item("AAPL", "t1", "1")]).await.unwrap();
        table
            .put_items(&[item("AAPL", "t1", "2"), item("AAPL", "t2", "3")])
            .await
            .unwrap();
        let rows = FileTicksTable::scan(table.path()).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["price"]["N"], "2");
        assert_eq!(FileTicksTable::line_count(table.path()).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_torn_last_line_is_skipped_and_cut_on_reopen() {
        let (_dir, table) = table();
        let path = table.path().to_owned();
        table.put_items(&[item("AAPL", "t1", "1")]).await.unwrap();
        drop(table);
        // What `kill -9` in the middle of a write leaves behind.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(br#"{"symbol":{"S":"AAPL"},"timest"#)
            .unwrap();
        drop(file);

        assert_eq!(FileTicksTable::scan(&path).await.unwrap().len(), 1);
        assert_eq!(FileTicksTable::line_count(&path).await.unwrap(), 1);

        let table = FileTicksTable::new(&path).unwrap();
        table.put_items(&[item("AAPL", "t2", "2")]).await.unwrap();
        let rows = FileTicksTable::scan(&path).await.unwrap();
        assert_eq!(
            rows.len(),
            2,
            "the append after restart is a line of its own"
        );
        assert_eq!(FileTicksTable::line_count(&path).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_torn_only_line_leaves_an_empty_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ticks.jsonl");
        std::fs::write(&path, b"{\"sym").unwrap();
        assert!(FileTicksTable::scan(&path).await.unwrap().is_empty());
        let table = FileTicksTable::new(&path).unwrap();
        table.put_items(&[item("A", "t", "1")]).await.unwrap();
        assert_eq!(FileTicksTable::scan(&path).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_corrupt_complete_line_is_an_error_with_its_line_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ticks.jsonl");
        std::fs::write(
            &path,
            b"{\"symbol\":{\"S\":\"A\"},\"timestamp\":{\"S\":\"t\"}}\nnot json\n",
        )
        .unwrap();
        let err = FileTicksTable::scan(&path).await.unwrap_err();
        assert!(
            matches!(err, FileTableError::Corrupt { line: 2, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn items_without_their_key_are_refused() {
        let (_dir, table) = table();
        let keyless = Item::Attributes(vec![("symbol", AttrValue::S("AAPL".into()))]);
        let err = table
            .put_items(&[item("A", "t", "1"), keyless])
            .await
            .unwrap_err();
        assert!(!err.is_retryable());
        assert_eq!(FileTicksTable::line_count(table.path()).await.unwrap(), 0);
    }

    /// A batch goes a chunk at a time: a refused item stops it, and the retry overwrites the
    /// chunks written before it.
    #[tokio::test]
    async fn a_batch_refused_after_some_chunks_is_whole_once_retried() {
        let (_dir, table) = table();
        let long = "x".repeat(1_000);
        let mut items: Vec<Item> = (0..3 * CHUNK_BYTES / long.len())
            .map(|i| item("A", &format!("t{i:06}{long}"), "1"))
            .collect();
        items.push(Item::Attributes(vec![("symbol", AttrValue::S("A".into()))]));
        let err = table.put_items(&items).await.unwrap_err();
        assert!(!err.is_retryable());
        let partial = FileTicksTable::line_count(table.path()).await.unwrap();
        assert!(
            (1..items.len() - 1).contains(&partial),
            "whole chunks before the refused item: {partial} lines"
        );

        items.pop();
        table.put_items(&items).await.unwrap();
        let rows = FileTicksTable::scan(table.path()).await.unwrap();
        assert_eq!(rows.len(), items.len());
    }

    #[tokio::test]
    async fn scan_of_a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = FileTicksTable::scan(dir.path().join("absent.jsonl")).await;
        assert!(matches!(err, Err(FileTableError::Read { .. })));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_never_interleave_lines() {
        let (_dir, table) = table();
        let table = Arc::new(table.with_fsync(false));
        let (tasks, batches, per_batch) = (16, 20, 50);
        let handles: Vec<_> = (0..tasks)
            .map(|task| {
                let table = table.clone();
                tokio::spawn(async move {
                    for batch in 0..batches {
                        // Long values make each call's write large, so overlap would show.
                        let items: Vec<Item> = (0..per_batch)
                            .map(|i| {
                                let ts = format!("{batch:04}-{i:04}-{}", "x".repeat(200));
                                item(&format!("SYM{task}"), &ts, "1")
                            })
                            .collect();
                        table.put_items(&items).await.unwrap();
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
        let lines = FileTicksTable::line_count(table.path()).await.unwrap();
        assert_eq!(lines, tasks * batches * per_batch);
        let rows = FileTicksTable::scan(table.path()).await.unwrap();
        assert_eq!(rows.len(), lines, "every line parses and keys are distinct");
    }

    #[tokio::test]
    async fn fsync_mode_writes_the_same_lines() {
        let (_dir, table) = table();
        let table = table.with_fsync(true);
        table.put_items(&[item("A", "t", "1")]).await.unwrap();
        assert_eq!(FileTicksTable::scan(table.path()).await.unwrap().len(), 1);
    }
}
