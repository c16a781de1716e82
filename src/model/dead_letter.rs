//! Dead letters: records that failed validation, kept with the reason, the shard and the sequence
//! number so nothing is lost and every rejection can be explained and replayed; and markers of
//! records the stream trimmed before they were read ([`LOST_TO_RETENTION`]), so that a loss is
//! written down where the records would have been.
//!
//! Out: one JSON line per record, grouped into objects under
//! `{prefix}dead-letters/dt={arrival date}/{shard}-{first position}.jsonl`.

use bytes::Bytes;
use serde::Serialize;

use super::lake::{Segment, partition_date};
use super::tick::Position;

/// Reason code of the marker of records lost to the stream's retention
/// ([`DeadLetter::lost_to_retention`]).
pub const LOST_TO_RETENTION: &str = "lost_to_retention";

/// One rejected record, or a marker of lost ones.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub shard_id: std::sync::Arc<str>,
    pub position: Position,
    pub partition_key: compact_str::CompactString,
    pub arrival_time_ms: i64,
    /// Stable reason code (`Rejection::code`).
    pub reason_code: &'static str,
    /// Human reason (`Rejection`'s Display).
    pub reason: String,
    /// The record. A [`LOST_TO_RETENTION`] marker stands for no record: its data is the position
    /// (as text) after which records were lost, and its own position is the first record read.
    pub data: Bytes,
}

#[derive(Serialize)]
struct DeadLetterLine<'a> {
    shard_id: &'a str,
    sequence_number: &'a str,
    sub_sequence_number: u32,
    partition_key: &'a str,
    arrival_time_ms: i64,
    reason_code: &'a str,
    reason: &'a str,
    /// The record as text when it is UTF-8, so people can read it.
    data: Option<&'a str>,
    /// The record in base64 when it is not UTF-8.
    data_base64: Option<String>,
    /// A marker's range: records after `lost_after` and before `lost_before` were lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    lost_after: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lost_before: Option<String>,
}

impl DeadLetter {
    /// The marker of records of `shard_id` lost to the stream's retention: those after `after`
    /// (where reading resumed) and before `before` (the first record read instead, which arrived
    /// at `arrival_time_ms`). It carries no record, and is placed at `before`, so that whoever
    /// resumes from the same position writes the same marker in the same dead-letter file.
    pub fn lost_to_retention(
        shard_id: std::sync::Arc<str>,
        after: &Position,
        before: &Position,
        arrival_time_ms: i64,
    ) -> Self {
        Self {
            shard_id,
            position: before.clone(),
            partition_key: compact_str::CompactString::default(),
            arrival_time_ms,
            reason_code: LOST_TO_RETENTION,
            reason: format!(
                "records after {after} and before {before} were trimmed by the stream's retention \
                 before they were read (how many is not known)"
            ),
            data: Bytes::from(after.to_string()),
        }
    }

    /// The JSON line of this dead letter (no trailing newline). A retention marker has no
    /// record: its `data` holds where the lost range starts, shown as `lost_after`.
    pub fn to_json_line(&self) -> String {
        let marker = self.reason_code == LOST_TO_RETENTION;
        let text = std::str::from_utf8(&self.data).ok();
        let (data, lost_after) = if marker { (None, text) } else { (text, None) };
        let line = DeadLetterLine {
            shard_id: &self.shard_id,
            sequence_number: self.position.sequence.as_str(),
            sub_sequence_number: self.position.sub_sequence,
            partition_key: &self.partition_key,
            arrival_time_ms: self.arrival_time_ms,
            reason_code: self.reason_code,
            reason: &self.reason,
            data,
            data_base64: (!marker && text.is_none())
                .then(|| base64_simd::STANDARD.encode_to_string(&self.data)),
            lost_after,
            lost_before: marker.then(|| self.position.to_string()),
        };
        serde_json::to_string(&line).expect("dead letter serializes")
    }
}

/// Object key of a dead-letter file.
pub fn dead_letter_object_key(
    prefix: &str,
    arrival_time_ms: i64,
    shard_id: &str,
    first: &Position,
) -> String {
    let date = partition_date(arrival_time_ms);
    format!("{prefix}dead-letters/dt={date}/{shard_id}-{first}.jsonl")
}

/// Object key of the dead letter of one item an output refused (`output`: `table`, `alerts`),
/// named `name` after what it is (`{shard}-{position}` for a tick).
pub fn refused_object_key(prefix: &str, time_ms: i64, output: &str, name: &str) -> String {
    let date = partition_date(time_ms);
    format!("{prefix}dead-letters/dt={date}/refused-by-{output}-{name}.jsonl")
}

/// Splits dead letters (in stream order) by arrival date into the segments of each date's file.
pub fn day_segments<'a>(
    prefix: &str,
    shard_id: &str,
    letters: &[&'a DeadLetter],
) -> Vec<Segment<'a, DeadLetter>> {
    let mut segments: Vec<Segment<'a, DeadLetter>> = Vec::new();
    for &letter in letters {
        let partition = partition_date(letter.arrival_time_ms);
        match segments.iter_mut().find(|s| s.partition == partition) {
            Some(segment) => segment.rows.push(letter),
            None => segments.push(Segment {
                key: dead_letter_object_key(
                    prefix,
                    letter.arrival_time_ms,
                    shard_id,
                    &letter.position,
                ),
                partition,
                rows: vec![letter],
            }),
        }
    }
    segments
}

/// Dead letters as JSON lines, one per line.
pub fn json_lines(letters: &[&DeadLetter]) -> Vec<u8> {
    let mut body = Vec::new();
    for letter in letters {
        body.extend_from_slice(letter.to_json_line().as_bytes());
        body.push(b'\n');
    }
    body
}

/// Splits dead letters (in stream order) by arrival date into `(key, JSON lines, count)` objects.
pub fn encode_dead_letters(
    prefix: &str,
    shard_id: &str,
    letters: &[&DeadLetter],
) -> Vec<(String, Vec<u8>, usize)> {
    day_segments(prefix, shard_id, letters)
        .into_iter()
        .map(|segment| (segment.key, json_lines(&segment.rows), segment.rows.len()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tick::SequenceNumber;

    fn letter(sequence: &str, arrival_time_ms: i64, data: &'static [u8]) -> DeadLetter {
        DeadLetter {
            shard_id: "shardId-000000000001".into(),
            position: Position::new(SequenceNumber::new(sequence), 0),
            partition_key: "AAPL".into(),
            arrival_time_ms,
            reason_code: "non_positive_price",
            reason: "price must be positive, got -1".into(),
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn lines_keep_the_record_reason_and_position() {
        let line: serde_json::Value =
            serde_json::from_str(&letter("17", 0, b"{\"price\":-1}").to_json_line()).unwrap();
        assert_eq!(line["sequence_number"], "17");
        assert_eq!(line["reason_code"], "non_positive_price");
        assert_eq!(line["data"], "{\"price\":-1}");
        assert!(line["data_base64"].is_null());

        let binary: serde_json::Value =
            serde_json::from_str(&letter("18", 0, &[0xff, 0x00]).to_json_line()).unwrap();
        assert!(binary["data"].is_null());
        assert_eq!(binary["data_base64"], "/wA=");
    }

    #[test]
    fn a_retention_marker_names_the_lost_range_and_carries_no_record() {
        let after = Position::new(SequenceNumber::new("17"), 2);
        let before = Position::new(SequenceNumber::new("40"), 0);
        let marker = DeadLetter::lost_to_retention(
            "shardId-000000000001".into(),
            &after,
            &before,
            86_400_000,
        );
        assert_eq!(marker.position, before, "placed at the first record read");
        let line: serde_json::Value = serde_json::from_str(&marker.to_json_line()).unwrap();
        assert_eq!(line["reason_code"], "lost_to_retention");
        assert_eq!(
            (&line["lost_after"], &line["lost_before"]),
            (&"17.2".into(), &"40".into())
        );
        assert_eq!(
            (&line["sequence_number"], &line["sub_sequence_number"]),
            (&"40".into(), &0.into())
        );
        assert!(line["data"].is_null() && line["data_base64"].is_null());
        assert_eq!(
            line["reason"],
            "records after 17.2 and before 40 were trimmed by the stream's retention before they \
             were read (how many is not known)"
        );
        let files = encode_dead_letters("", "shardId-000000000001", &[&marker]);
        assert_eq!(
            files[0].0,
            "dead-letters/dt=1970-01-02/shardId-000000000001-40.jsonl"
        );

        // A rejected record's line has no range.
        let rejected: serde_json::Value =
            serde_json::from_str(&letter("18", 0, b"x").to_json_line()).unwrap();
        assert!(rejected.get("lost_after").is_none() && rejected.get("lost_before").is_none());
    }

    #[test]
    fn files_split_by_arrival_date_and_are_named_by_their_first_record() {
        let day = 86_400_000;
        let letters = [
            letter("5", day - 1, b"a"),
            letter("6", day, b"b"),
            letter("7", day - 1, b"c"),
        ];
        let refs: Vec<&DeadLetter> = letters.iter().collect();
        let files = encode_dead_letters("lake/", "shardId-000000000001", &refs);
        let summary: Vec<(&str, usize)> = files
            .iter()
            .map(|(key, _, count)| (key.as_str(), *count))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "lake/dead-letters/dt=1970-01-01/shardId-000000000001-5.jsonl",
                    2
                ),
                (
                    "lake/dead-letters/dt=1970-01-02/shardId-000000000001-6.jsonl",
                    1
                )
            ]
        );
        assert_eq!(files[0].1.iter().filter(|b| **b == b'\n').count(), 2);
    }
}
