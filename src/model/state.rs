//! The full state of one symbol (windows + rule memory) and the step that turns a tick into an
//! [`EnrichedTick`] and alerts. The aggregator actor is a thin shell around this.
//!
//! The state is what a checkpoint stores per symbol; restoring it must give the same values, bit
//! for bit, as if the process had never stopped; `exact_float` is the float encoding that makes
//! this hold whatever serde format the snapshot goes through.

use std::sync::Arc;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use super::bar::OpenBars;
use super::enriched::EnrichedTick;
use super::rules::{Alert, RuleSet, RuleState};
use super::tick::{Position, Tick};
use super::window::{SymbolWindows, WindowConfig};

/// Everything remembered about one symbol; serializes as the symbol's part of a shard snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymbolState {
    pub windows: SymbolWindows,
    pub rules: RuleState,
    /// Open one-minute bars; empty unless the ticks table is in a bars mode.
    #[serde(default, skip_serializing_if = "OpenBars::is_empty")]
    pub bars: OpenBars,
    /// The partition key the symbol's records carry, when it is not the symbol: the stream
    /// places records by key, so a child of a reshard takes the symbol's state by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<CompactString>,
}

impl SymbolState {
    pub fn new(config: WindowConfig) -> Self {
        Self {
            windows: SymbolWindows::new(config),
            rules: RuleState::default(),
            bars: OpenBars::default(),
            partition_key: None,
        }
    }

    /// The newest event time of the symbol's ticks: how long it has been idle, when a shard
    /// decides which symbols to keep ([`super::symbol_table`]). Stored in every snapshot as the
    /// end of the event-time window, so a restored shard decides as the first run did.
    pub fn newest_event_ms(&self) -> Option<i64> {
        self.windows.newest_event_ms()
    }

    /// The partition key that places this symbol's records in the stream.
    pub fn placed_by<'a>(&'a self, symbol: &'a str) -> &'a str {
        self.partition_key.as_deref().unwrap_or(symbol)
    }

    /// Processes one tick: windows, then rules. Alerts are appended to `alerts`.
    pub fn process(
        &mut self,
        tick: Tick,
        shard_id: &Arc<str>,
        position: Position,
        arrival_time_ms: i64,
        rules: &RuleSet,
        alerts: &mut Vec<Alert>,
    ) -> EnrichedTick {
        let indicators = self.windows.update(&tick);
        let evaluation = super::rules::evaluate(
            rules,
            self.windows.config(),
            &mut self.rules,
            &tick,
            &indicators,
            &position,
        );
        let sent = evaluation.alerts.iter().map(|a| a.kind).collect();
        alerts.extend(evaluation.alerts);
        EnrichedTick {
            tick,
            shard_id: shard_id.clone(),
            position,
            arrival_time_ms,
            indicators,
            anomaly: evaluation.anomaly,
            trend: evaluation.trend,
            alerts: sent,
            alerts_held: evaluation.held,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::tick::SequenceNumber;
    use crate::model::window::tests::{configs, ticks};

    /// What a shard judges a symbol's idleness by: its newest tick, kept through a snapshot.
    #[test]
    fn newest_event_time_ignores_late_ticks_and_survives_a_snapshot() {
        let shard: Arc<str> = "shardId-000000000000".into();
        let mut state = SymbolState::new(WindowConfig::default());
        assert_eq!(state.newest_event_ms(), None);
        for (i, time) in [1_000, 5_000, 3_000].into_iter().enumerate() {
            let tick = crate::model::window::tests::tick(time, 10.0, None);
            let position = Position::new(SequenceNumber::new(i.to_string()), 0);
            state.process(
                tick,
                &shard,
                position,
                0,
                &RuleSet::default(),
                &mut Vec::new(),
            );
        }
        assert_eq!(state.newest_event_ms(), Some(5_000));
        let cbor = cbor4ii::serde::to_vec(Vec::new(), &state).unwrap();
        let restored: SymbolState = cbor4ii::serde::from_slice(&cbor).unwrap();
        assert_eq!(restored.newest_event_ms(), Some(5_000));
    }

    proptest! {
        /// A restored symbol continues exactly as if the process had never stopped.
        #[test]
        fn restore_mid_stream_gives_identical_output(
            config in configs(),
            ticks in ticks(),
            cut in any::<prop::sample::Index>(),
            level in 1.0..1000.0f64,
        ) {
            let rules = RuleSet {
                price_above: Some(level),
                price_below: Some(level),
                change_percent: Some(20.0),
                return_zscore: Some(1.5),
                return_zscore_min_move: 0.01,
                volume_spike: Some(2.0),
                trend_crossover: true,
                trend_bar: std::time::Duration::from_millis(10),
                trend_short_bars: 2,
                trend_long_bars: 4,
                trend_band_percent: 0.1,
                cooldown: std::time::Duration::from_secs(1),
                max_alerts_per_hour: Some(3),
            };
            let shard: Arc<str> = "shardId-000000000000".into();
            let run = |state: &mut SymbolState, ticks: &[Tick], from: usize| {
                let mut alerts = Vec::new();
                let enriched: Vec<_> = ticks
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        let position =
                            Position::new(SequenceNumber::new((from + i).to_string()), 0);
                        state.process(t.clone(), &shard, position, 0, &rules, &mut alerts)
                    })
                    .collect();
                (enriched, alerts)
            };
            let cut = cut.index(ticks.len() + 1);

            let mut uninterrupted = SymbolState::new(config);
            let (_, _) = run(&mut uninterrupted, &ticks[..cut], 0);
            // Through both snapshot encodings: JSON (text floats) and CBOR (binary floats).
            let json = serde_json::to_string(&uninterrupted).unwrap();
            let mut from_json: SymbolState = serde_json::from_str(&json).unwrap();
            let cbor = cbor4ii::serde::to_vec(Vec::new(), &uninterrupted).unwrap();
            let mut from_cbor: SymbolState = cbor4ii::serde::from_slice(&cbor).unwrap();
            prop_assert_eq!(&from_json, &uninterrupted);
            prop_assert_eq!(&from_cbor, &uninterrupted);

            let expected = run(&mut uninterrupted, &ticks[cut..], cut);
            prop_assert_eq!(run(&mut from_json, &ticks[cut..], cut), expected.clone());
            prop_assert_eq!(run(&mut from_cbor, &ticks[cut..], cut), expected);
            prop_assert_eq!(&from_json, &uninterrupted);
            prop_assert_eq!(from_cbor, uninterrupted);
        }
    }
}
