//! Decoding and validation of one input record (one JSON object) into a [`Tick`].
//!
//! In: the raw bytes of a Kinesis record (after KPL de-aggregation). Out: a [`Tick`], or a typed
//! [`Rejection`] that the reader dead-letters with its shard and sequence number.

use super::tick::Tick;

/// Bounds a record must stay within to be accepted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeLimits {
    /// Larger records are rejected before parsing (bytes).
    pub max_record_bytes: usize,
    /// Earliest accepted event time, epoch ms.
    pub min_event_time_ms: i64,
    /// Latest accepted event time, epoch ms.
    pub max_event_time_ms: i64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        todo!()
    }
}

/// Why a record was not accepted. `Display` is the human reason written to the dead letter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed record")]
    Todo,
}

impl Rejection {
    /// Stable machine-readable reason code (`malformed_json`, `missing_field`, ...).
    pub fn code(&self) -> &'static str {
        todo!()
    }
}

/// Decodes and validates one record.
pub fn decode_tick(data: &[u8], limits: &DecodeLimits) -> Result<Tick, Rejection> {
    let _ = (data, limits);
    todo!()
}
