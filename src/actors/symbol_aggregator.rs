//! The symbol aggregator: owns one symbol's window state on one shard and turns its ticks into
//! enriched ticks and alerts. A thin shell around [`SymbolState`].
//!
//! In: [`Aggregate`] (this symbol's ticks of one read, in stream order) and [`TakeSnapshot`].
//! Out: the enriched ticks and alerts, back to the shard reader that routes them to the sinks.
//!
//! The reader holds the only address. When it evicts the symbol (idle for `symbols.evict-after`,
//! see [`crate::model::symbol_table`]) it drops that address, and the actor stops once it has
//! handled the ticks already sent, its state dropped with it.
//!
//! It runs in the span `symbol_aggregator{symbol}`, inside its reader's (which carries the shard
//! id); see [`super::span`].

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::prelude::*;
use compact_str::CompactString;

use crate::model::bar::{LateForBars, MinuteBar};
use crate::model::enriched::EnrichedTick;
use crate::model::rules::{Alert, RuleSet};
use crate::model::state::SymbolState;
use crate::model::tick::{Position, Symbol, Tick};

/// A tick waiting for its aggregator, with where it came from.
#[derive(Debug)]
pub struct PendingTick {
    pub tick: Tick,
    pub position: Position,
    pub arrival_time_ms: i64,
    /// The record's partition key, when it is not the symbol.
    pub partition_key: Option<CompactString>,
}

#[derive(Debug, Message)]
#[rtype(result = "Aggregated")]
pub struct Aggregate(pub Vec<PendingTick>);

#[derive(Debug, MessageResponse)]
pub struct Aggregated {
    /// One per tick of the [`Aggregate`], in its order; shared as they are with the sinks.
    pub ticks: Arc<[EnrichedTick]>,
    pub alerts: Vec<Alert>,
    /// The latest value of each bar these ticks changed (bars mode only).
    pub bars: Vec<(Symbol, MinuteBar)>,
    /// Ticks too late for their bar.
    pub late_for_bars: u64,
}

#[derive(Debug, Message)]
#[rtype(result = "(Symbol, SymbolState)")]
pub struct TakeSnapshot;

pub struct SymbolAggregator {
    symbol: Symbol,
    shard_id: Arc<str>,
    state: SymbolState,
    rules: RuleSet,
    /// Keep one-minute bars (the table is in a bars mode).
    bars: bool,
    mailbox: usize,
}

impl SymbolAggregator {
    pub fn new(
        symbol: Symbol,
        shard_id: Arc<str>,
        state: SymbolState,
        rules: RuleSet,
        bars: bool,
        mailbox: usize,
    ) -> Self {
        Self {
            symbol,
            shard_id,
            state,
            rules,
            bars,
            mailbox,
        }
    }
}

impl Actor for SymbolAggregator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.mailbox);
    }
}

impl Handler<Aggregate> for SymbolAggregator {
    type Result = Aggregated;

    fn handle(&mut self, Aggregate(pending): Aggregate, _: &mut Context<Self>) -> Aggregated {
        let mut alerts = Vec::new();
        let mut bars = BTreeMap::new();
        let mut late_for_bars = 0;
        let ticks = pending
            .into_iter()
            .map(|p| {
                if p.partition_key.is_some() {
                    self.state.partition_key = p.partition_key;
                }
                if self.bars {
                    match self.state.bars.update(&p.tick) {
                        Ok(bar) => {
                            bars.insert(bar.minute_start_ms, bar.clone());
                        }
                        Err(LateForBars) => late_for_bars += 1,
                    }
                }
                self.state.process(
                    p.tick,
                    &self.shard_id,
                    p.position,
                    p.arrival_time_ms,
                    &self.rules,
                    &mut alerts,
                )
            })
            .collect();
        Aggregated {
            ticks,
            alerts,
            bars: bars
                .into_values()
                .map(|bar| (self.symbol.clone(), bar))
                .collect(),
            late_for_bars,
        }
    }
}

impl Handler<TakeSnapshot> for SymbolAggregator {
    type Result = MessageResult<TakeSnapshot>;

    fn handle(&mut self, _: TakeSnapshot, _: &mut Context<Self>) -> Self::Result {
        MessageResult((self.symbol.clone(), self.state.clone()))
    }
}
