//! A seeded market simulator: geometric Brownian motion per symbol with realistic prices and
//! volumes, injectable anomalies (jumps, volume spikes) and a share of malformed records.
//!
//! Out: records in the seed producer format (`{"symbol","open","high","low","price",
//! "previous_close","change","change_percent","volume","timestamp"}`), keyed by symbol. The same
//! seed and config always give the same records.

use serde::{Deserialize, Serialize};

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct SimulatorConfig {
    /// Number of symbols (well-known tickers first, then generated ones).
    pub symbols: usize,
    pub seed: u64,
    /// Event time of the first tick, epoch ms.
    pub start_time_ms: i64,
    /// Mean event-time gap between two ticks of the whole market, in ms.
    pub tick_interval_ms: f64,
    /// Share of ticks with a price jump (5-15 %).
    pub jump_rate: f64,
    /// Share of ticks with a volume spike (20-50x).
    pub volume_spike_rate: f64,
    /// Share of records that are malformed in one of the ways validation rejects.
    pub malformed_rate: f64,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        todo!()
    }
}

/// What a simulated record is, so tests can count what the pipeline should make of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Normal,
    Jump,
    VolumeSpike,
    Malformed,
}

/// One simulated record.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedRecord {
    pub partition_key: String,
    pub data: Vec<u8>,
    pub kind: RecordKind,
}

/// The simulator; an endless iterator of records.
pub struct MarketSimulator {}

impl MarketSimulator {
    pub fn new(config: SimulatorConfig) -> Self {
        let _ = config;
        todo!()
    }

    /// The simulated symbols, in the order they were created.
    pub fn symbols(&self) -> &[String] {
        todo!()
    }
}

impl Iterator for MarketSimulator {
    type Item = SimulatedRecord;

    fn next(&mut self) -> Option<SimulatedRecord> {
        todo!()
    }
}
