//! One read's way to the sinks, apart from the reader: the aggregators' replies collected, at a
//! barrier where files close the snapshot taken and proposed to the checkpointer, then the batch
//! handed to every sink (but those that have it already) once the previous batch of the shard is
//! taken.

use actix::dev::Request;
use actix::prelude::*;
use tracing::Instrument;

use super::ReaderLinks;
use super::error::ReaderError;
use crate::actors::symbol_aggregator::{Aggregate, SymbolAggregator, TakeSnapshot};
use crate::barrier::{Propose, ShardBatch, SinkKind};
use crate::checkpoint::ShardSnapshot;
use crate::lease::Fence;
use crate::metrics::Counter;
use crate::model::dead_letter::DeadLetter;
use crate::model::ids::ShardId;
use crate::model::tick::Position;

/// A batch being handed to the sinks; its error ends the reader.
pub(super) type SinkHandoff = tokio::task::JoinHandle<Result<(), ReaderError>>;

/// The barrier a read ends with.
pub(super) struct Candidate {
    pub position: Position,
    /// The files close here: the barrier is a checkpoint candidate.
    pub closes_files: Option<Closing>,
}

/// What a checkpoint candidate carries besides its position.
pub(super) struct Closing {
    /// Records read since the previous candidate.
    pub records: u64,
    pub newest_arrival_ms: i64,
    /// The aggregators whose state makes the snapshot.
    pub aggregators: Vec<Addr<SymbolAggregator>>,
}

pub(super) struct HandOff {
    pub shard_id: ShardId,
    pub fence: Fence,
    pub through: Option<Position>,
    pub links: ReaderLinks,
    /// Each symbol's request to its aggregator, with the number of ticks sent.
    pub requests: Vec<(usize, Request<SymbolAggregator, Aggregate>)>,
    /// The read's alerts were published before (an earlier owner marked them): not sent again.
    pub alerts_published: bool,
    /// Sinks that have the read durable already (an earlier owner marked them): not given it.
    pub skip: Vec<SinkKind>,
    pub dead_letters: Vec<DeadLetter>,
    pub candidate: Option<Candidate>,
    /// The reader's last batch: handed off before the reader finishes.
    pub last: bool,
    pub shard_end: bool,
    /// The shard's previous batch, still being handed off.
    pub previous: Option<SinkHandoff>,
}

impl HandOff {
    /// Runs the hand-off; for any batch but the last, the sinks take it in a task of its own,
    /// returned, so the reader reads on meanwhile.
    pub async fn run(self) -> Result<Option<SinkHandoff>, ReaderError> {
        let shard_id = self.shard_id.clone();
        let mut alerts = Vec::new();
        let mut bars = Vec::new();
        let mut chunks = Vec::with_capacity(self.requests.len());
        // The messages are already queued, so awaiting the replies one by one waits no longer
        // than `join_all`, without a task per symbol.
        for (sent, request) in self.requests {
            let aggregated = request
                .await
                .map_err(ReaderError::gone("a symbol aggregator", &shard_id))?;
            if aggregated.ticks.len() != sent {
                return Err(ReaderError::TicksMiscounted {
                    shard: shard_id,
                    sent,
                    returned: aggregated.ticks.len(),
                });
            }
            chunks.push(aggregated.ticks);
            if !self.alerts_published {
                alerts.extend(aggregated.alerts);
            }
            bars.extend(aggregated.bars);
            let metrics = &self.links.metrics;
            metrics.add(Counter::BarLateTicks, aggregated.late_for_bars);
        }
        let (anomalies, held) = chunks.iter().flat_map(|chunk| chunk.iter()).fold(
            (0u64, 0u64),
            |(anomalies, held), t| {
                let held_here = t.alerts_held.iter().count() as u64;
                (anomalies + u64::from(t.anomaly), held + held_here)
            },
        );
        let metrics = &self.links.metrics;
        metrics.add(Counter::AnomaliesDetected, anomalies);
        metrics.add(Counter::AlertsHeld, held);
        alerts.sort_by(|a, b| a.id.cmp(&b.id));

        let barrier = self.candidate.as_ref().map(|c| c.position.clone());
        let closing = self
            .candidate
            .and_then(|c| Some((c.position, c.closes_files?)));
        let closes_files = closing.is_some();
        if let Some((position, closing)) = closing {
            let ends = (self.last, self.shard_end);
            propose(&self.links, &self.fence, position, closing, ends).await?;
        }
        let batch = ShardBatch {
            shard_id: shard_id.clone(),
            fence: self.fence,
            through: self.through,
            ticks: chunks.into(),
            alerts: alerts.into(),
            bars: bars.into(),
            dead_letters: self.dead_letters.into(),
            barrier,
            closes_files,
        };
        if let Some(previous) = self.previous {
            previous.await.map_err(|source| ReaderError::HandOff {
                shard: shard_id.clone(),
                source,
            })??;
        }
        let (sinks, skip) = (self.links.sinks, self.skip);
        let send = async move { sinks.send(batch, &skip).await.map_err(ReaderError::from) };
        if self.last {
            send.await.map(|()| None)
        } else {
            Ok(Some(tokio::task::spawn_local(send.in_current_span())))
        }
    }
}

/// Takes the snapshot of every aggregator and proposes the candidate at `position` to the
/// checkpointer; `(last, shard_end)` say whether the reader ends there, and the shard.
async fn propose(
    links: &ReaderLinks,
    fence: &Fence,
    position: Position,
    candidate: Closing,
    (last, shard_end): (bool, bool),
) -> Result<(), ReaderError> {
    let shard_id = &fence.shard_id;
    let mut snapshot = ShardSnapshot::new();
    let replies = candidate.aggregators.iter().map(|a| a.send(TakeSnapshot));
    for reply in futures::future::join_all(replies).await {
        let (symbol, state) = reply.map_err(ReaderError::gone("a symbol aggregator", shard_id))?;
        snapshot.insert(symbol, state);
    }
    let propose = Propose {
        shard_id: shard_id.clone(),
        fence: fence.clone(),
        position,
        snapshot,
        last,
        shard_end,
        records: candidate.records,
        newest_arrival_ms: candidate.newest_arrival_ms,
    };
    links
        .checkpointer
        .send(propose)
        .await
        .map_err(ReaderError::gone("the checkpointer", shard_id))
}
