//! The full state of one symbol (windows + rule memory) and the step that turns a tick into an
//! [`EnrichedTick`] and alerts. The aggregator actor is a thin shell around this.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::enriched::EnrichedTick;
use super::rules::{Alert, RuleSet, RuleState};
use super::tick::{Position, Tick};
use super::window::{SymbolWindows, WindowConfig};

/// Everything remembered about one symbol; serializes as the symbol's part of a shard snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymbolState {
    pub windows: SymbolWindows,
    pub rules: RuleState,
}

impl SymbolState {
    pub fn new(config: WindowConfig) -> Self {
        Self {
            windows: SymbolWindows::new(config),
            rules: RuleState::default(),
        }
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
        let evaluation =
            super::rules::evaluate(rules, &mut self.rules, &tick, &indicators, &position);
        alerts.extend(evaluation.alerts);
        EnrichedTick {
            tick,
            shard_id: shard_id.clone(),
            position,
            arrival_time_ms,
            indicators,
            anomaly: evaluation.anomaly,
            trend: evaluation.trend,
        }
    }
}
