//! The shard reader: reads one shard from its checkpoint, decodes and validates records, routes
//! ticks to one aggregator per symbol, and hands every read to the sinks, with a checkpoint
//! barrier every interval.
//!
//! In: batches from a [`ShardCursor`]. Out: [`ShardBatch`]es to the sinks, [`Propose`] to the
//! checkpointer, rejected records as dead letters. One read is processed at a time, while the
//! sinks take the previous one: the reader waits for that hand-off before it makes the next, so
//! batches reach the sinks in order and a slow sink slows the reader.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use backon::Retryable;
use foldhash::HashMap;

use super::checkpointer::Checkpointer;
use super::fatal::Fatal;
use super::sink::Sinks;
use super::symbol_aggregator::{Aggregate, PendingTick, SymbolAggregator, TakeSnapshot};
use crate::barrier::{CommittedPositions, FinishedEmpty, Propose, ShardBatch, SinkError};
use crate::checkpoint::{Checkpoint, CheckpointStore, ShardSnapshot};
use crate::lease::Fence;
use crate::metrics::{Counter, Metrics, ShardGauge};
use crate::model::dead_letter::DeadLetter;
use crate::model::decode::{DecodeLimits, decode_tick};
use crate::model::rules::RuleConfig;
use crate::model::state::SymbolState;
use crate::model::tick::{Position, Symbol};
use crate::model::window::WindowConfig;
use crate::stream::{ReadBatch, ShardCursor, ShardId, ShardInfo, StartPosition, StreamSource};

/// What every reader of a pipeline shares.
#[derive(Debug, Clone)]
pub struct ReaderSettings {
    pub decode_limits: DecodeLimits,
    pub windows: WindowConfig,
    pub rules: RuleConfig,
    /// Longest time between two barriers while records arrive.
    pub checkpoint_interval: Duration,
    /// Records after which a barrier is due before `checkpoint_interval`.
    pub checkpoint_max_records: u64,
    pub mailbox: usize,
    /// Keep one-minute bars for the ticks table.
    pub bars: bool,
    /// Where a shard without a checkpoint starts.
    pub initial_position: StartPosition,
}

/// The services a reader talks to.
#[derive(Clone)]
pub struct ReaderLinks {
    pub source: Arc<dyn StreamSource>,
    pub checkpoints: Arc<dyn CheckpointStore>,
    pub sinks: Sinks,
    pub checkpointer: Addr<Checkpointer>,
    pub committed: Arc<CommittedPositions>,
    pub metrics: Arc<Metrics>,
    pub fatal: Fatal,
}

/// How the lease coordinator steers one reader.
#[derive(Debug, Default)]
pub struct ReaderControl {
    /// Stop reading, checkpoint what was read, and finish (shutdown, or a hand-off).
    stop: AtomicBool,
    /// Stop at once, without another checkpoint: the lease is lost, the work belongs to the new
    /// owner.
    abort: AtomicBool,
}

impl ReaderControl {
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn abort(&self) {
        self.abort.store(true, Ordering::Relaxed);
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }
}

/// The shard a reader reads, and the lease it reads it under.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub shard: ShardInfo,
    pub fence: Fence,
}

pub struct ShardReader {
    shard_id: ShardId,
    assignment: Assignment,
    settings: Arc<ReaderSettings>,
    links: ReaderLinks,
    control: Arc<ReaderControl>,
    cursor: Option<Box<dyn ShardCursor>>,
    /// Keyed by symbols from the stream: foldhash is several times faster than SipHash on short
    /// keys and still seeded per process.
    aggregators: HashMap<Symbol, Addr<SymbolAggregator>>,
    /// Position of the last record read (or restored from the checkpoint).
    last_position: Option<Position>,
    last_barrier: Option<Position>,
    records_since_barrier: u64,
    /// Records after which the next barrier is due: `checkpoint_max_records`, except that a
    /// shard's first barrier comes earlier by a share that differs between shards (see
    /// [`first_barrier_after`]).
    barrier_after_records: u64,
    barrier_due_at: Instant,
    newest_arrival_ms: i64,
    /// Where the shard's next files must end, reserved by an earlier owner after the checkpoint
    /// this reader resumed from: the next barrier falls exactly there, and none before it
    /// ([`crate::barrier::files`]).
    files_end: Option<Position>,
    /// The records of a read past `files_end`, processed before the next read.
    carried: Option<ReadBatch>,
    /// The previous batch's hand-off to the sinks, still running.
    sending: Option<SinkHandoff>,
    /// The last batch is handed off: the sinks may still be writing it after this reader stops.
    finished: bool,
}

/// A batch being handed to the sinks; its error ends the reader.
type SinkHandoff = tokio::task::JoinHandle<Result<(), String>>;

enum Flow {
    Continue,
    Finish,
}

impl ShardReader {
    pub fn new(
        assignment: Assignment,
        settings: Arc<ReaderSettings>,
        links: ReaderLinks,
        control: Arc<ReaderControl>,
    ) -> Self {
        let barrier_due_at = Instant::now() + settings.checkpoint_interval;
        let barrier_after_records =
            first_barrier_after(&assignment.shard.id, settings.checkpoint_max_records);
        Self {
            shard_id: assignment.shard.id.clone(),
            assignment,
            settings,
            links,
            control,
            cursor: None,
            aggregators: HashMap::default(),
            last_position: None,
            last_barrier: None,
            records_since_barrier: 0,
            barrier_after_records,
            barrier_due_at,
            newest_arrival_ms: 0,
            files_end: None,
            carried: None,
            sending: None,
            finished: false,
        }
    }

    fn aggregator(
        &mut self,
        symbol: &Symbol,
        state: Option<SymbolState>,
    ) -> Addr<SymbolAggregator> {
        if let Some(addr) = self.aggregators.get(symbol) {
            return addr.clone();
        }
        let state = state.unwrap_or_else(|| SymbolState::new(self.settings.windows));
        let rules = self.settings.rules.for_symbol(symbol);
        let addr = SymbolAggregator::new(
            symbol.clone(),
            self.shard_id.clone(),
            state,
            rules,
            self.settings.bars,
            self.settings.mailbox,
        )
        .start();
        self.aggregators.insert(symbol.clone(), addr.clone());
        addr
    }

    fn fail(&self, message: String, ctx: &mut Context<Self>) {
        self.links.fatal.raise(message);
        ctx.stop();
    }

    fn generation(&self) -> u64 {
        self.assignment.fence.counter
    }

    fn read_next(&mut self, ctx: &mut Context<Self>) {
        if self.control.aborted() {
            tracing::info!(shard_id = %self.shard_id, "Shard reader aborted: the lease is lost.");
            ctx.stop();
            return;
        }
        let Some(mut cursor) = self.cursor.take() else {
            return;
        };
        let carried = self.carried.take();
        let read = async move {
            let result = match carried {
                Some(batch) => Ok(batch),
                None => cursor.next_batch().await,
            };
            (cursor, result)
        };
        ctx.wait(
            read.into_actor(self)
                .then(|(cursor, result), act, ctx| {
                    act.cursor = Some(cursor);
                    match result {
                        Ok(batch) => act.process(batch),
                        Err(error) => {
                            act.fail(
                                format!("reading shard {} failed: {error}", act.shard_id),
                                ctx,
                            );
                            Box::pin(fut::ready(Flow::Finish))
                        }
                    }
                })
                .map(|flow, act, ctx| match flow {
                    Flow::Continue => act.read_next(ctx),
                    Flow::Finish => ctx.stop(),
                }),
        );
    }

    /// Holds back the records of `batch` past a reserved files end, for the next round, and
    /// says whether the batch reaches that end.
    fn cut_at_files_end(&mut self, batch: &mut ReadBatch) -> bool {
        let Some(end) = self.files_end.clone() else {
            return false;
        };
        self.carried = batch.split_after(&end);
        let reached = batch.records.last().is_some_and(|r| r.position == end);
        let passed = batch.records.is_empty() && self.carried.is_some();
        if reached {
            self.files_end = None;
        } else if passed || batch.shard_end {
            // The reserved record is gone from the stream (trimmed), so no owner can end a file
            // there any more: barriers go back to their usual places.
            tracing::warn!(shard_id = %self.shard_id, %end,
                "The reserved end of the shard's files is no longer in the stream.");
            self.files_end = None;
        }
        reached
    }

    /// Decodes and routes one read, then hands it to the sinks (with a barrier when one is due).
    fn process(&mut self, mut batch: ReadBatch) -> Pin<Box<dyn ActorFuture<Self, Output = Flow>>> {
        let at_files_end = self.cut_at_files_end(&mut batch);
        let ReadBatch {
            records,
            millis_behind_latest,
            shard_end,
        } = batch;
        let metrics = &self.links.metrics;
        if let Some(behind) = millis_behind_latest {
            metrics.set_gauge(
                ShardGauge::MillisBehindLatest,
                &self.shard_id,
                behind as f64,
            );
        }
        let record_count = records.len();
        metrics.add(Counter::RecordsProcessed, record_count as u64);
        metrics.add(
            Counter::BytesProcessed,
            records.iter().map(|r| r.data.len() as u64).sum(),
        );
        if let Some(last) = records.last() {
            self.last_position = Some(last.position.clone());
            self.newest_arrival_ms = self.newest_arrival_ms.max(last.arrival_time_ms);
        }

        // Each symbol's ticks go to its aggregator in one message.
        let mut group_of: HashMap<Symbol, u32> = HashMap::default();
        let mut groups: Vec<(Symbol, Vec<PendingTick>)> = Vec::new();
        // A group starts with room for a quarter more than a fair share of the read among the
        // symbols the shard has seen, so that filling it seldom moves it (a move copies its
        // ticks); a shard's first read has seen none, and takes a guess.
        let fair_share = match self.aggregators.len() {
            0 => 16,
            symbols => (record_count.div_ceil(symbols) * 5 / 4).max(1),
        };
        let mut dead_letters = Vec::new();
        for record in records {
            match decode_tick(&record.data, &self.settings.decode_limits) {
                Ok(tick) => {
                    let group = match group_of.get(&tick.symbol) {
                        Some(&group) => group,
                        None => {
                            let group = groups.len() as u32;
                            group_of.insert(tick.symbol.clone(), group);
                            groups.push((tick.symbol.clone(), Vec::with_capacity(fair_share)));
                            group
                        }
                    };
                    groups[group as usize].1.push(PendingTick {
                        tick,
                        position: record.position,
                        arrival_time_ms: record.arrival_time_ms,
                    });
                }
                Err(rejection) => dead_letters.push(DeadLetter {
                    shard_id: self.shard_id.clone(),
                    position: record.position,
                    partition_key: record.partition_key,
                    arrival_time_ms: record.arrival_time_ms,
                    reason_code: rejection.code(),
                    reason: rejection.to_string(),
                    data: record.data,
                }),
            }
        }
        if let Some(first) = dead_letters.first() {
            metrics.add(Counter::DeadLetters, dead_letters.len() as u64);
            tracing::warn!(shard_id = %self.shard_id, count = dead_letters.len(), reason = %first.reason,
                position = %first.position, "Records rejected and dead-lettered.");
        }
        let requests: Vec<_> = groups
            .into_iter()
            .map(|(symbol, ticks)| {
                let sent = ticks.len();
                let reply = self.aggregator(&symbol, None).send(Aggregate(ticks));
                async move { (sent, reply.await) }
            })
            .collect();

        // Short of a reserved files end, the reader reads on even when asked to stop, and makes
        // no barrier before it: the end is one record read by an earlier owner, soon reached.
        let held = self.files_end.is_some();
        let last = !held && (shard_end || self.control.stopping());
        self.records_since_barrier += record_count as u64;
        let due = !held
            && (self.records_since_barrier >= self.barrier_after_records
                || Instant::now() >= self.barrier_due_at);
        let barrier = match &self.last_position {
            Some(position)
                if at_files_end
                    || last
                    || (due && self.last_barrier.as_ref() != Some(position)) =>
            {
                Some(position.clone())
            }
            _ => None,
        };
        if last && self.last_position.is_none() {
            self.links.checkpointer.do_send(FinishedEmpty {
                shard_id: self.shard_id.clone(),
                generation: self.generation(),
                shard_end,
            });
            return Box::pin(fut::ready(Flow::Finish));
        }
        let proposal = barrier.clone().map(|position| {
            let proposal = (position, self.records_since_barrier, self.newest_arrival_ms);
            self.last_barrier = barrier.clone();
            self.records_since_barrier = 0;
            self.barrier_after_records = self.settings.checkpoint_max_records;
            self.barrier_due_at = Instant::now() + self.settings.checkpoint_interval;
            proposal
        });
        let snapshot_from: Vec<_> = match proposal {
            Some(_) => self.aggregators.values().cloned().collect(),
            None => Vec::new(),
        };

        let shard_id = self.shard_id.clone();
        let fence = self.assignment.fence.clone();
        let links = self.links.clone();
        let previous = self.sending.take();
        let handoff = async move {
            let mut alerts = Vec::new();
            let mut bars = Vec::new();
            let mut chunks = Vec::with_capacity(requests.len());
            // The messages are already queued, so awaiting the replies one by one waits no
            // longer than `join_all`, without a task per symbol.
            for request in requests {
                let (sent, result) = request.await;
                let aggregated = result
                    .map_err(|e| format!("symbol aggregator of shard {shard_id} failed: {e}"))?;
                if aggregated.ticks.len() != sent {
                    return Err(format!(
                        "a symbol aggregator of shard {shard_id} returned {} of {sent} ticks",
                        aggregated.ticks.len()
                    ));
                }
                chunks.push(aggregated.ticks);
                alerts.extend(aggregated.alerts);
                bars.extend(aggregated.bars);
                links
                    .metrics
                    .add(Counter::BarLateTicks, aggregated.late_for_bars);
            }
            let anomalies = chunks
                .iter()
                .flat_map(|chunk| chunk.iter())
                .filter(|t| t.anomaly);
            links
                .metrics
                .add(Counter::AnomaliesDetected, anomalies.count() as u64);
            alerts.sort_by(|a, b| a.id.cmp(&b.id));

            if let Some((position, records, newest_arrival_ms)) = proposal {
                let mut snapshot = ShardSnapshot::new();
                for result in
                    futures::future::join_all(snapshot_from.iter().map(|a| a.send(TakeSnapshot)))
                        .await
                {
                    let (symbol, state) =
                        result.map_err(|e| format!("snapshot of shard {shard_id} failed: {e}"))?;
                    snapshot.insert(symbol, state);
                }
                let propose = Propose {
                    shard_id: shard_id.clone(),
                    fence: fence.clone(),
                    position,
                    snapshot,
                    last,
                    shard_end,
                    records,
                    newest_arrival_ms,
                };
                links
                    .checkpointer
                    .send(propose)
                    .await
                    .map_err(|e| format!("checkpointer unreachable: {e}"))?;
            }
            let batch = ShardBatch {
                shard_id: shard_id.clone(),
                fence,
                ticks: chunks.into(),
                alerts: alerts.into(),
                bars: bars.into(),
                dead_letters: dead_letters.into(),
                barrier,
            };
            if let Some(previous) = previous {
                previous.await.map_err(|e| {
                    format!("hand-off to the sinks of shard {shard_id} failed: {e}")
                })??;
            }
            let send = async move {
                links
                    .sinks
                    .send(batch)
                    .await
                    .map_err(|e: SinkError| e.to_string())
            };
            // The last batch is handed off before the reader finishes; any other goes on while
            // the next one is read.
            if last {
                send.await.map(|()| None)
            } else {
                Ok(Some(tokio::task::spawn_local(send)))
            }
        };
        Box::pin(handoff.into_actor(self).map(move |result, act, ctx| match result {
            Ok(_) if last => {
                act.finished = true;
                tracing::info!(shard_id = %act.shard_id, shard_end, "Shard reader finished.");
                Flow::Finish
            }
            Ok(sending) => {
                act.sending = sending;
                Flow::Continue
            }
            Err(message) => {
                act.fail(message, ctx);
                Flow::Finish
            }
        }))
    }
}

impl Actor for ShardReader {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.links
            .committed
            .begin(&self.shard_id, self.generation());
        let shard = self.assignment.shard.clone();
        let (source, checkpoints) = (self.links.source.clone(), self.links.checkpoints.clone());
        let initial = self.settings.initial_position.clone();
        let open = async move {
            let checkpoint = load_checkpoint(&*checkpoints, &shard.id).await?;
            let files_end = load_files_end(&*checkpoints, &shard.id, checkpoint.as_ref()).await?;
            let (start, inherited) = match &checkpoint {
                Some(checkpoint) => (StartPosition::After(checkpoint.position.clone()), None),
                // A child of a reshard starts at its beginning, with its symbols' state as its
                // parents left it.
                None if shard.parents().next().is_some() => (
                    StartPosition::TrimHorizon,
                    Some(inherit_state(&*checkpoints, &shard).await?),
                ),
                None => (initial, None),
            };
            let cursor = source
                .open_shard(&shard.id, start)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((checkpoint, files_end, inherited, cursor))
        };
        ctx.wait(open.into_actor(self).map(|result, act, ctx| match result {
            Ok((checkpoint, files_end, inherited, cursor)) => {
                if let Some(end) = &files_end {
                    tracing::info!(shard_id = %act.shard_id, %end,
                        "Ending the first files where an earlier owner reserved their end.");
                }
                act.files_end = files_end;
                if let Some(checkpoint) = checkpoint {
                    tracing::info!(shard_id = %act.shard_id, position = %checkpoint.position,
                        symbols = checkpoint.snapshot.len(), generation = act.generation(),
                        "Resuming shard from checkpoint.");
                    act.links
                        .committed
                        .publish(&act.shard_id, &checkpoint.position);
                    act.last_position = Some(checkpoint.position.clone());
                    act.last_barrier = Some(checkpoint.position);
                    for (symbol, state) in checkpoint.snapshot {
                        act.aggregator(&symbol, Some(state));
                    }
                }
                if let Some(inherited) = inherited {
                    tracing::info!(shard_id = %act.shard_id, symbols = inherited.len(),
                        "Starting child shard with its parents' state.");
                    for (symbol, state) in inherited {
                        act.aggregator(&symbol, Some(state));
                    }
                }
                act.cursor = Some(cursor);
                act.read_next(ctx);
            }
            Err(message) => act.fail(
                format!("opening shard {} failed: {message}", act.shard_id),
                ctx,
            ),
        }));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        // A finished reader's sinks still write its last batches, and wait for its commits to do
        // so: the coordinator retires it once its last checkpoint is written or its lease lost.
        if !self.finished {
            self.links
                .committed
                .retire(&self.shard_id, self.generation());
        }
    }
}

/// Records before a shard's first barrier: `max_records` shortened by a fraction set by the
/// shard's number. Evenly loaded shards would otherwise reach every record-count barrier
/// together, and the lake would encode all their files, and the checkpointer snapshot all their
/// windows, at the same moment, with every shard's rows held meanwhile. Golden-ratio steps
/// spread any run of shard numbers evenly; ids without a number take a hash.
fn first_barrier_after(shard_id: &str, max_records: u64) -> u64 {
    const GOLDEN_FRACTION: f64 = 0.618_033_988_749_895;
    let digits = shard_id.trim_start_matches(|c: char| !c.is_ascii_digit());
    let number = digits.parse::<u64>().unwrap_or_else(|_| {
        // FNV-1a: fixed, so a shard's barriers fall in the same places on every run.
        shard_id.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
    });
    let fraction = (number as f64 * GOLDEN_FRACTION).fract();
    let shortened = max_records - (max_records as f64 * fraction) as u64;
    shortened.max(1)
}

/// The end an earlier owner reserved for the files that follow `checkpoint`, if any.
async fn load_files_end(
    checkpoints: &dyn CheckpointStore,
    shard_id: &ShardId,
    checkpoint: Option<&Checkpoint>,
) -> Result<Option<Position>, String> {
    let reserved = (|| checkpoints.files_end(shard_id))
        .retry(crate::retry::backoff())
        .when(|e| e.is_retryable())
        .notify(|e, wait| tracing::warn!(error = %e, ?wait, "Checkpoint read failed, retrying."))
        .await
        .map_err(|e| e.to_string())?;
    let after = checkpoint.map(|c| &c.position);
    Ok(reserved
        .filter(|r| r.after.as_ref() == after && after.is_none_or(|a| a < &r.end))
        .map(|r| r.end))
}

async fn load_checkpoint(
    checkpoints: &dyn CheckpointStore,
    shard_id: &ShardId,
) -> Result<Option<Checkpoint>, String> {
    (|| checkpoints.load(shard_id))
        .retry(crate::retry::backoff())
        .when(|e| e.is_retryable())
        .notify(|e, wait| tracing::warn!(error = %e, ?wait, "Checkpoint read failed, retrying."))
        .await
        .map_err(|e| e.to_string())
}

/// The final window state of a child shard's parents, for the symbols whose partition keys now
/// hash into the child (the partition key is the symbol).
async fn inherit_state(
    checkpoints: &dyn CheckpointStore,
    child: &ShardInfo,
) -> Result<ShardSnapshot, String> {
    let mut state = ShardSnapshot::new();
    for parent in child.parents() {
        let Some(checkpoint) = load_checkpoint(checkpoints, parent).await? else {
            continue;
        };
        state.extend(checkpoint.snapshot.into_iter().filter(|(symbol, _)| {
            child
                .hash_range
                .is_none_or(|range| range.holds_key(symbol.as_str()))
        }));
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_reach_their_first_barrier_apart() {
        let firsts: Vec<u64> = (0..4)
            .map(|n| first_barrier_after(&format!("shardId-{n:012}"), 20_000))
            .collect();
        assert_eq!(firsts[0], 20_000);
        let mut sorted = firsts.clone();
        sorted.sort_unstable();
        for pair in sorted.windows(2) {
            assert!(pair[1] - pair[0] >= 2_000, "{firsts:?}");
        }
        assert!(firsts.iter().all(|&n| (1..=20_000).contains(&n)));
        // Any id works, and always gives the same answer.
        let odd = first_barrier_after("local-shard", 20_000);
        assert_eq!(odd, first_barrier_after("local-shard", 20_000));
        assert!((1..=20_000).contains(&odd));
        assert_eq!(first_barrier_after("shardId-000000000007", 1), 1);
    }
}
