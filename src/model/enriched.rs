//! A tick after the aggregator: the input fields, where it came from, and what the windows and
//! rules computed. This is the row of the Parquet lake and the item of the ticks table.

use serde::{Deserialize, Serialize};

use super::rules::{AlertKinds, Trend};
use super::tick::{Position, Tick};
use super::window::Indicators;

/// One processed tick, ready for every sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrichedTick {
    pub tick: Tick,
    /// Shard the record was read from (part of the deterministic keys downstream).
    pub shard_id: std::sync::Arc<str>,
    pub position: Position,
    /// When the stream accepted the record (Kinesis `ApproximateArrivalTimestamp`), epoch ms.
    pub arrival_time_ms: i64,
    pub indicators: Indicators,
    /// True when any anomaly rule (threshold, change %, z-score, volume spike) fired on this tick.
    pub anomaly: bool,
    /// The trend of bar closes after this tick, once the averages have set one.
    pub trend: Option<Trend>,
    /// Kinds of the alerts this tick raised and sent on.
    #[serde(default)]
    pub alerts: AlertKinds,
    /// Kinds of the alerts this tick raised that its symbol's alert budget held back.
    #[serde(default)]
    pub alerts_held: AlertKinds,
}
