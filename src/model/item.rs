//! The ticks table item: the attribute names and types of one row of the DynamoDB ticks table,
//! shared by the local file table and the DynamoDB writer so both hold the same shape.

use serde::{Deserialize, Serialize};

use super::enriched::EnrichedTick;
use super::tick::Position;

/// A DynamoDB attribute value, restricted to the types the ticks table uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AttrValue {
    S(String),
    /// A number in DynamoDB's decimal text form.
    N(String),
    #[serde(rename = "BOOL")]
    Bool(bool),
}

/// One item: attribute name to value, in a stable order.
pub type Item = Vec<(&'static str, AttrValue)>;

/// Sort key of a tick: ISO 8601 UTC with milliseconds, then `#` and the stream position, so two
/// ticks in the same millisecond never share a key and time-range queries still work.
pub fn sort_key(event_time_ms: i64, position: &Position) -> String {
    let _ = (event_time_ms, position);
    todo!()
}

/// The table item of one enriched tick. `ttl_epoch_s` sets the TTL attribute `expires_at`.
pub fn tick_item(tick: &EnrichedTick, ttl_epoch_s: Option<i64>) -> Item {
    let _ = (tick, ttl_epoch_s);
    todo!()
}

/// DynamoDB JSON of an item (`{"symbol":{"S":"AAPL"},...}`), as `aws dynamodb scan` prints it.
pub fn item_to_json(item: &Item) -> serde_json::Value {
    let _ = item;
    todo!()
}
