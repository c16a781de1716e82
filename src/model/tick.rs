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
/// record carries one.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SequenceNumber(Arc<str>);

impl SequenceNumber {
    pub fn new(digits: impl Into<Arc<str>>) -> Self {
        Self(digits.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn significant(&self) -> &str {
        let trimmed = self.0.trim_start_matches('0');
        if trimmed.is_empty() { "0" } else { trimmed }
    }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.significant(), other.significant());
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
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
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
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
    fn positions_order_by_sequence_then_sub_sequence() {
        let a = Position::new(SequenceNumber::new("5"), 2);
        let b = Position::new(SequenceNumber::new("5"), 10);
        let c = Position::new(SequenceNumber::new("6"), 0);
        assert!(a < b && b < c);
        assert_eq!(b.to_string(), "5.10");
    }
}
