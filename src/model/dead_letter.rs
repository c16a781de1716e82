//! Dead letters: records that failed validation, kept with the reason, the shard and the sequence
//! number so nothing is lost and every rejection can be explained and replayed.
//!
//! Out: one JSON line per record, grouped into objects under
//! `{prefix}dead-letters/dt={arrival date}/{shard}-{first position}.jsonl`.

use bytes::Bytes;
use serde::Serialize;

use super::lake::partition_date;
use super::tick::Position;

/// One rejected record.
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
}

impl DeadLetter {
    /// The JSON line of this dead letter (no trailing newline).
    pub fn to_json_line(&self) -> String {
        let text = std::str::from_utf8(&self.data).ok();
        let line = DeadLetterLine {
            shard_id: &self.shard_id,
            sequence_number: self.position.sequence.as_str(),
            sub_sequence_number: self.position.sub_sequence,
            partition_key: &self.partition_key,
            arrival_time_ms: self.arrival_time_ms,
            reason_code: self.reason_code,
            reason: &self.reason,
            data: text,
            data_base64: match text {
                Some(_) => None,
                None => Some(base64_simd::STANDARD.encode_to_string(&self.data)),
            },
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

/// Splits dead letters (in stream order) by arrival date into `(key, JSON lines, count)` objects.
pub fn encode_dead_letters(
    prefix: &str,
    shard_id: &str,
    letters: &[&DeadLetter],
) -> Vec<(String, Vec<u8>, usize)> {
    let mut files: Vec<(String, String, Vec<u8>, usize)> = Vec::new();
    for letter in letters {
        let date = partition_date(letter.arrival_time_ms);
        let index = match files.iter().position(|(d, ..)| *d == date) {
            Some(index) => index,
            None => {
                let key = dead_letter_object_key(
                    prefix,
                    letter.arrival_time_ms,
                    shard_id,
                    &letter.position,
                );
                files.push((date, key, Vec::new(), 0));
                files.len() - 1
            }
        };
        let (_, _, body, count) = &mut files[index];
        body.extend_from_slice(letter.to_json_line().as_bytes());
        body.push(b'\n');
        *count += 1;
    }
    files
        .into_iter()
        .map(|(_, key, body, count)| (key, body, count))
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
