//! The shard reader: reads one shard from its checkpoint, decodes and validates records, routes
//! ticks to one aggregator per symbol, and hands every read to the sinks, with a checkpoint
//! barrier every interval.
//!
//! In: batches from a [`ShardCursor`]. Out: a [`ShardBatch`](crate::barrier::ShardBatch) per read
//! to the sinks, [`Propose`](crate::barrier::Propose) to the checkpointer, rejected records as
//! dead letters. One read is processed at a time, while the sinks take the previous one: the
//! reader waits for that hand-off before it makes the next, so batches reach the sinks in order
//! and a slow sink slows the reader.

mod handoff;
mod marks;
mod resume;
mod route;
mod schedule;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use foldhash::HashMap;

use self::handoff::{Candidate, HandOff, SinkHandoff};
use self::marks::ResumeMarks;
use self::resume::{inherit_state, load_checkpoint, load_marks};
use self::route::{Routed, route};
use self::schedule::first_barrier_after;
use super::checkpointer::Checkpointer;
use super::fatal::Fatal;
use super::sink::Sinks;
use super::symbol_aggregator::{Aggregate, SymbolAggregator};
use crate::barrier::{CommittedPositions, FinishedEmpty};
use crate::checkpoint::CheckpointStore;
use crate::lease::Fence;
use crate::metrics::{Counter, Metrics, ShardGauge};
use crate::model::dead_letter::DeadLetter;
use crate::model::decode::DecodeLimits;
use crate::model::rules::RuleConfig;
use crate::model::state::SymbolState;
use crate::model::tick::{Position, Symbol};
use crate::model::window::WindowConfig;
use crate::stream::{
    ReadBatch, Record, ShardCursor, ShardId, ShardInfo, StartPosition, StreamSource,
};

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
    /// What an earlier owner left to keep to: the reserved end of the next files (the next
    /// barrier falls exactly there, and none before it; [`crate::barrier::files`]) and how far
    /// alerts are published.
    marks: ResumeMarks,
    /// The records of a read past a mark, processed before the next read.
    carried: Option<ReadBatch>,
    /// The previous batch's hand-off to the sinks, still running.
    sending: Option<SinkHandoff>,
    /// The last batch is handed off: the sinks may still be writing it after this reader stops.
    finished: bool,
}

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
            marks: ResumeMarks::default(),
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

    /// Decodes and routes one read, then hands it to the sinks (with a barrier when one is due).
    fn process(&mut self, mut batch: ReadBatch) -> Pin<Box<dyn ActorFuture<Self, Output = Flow>>> {
        let cut = self.marks.cut(&self.shard_id, &mut batch);
        self.carried = cut.rest;
        let ReadBatch {
            records,
            millis_behind_latest,
            shard_end,
        } = batch;
        let record_count = records.len() as u64;
        self.count_read(&records, millis_behind_latest);
        let Routed {
            groups,
            dead_letters,
            keyed_otherwise,
        } = route(
            &self.shard_id,
            records,
            &self.settings.decode_limits,
            self.group_capacity(record_count as usize),
        );
        self.count_rejected(&dead_letters);
        let metrics = &self.links.metrics;
        metrics.add(Counter::RecordsKeyedOtherwise, keyed_otherwise);
        let requests: Vec<_> = groups
            .into_iter()
            .map(|(symbol, ticks)| {
                (
                    ticks.len(),
                    self.aggregator(&symbol, None).send(Aggregate(ticks)),
                )
            })
            .collect();

        // Short of a reserved files end, the reader reads on even when asked to stop, and makes
        // no barrier before it: the end is one record read by an earlier owner, soon reached.
        let held = self.marks.files_end().is_some();
        let last = !held && (shard_end || self.control.stopping());
        if last && self.last_position.is_none() && shard_end && !self.aggregators.is_empty() {
            // A child that ends before any record still checkpoints the state it inherited, or
            // its own children would start without it.
            self.last_position = Some(Position::before_any());
        }
        if last && self.last_position.is_none() {
            self.links.checkpointer.do_send(FinishedEmpty {
                shard_id: self.shard_id.clone(),
                generation: self.generation(),
                shard_end,
            });
            return Box::pin(fut::ready(Flow::Finish));
        }
        let candidate = self.next_barrier(record_count, cut.at_files_end || last, held);
        let handoff = HandOff {
            shard_id: self.shard_id.clone(),
            fence: self.assignment.fence.clone(),
            through: self.last_position.clone(),
            links: self.links.clone(),
            requests,
            alerts_published: cut.alerts_published,
            dead_letters,
            candidate,
            last,
            shard_end,
            previous: self.sending.take(),
        };
        Box::pin(handoff.run().into_actor(self).map(move |result, act, ctx| match result {
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

    /// Counts a read in the metrics and moves the reader's position to its last record.
    fn count_read(&mut self, records: &[Record], millis_behind_latest: Option<i64>) {
        let metrics = &self.links.metrics;
        if let Some(behind) = millis_behind_latest {
            metrics.set_gauge(
                ShardGauge::MillisBehindLatest,
                &self.shard_id,
                behind as f64,
            );
        }
        metrics.add(Counter::RecordsProcessed, records.len() as u64);
        metrics.add(
            Counter::BytesProcessed,
            records.iter().map(|r| r.data.len() as u64).sum(),
        );
        if let Some(last) = records.last() {
            self.last_position = Some(last.position.clone());
            self.newest_arrival_ms = self.newest_arrival_ms.max(last.arrival_time_ms);
        }
    }

    fn count_rejected(&self, dead_letters: &[DeadLetter]) {
        let Some(first) = dead_letters.first() else {
            return;
        };
        let metrics = &self.links.metrics;
        metrics.add(Counter::DeadLetters, dead_letters.len() as u64);
        for letter in dead_letters {
            metrics.add_rejections(letter.reason_code, 1);
        }
        // People read a summary by reason every few seconds (`metrics::rejections`).
        tracing::debug!(shard_id = %self.shard_id, count = dead_letters.len(), reason = %first.reason,
            position = %first.position, "Records rejected and dead-lettered.");
    }

    /// Room for a quarter more than a fair share of a read of `records` among the symbols the
    /// shard has seen, so that filling a group seldom moves it (a move copies its ticks); a
    /// shard's first read has seen none, and takes a guess.
    fn group_capacity(&self, records: usize) -> usize {
        match self.aggregators.len() {
            0 => 16,
            symbols => (records.div_ceil(symbols) * 5 / 4).max(1),
        }
    }

    /// The checkpoint candidate this read ends with, if a barrier falls here: when `forced`
    /// (the reserved files end, or the reader's last read), or when one is due and barriers are
    /// not `held` back for a reserved end.
    fn next_barrier(&mut self, records: u64, forced: bool, held: bool) -> Option<Candidate> {
        self.records_since_barrier += records;
        let due = !held
            && (self.records_since_barrier >= self.barrier_after_records
                || Instant::now() >= self.barrier_due_at);
        let position = self.last_position.clone()?;
        let fresh = self.last_barrier.as_ref() != Some(&position);
        if !(forced || (due && fresh)) {
            return None;
        }
        let candidate = Candidate {
            position: position.clone(),
            records: self.records_since_barrier,
            newest_arrival_ms: self.newest_arrival_ms,
            aggregators: self.aggregators.values().cloned().collect(),
        };
        self.last_barrier = Some(position);
        self.records_since_barrier = 0;
        self.barrier_after_records = self.settings.checkpoint_max_records;
        self.barrier_due_at = Instant::now() + self.settings.checkpoint_interval;
        Some(candidate)
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
            let marks = load_marks(&*checkpoints, &shard.id, checkpoint.as_ref()).await?;
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
            Ok::<_, String>((checkpoint, marks, inherited, cursor))
        };
        ctx.wait(open.into_actor(self).map(|result, act, ctx| match result {
            Ok((checkpoint, marks, inherited, cursor)) => {
                act.marks = ResumeMarks::new(marks, checkpoint.as_ref().map(|c| &c.position));
                if let Some(end) = act.marks.files_end() {
                    tracing::info!(shard_id = %act.shard_id, %end,
                        "Ending the first files where an earlier owner reserved their end.");
                }
                if let Some(through) = act.marks.alerts_published() {
                    tracing::info!(shard_id = %act.shard_id, %through,
                        "Alerts up to here were published before: none is sent again.");
                }
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
