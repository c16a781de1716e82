//! The tick as it enters the pipeline, and the stream position it came from.
//!
//! A [`Tick`] is what [`super::decode`] makes of one valid input record; a [`Position`] is where
//! that record sits in its shard, the key that checkpoints, object keys and table keys are built on.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// Ticker symbol. Inline up to 24 bytes, so the hot path does not allocate for it.
pub type Symbol = CompactString;

/// One validated market tick. Prices are in the instrument's currency, times in epoch
/// milliseconds UTC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    pub symbol: Symbol,
    pub price: f64,
    /// Event time: when the quote happened, not when it was received.
    pub event_time_ms: i64,
    pub open: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub previous_close: Option<f64>,
    /// Producer-supplied change vs previous close; recomputed when `previous_close` is known.
    pub change: Option<f64>,
    /// Producer-supplied change in percent; recomputed when `previous_close` is known.
    pub change_percent: Option<f64>,
    /// Traded volume of this tick (shares or units; fractional for crypto).
    pub volume: Option<f64>,
}

/// A Kinesis sequence number: a decimal string of up to 129 digits, compared numerically.
///
/// Kept as text because real ones (56 digits) overflow `u128`, and cheap to clone because every
/// record carries one: a long one is shared, a short one (the local stream's 21 digits) is held
/// inline, which also spares a heap string per record that a sink's thread would free.
#[derive(Clone)]
pub struct SequenceNumber(Digits);

#[derive(Clone)]
enum Digits {
    /// At most [`INLINE_DIGITS`] digits, so `CompactString` keeps them off the heap.
    Inline(CompactString),
    Shared(Arc<str>),
}

const INLINE_DIGITS: usize = 24;

impl SequenceNumber {
    pub fn new(digits: impl AsRef<str>) -> Self {
        let digits = digits.as_ref();
        Self(if digits.len() <= INLINE_DIGITS {
            Digits::Inline(CompactString::new(digits))
        } else {
            Digits::Shared(digits.into())
        })
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Digits::Inline(digits) => digits,
            Digits::Shared(digits) => digits,
        }
    }

    /// Compares two sequence numbers given as decimal text, numerically, as [`Ord`] does:
    /// for readers of the lake's `sequence_number` column, without building a value per row.
    pub fn cmp_digits(a: &str, b: &str) -> Ordering {
        let (a, b) = (significant(a), significant(b));
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    }

    fn significant(&self) -> &str {
        significant(self.as_str())
    }
}

/// The digits without leading zeros (`"0"` for zero).
fn significant(digits: &str) -> &str {
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() { "0" } else { trimmed }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        Self::cmp_digits(self.as_str(), other.as_str())
    }
}

impl PartialEq for SequenceNumber {
    fn eq(&self, other: &Self) -> bool {
        self.significant() == other.significant()
    }
}

impl Eq for SequenceNumber {}

impl std::hash::Hash for SequenceNumber {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.significant().hash(state);
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.as_str())
    }
}

impl Serialize for SequenceNumber {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SequenceNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::new(CompactString::deserialize(deserializer)?))
    }
}

/// Where a record sits in its shard. `sub_sequence` numbers the user records inside one
/// KPL-aggregated Kinesis record (0 for plain records).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    pub sequence: SequenceNumber,
    pub sub_sequence: u32,
}

impl Position {
    /// Before every record of a shard: where the end checkpoint of a shard that held no record
    /// stands (nobody resumes from it; its children take its window state).
    pub fn before_any() -> Self {
        Self::new(SequenceNumber::new("0"), 0)
    }

    pub fn new(sequence: SequenceNumber, sub_sequence: u32) -> Self {
        Self {
            sequence,
            sub_sequence,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sub_sequence == 0 {
            write!(f, "{}", self.sequence)
        } else {
            write!(f, "{}.{}", self.sequence, self.sub_sequence)
        }
    }
}

/// A position as [`Display`](fmt::Display) writes it (`<sequence>[.<sub>]`, decimal digits), as
/// in a lake file's name.
impl std::str::FromStr for Position {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (sequence, sub) = match text.split_once('.') {
            Some((sequence, sub)) => {
                let sub = sub
                    .parse()
                    .ok()
                    .filter(|_| sub.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| format!("{text:?}: sub-sequence is not a number"))?;
                (sequence, sub)
            }
            None => (text, 0),
        };
        if sequence.is_empty() || !sequence.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{text:?}: sequence number is not decimal digits"));
        }
        Ok(Self::new(SequenceNumber::new(sequence), sub))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_compare_numerically() {
        let seq = |s: &str| SequenceNumber::new(s);
        assert!(seq("99") < seq("100"));
        assert!(seq("0099") < seq("100"));
        assert_eq!(seq("007").cmp(&seq("7")), Ordering::Equal);
        assert!(
            seq("49590338271490256608559692538361571095921575989136588898")
                > seq("49590338271490256608559692538361571095921575989136588897")
        );
    }

    #[test]
    fn short_and_long_sequence_numbers_are_one_kind_of_value() {
        use std::hash::BuildHasher;
        // 21 digits are held inline, 30 (the same number, zero-padded) shared.
        let short = SequenceNumber::new("100000000000000000042");
        let long = SequenceNumber::new(format!("{:0>30}", short.as_str()));
        assert!(matches!(short.0, Digits::Inline(_)) && matches!(long.0, Digits::Shared(_)));
        assert_eq!(short, long);
        let hasher = std::collections::hash_map::RandomState::new();
        assert_eq!(hasher.hash_one(&short), hasher.hash_one(&long));
        let next = SequenceNumber::new(format!("{:0>30}", "100000000000000000043"));
        assert!(short < next && next > long);
        assert_eq!(long.clone().as_str().len(), 30);

        let json = serde_json::to_string(&long).unwrap();
        assert_eq!(json, format!("\"{}\"", long.as_str()));
        let back: SequenceNumber = serde_json::from_str(&json).unwrap();
        assert_eq!(back.as_str(), long.as_str());
    }

    #[test]
    fn positions_order_by_sequence_then_sub_sequence() {
        let a = Position::new(SequenceNumber::new("5"), 2);
        let b = Position::new(SequenceNumber::new("5"), 10);
        let c = Position::new(SequenceNumber::new("6"), 0);
        assert!(a < b && b < c);
        assert_eq!(b.to_string(), "5.10");
    }

    #[test]
    fn positions_read_back_as_they_are_written() {
        for text in [
            "5",
            "5.10",
            "49590338271490256608559692538361571095921575989136588898.3",
        ] {
            assert_eq!(text.parse::<Position>().unwrap().to_string(), text);
        }
        for bad in ["", "5.", ".5", "5.x", "x", "-5", "5.-1", "5.1.2"] {
            assert!(bad.parse::<Position>().is_err(), "{bad}");
        }
        assert_eq!(
            SequenceNumber::cmp_digits("0099", "100"),
            Ordering::Less,
            "numerically, as Ord"
        );
    }
}
