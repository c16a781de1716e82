//! The shard reader: reads one shard from its checkpoint, decodes and validates records, routes
//! ticks to one aggregator per symbol, and hands every read to the sinks, with a checkpoint
//! barrier every interval.
//!
//! In: batches from a [`ShardCursor`]. Out: a [`ShardBatch`](crate::barrier::ShardBatch) per read
//! to the sinks, [`Propose`](crate::barrier::Propose) to the checkpointer, rejected records as
//! dead letters. The shard keeps state for a bounded number of symbols ([`SymbolTable`]): a
//! symbol idle for `symbols.evict-after` of event time is evicted (its aggregator stops, its state
//! leaves the next snapshot), and records of symbols past `symbols.max-per-shard` are
//! dead-lettered. One read is processed at a time, while the sinks take the previous one: the
//! reader waits for that hand-off before it makes the next, so batches reach the sinks in order
//! and a slow sink slows the reader.
//!
//! The reader runs in the span `shard_reader{shard_id, generation}` ([`super::span`]), and so
//! does what it calls (the stream port, the hand-off): no line of it names the shard itself.

mod error;
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

use self::error::ReaderError;
use self::handoff::{Candidate, Closing, HandOff, SinkHandoff};
use self::marks::ResumeMarks;
use self::resume::{inherit_state, load_checkpoint, load_marks};
use self::route::{Kept, Routed, route};
use self::schedule::BarrierSchedule;
use super::checkpointer::Checkpointer;
use super::fatal::Fatal;
use super::sink::Sinks;
use super::span;
use super::symbol_aggregator::{Aggregate, SymbolAggregator};
use crate::barrier::{CommittedPositions, FileSizing, FinishedEmpty, OpenFileSizes, Resumed};
use crate::checkpoint::CheckpointStore;
use crate::lease::Fence;
use crate::metrics::{Counter, Metrics, ShardGauge};
use crate::model::dead_letter::DeadLetter;
use crate::model::decode::DecodeLimits;
use crate::model::ids::ShardId;
use crate::model::rules::RuleConfig;
use crate::model::state::SymbolState;
use crate::model::symbol_table::{SymbolLimits, SymbolTable};
use crate::model::tick::{Position, Symbol};
use crate::model::window::WindowConfig;
use crate::stream::{ReadBatch, Record, ShardCursor, ShardInfo, StartPosition, StreamSource};

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
    /// When the lake's and dead letters' files close, which makes a barrier a checkpoint.
    pub files: FileSizing,
    pub mailbox: usize,
    /// Keep one-minute bars for the ticks table.
    pub bars: bool,
    /// Where a shard without a checkpoint starts.
    pub initial_position: StartPosition,
    /// How many symbols a shard keeps state for, and for how long an idle one.
    pub symbols: SymbolLimits,
}

/// The services a reader talks to.
#[derive(Clone)]
pub struct ReaderLinks {
    pub source: Arc<dyn StreamSource>,
    pub checkpoints: Arc<dyn CheckpointStore>,
    pub sinks: Sinks,
    pub checkpointer: Addr<Checkpointer>,
    pub committed: Arc<CommittedPositions>,
    pub open_files: Arc<OpenFileSizes>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<crate::health::Health>,
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
    /// The symbols the shard keeps, each with its aggregator.
    symbols: SymbolTable<Kept<Addr<SymbolAggregator>>>,
    /// Failed reads in a row.
    failed_reads: u32,
    /// Reads processed: numbers the next one, so routing knows a symbol's group is this read's.
    reads: u64,
    /// Position of the last record read (or restored from the checkpoint).
    last_position: Option<Position>,
    /// When barriers fall, and which close the files.
    schedule: BarrierSchedule,
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
    /// The read failed: read again after this pause.
    ReadAgainAfter(Duration),
    Finish,
}

/// The pause before reading again after `failures` failed reads in a row (the stream port has
/// retried each already): doubling from a second to a minute.
fn read_pause(failures: u32) -> Duration {
    Duration::from_secs(1 << failures.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

impl ShardReader {
    pub fn new(
        assignment: Assignment,
        settings: Arc<ReaderSettings>,
        links: ReaderLinks,
        control: Arc<ReaderControl>,
    ) -> Self {
        let schedule = BarrierSchedule::new(
            &assignment.shard.id,
            (
                settings.checkpoint_interval,
                settings.checkpoint_max_records,
            ),
            settings.files,
            Instant::now(),
        );
        let symbols = SymbolTable::new(settings.symbols);
        Self {
            shard_id: assignment.shard.id.clone(),
            assignment,
            settings,
            links,
            control,
            cursor: None,
            symbols,
            failed_reads: 0,
            reads: 0,
            last_position: None,
            schedule,
            newest_arrival_ms: 0,
            marks: ResumeMarks::default(),
            carried: None,
            sending: None,
            finished: false,
        }
    }

    /// Keeps a symbol's state as a checkpoint or a reshard's parent left it.
    fn restore(&mut self, symbol: Symbol, state: SymbolState) {
        let last_event_ms = state.newest_event_ms();
        let aggregator = start_aggregator(&self.settings, &self.shard_id, &symbol, Some(state));
        self.symbols
            .restore(symbol, last_event_ms, Kept::new(aggregator));
    }

    fn fail(&self, error: ReaderError, ctx: &mut Context<Self>) {
        self.links.fatal.raise(error.to_string());
        ctx.stop();
    }

    fn generation(&self) -> u64 {
        self.assignment.fence.counter
    }

    fn read_next(&mut self, ctx: &mut Context<Self>) {
        if self.control.aborted() {
            tracing::info!("Shard reader aborted: the lease is lost.");
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
                .then(|(cursor, result), act, _| {
                    act.cursor = Some(cursor);
                    match result {
                        Ok(batch) => {
                            act.failed_reads = 0;
                            act.process(batch)
                        }
                        Err(error) => {
                            // Not a reason to exit: a new process would meet the same error (a
                            // permission, a deleted stream) or wait the same (an outage).
                            act.failed_reads += 1;
                            let pause = read_pause(act.failed_reads);
                            let refused = !error.is_retryable();
                            tracing::error!(%error, ?pause, refused,
                                "Reading the shard failed; reading again after a pause.");
                            act.links
                                .health
                                .shard_read_failed(&act.shard_id, &error, refused);
                            Box::pin(fut::ready(Flow::ReadAgainAfter(pause)))
                        }
                    }
                })
                .map(|flow, act, ctx| match flow {
                    Flow::Continue => {
                        act.links.health.shard_progressed(&act.shard_id);
                        act.read_next(ctx);
                    }
                    Flow::ReadAgainAfter(pause) => {
                        ctx.run_later(pause, |act, ctx| act.read_next(ctx));
                    }
                    Flow::Finish => ctx.stop(),
                }),
        );
    }

    /// Decodes and routes one read, then hands it to the sinks (with a barrier when one is due).
    ///
    /// Kept as one sequence of named steps (cut at marks, count, route, evict, decide the
    /// barrier, hand off): each step reads or moves the reader's state the next one uses, and
    /// the order is the protocol (`src/barrier/mod.rs`).
    fn process(&mut self, mut batch: ReadBatch) -> Pin<Box<dyn ActorFuture<Self, Output = Flow>>> {
        let cut = self.marks.cut(&mut batch);
        self.carried = cut.rest;
        let ReadBatch {
            records,
            millis_behind_latest,
            records_behind_latest,
            shard_end,
            retention_gap,
        } = batch;
        let record_count = records.len() as u64;
        self.count_read(&records, millis_behind_latest, records_behind_latest);
        self.reads += 1;
        let group_capacity = self.group_capacity(record_count as usize);
        let (settings, shard_id) = (&self.settings, &self.shard_id);
        let Routed {
            groups,
            dead_letters,
            keyed_otherwise,
            over_symbol_limit,
            evicted,
        } = route(
            shard_id,
            records,
            &settings.decode_limits,
            &mut self.symbols,
            self.reads,
            |symbol| start_aggregator(settings, shard_id, symbol, None),
            group_capacity,
        );
        self.count_rejected(&dead_letters);
        let metrics = &self.links.metrics;
        metrics.add(Counter::RecordsKeyedOtherwise, keyed_otherwise);
        metrics.add(Counter::RecordsOverSymbolLimit, over_symbol_limit);
        let mut dead_letters = dead_letters;
        if let Some(gap) = retention_gap {
            // Logged and counted by every reader that resumes there; the marker, at the first
            // record read, goes out once with the files of the batch's dead letters.
            tracing::error!(lost = %gap,
                "Records were lost to the stream's retention before they were read.");
            metrics.add(Counter::RecordsLostToRetention, 1);
            if let Some(before) = &gap.before {
                let (after, arrival) = (&gap.after, gap.arrival_time_ms);
                let marker =
                    DeadLetter::lost_to_retention(shard_id.clone(), after, before, arrival);
                dead_letters.insert(0, marker);
            }
        }
        let requests: Vec<_> = groups
            .into_iter()
            .map(|(aggregator, ticks)| (ticks.len(), aggregator.send(Aggregate(ticks))))
            .collect();
        // An evicted symbol's aggregator stops once its last ticks, sent above, are handled.
        self.count_evicted(evicted);

        // Short of a reserved files end, the reader reads on even when asked to stop, and makes
        // no barrier before it: the end is one record read by an earlier owner, soon reached.
        let held = self.marks.files_end().is_some();
        let last = !held && (shard_end || self.control.stopping());
        if last && self.last_position.is_none() && shard_end && !self.symbols.is_empty() {
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
            skip: cut.skip,
            dead_letters,
            candidate,
            last,
            shard_end,
            previous: self.sending.take(),
        };
        Box::pin(
            handoff
                .run()
                .into_actor(self)
                .map(move |result, act, ctx| match result {
                    Ok(_) if last => {
                        act.finished = true;
                        tracing::info!(shard_end, "Shard reader finished.");
                        Flow::Finish
                    }
                    Ok(sending) => {
                        act.sending = sending;
                        Flow::Continue
                    }
                    Err(error) => {
                        act.fail(error, ctx);
                        Flow::Finish
                    }
                }),
        )
    }

    /// Counts a read in the metrics and moves the reader's position to its last record.
    fn count_read(
        &mut self,
        records: &[Record],
        millis_behind_latest: Option<i64>,
        records_behind_latest: Option<i64>,
    ) {
        let metrics = &self.links.metrics;
        for (gauge, value) in [
            (ShardGauge::MillisBehindLatest, millis_behind_latest),
            (ShardGauge::RecordsBehindLatest, records_behind_latest),
        ] {
            if let Some(value) = value {
                metrics.set_gauge(gauge, &self.shard_id, value as f64);
            }
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
        tracing::debug!(count = dead_letters.len(), reason = %first.reason,
            position = %first.position, "Records rejected and dead-lettered.");
    }

    /// Counts and logs the symbols evicted, and drops their aggregators.
    fn count_evicted<A>(&self, evicted: Vec<(Symbol, A)>) {
        let Some((first, _)) = evicted.first() else {
            return;
        };
        self.links
            .metrics
            .add(Counter::SymbolsEvicted, evicted.len() as u64);
        tracing::debug!(count = evicted.len(), %first, "Idle symbols evicted.");
    }

    /// Room for a quarter more than a fair share of a read of `records` among the symbols the
    /// shard keeps, so that filling a group seldom moves it (a move copies its ticks); a
    /// shard's first read has seen none, and takes a guess.
    fn group_capacity(&self, records: usize) -> usize {
        match self.symbols.len() {
            0 => 16,
            symbols => (records.div_ceil(symbols) * 5 / 4).max(1),
        }
    }

    /// The barrier this read ends with, if one falls here ([`BarrierSchedule::next`]); at a
    /// checkpoint candidate, with what its snapshot is taken from.
    fn next_barrier(&mut self, records: u64, forced: bool, held: bool) -> Option<Candidate> {
        let open_bytes = self.links.open_files.largest(&self.shard_id);
        let barrier = self.schedule.next(
            self.last_position.as_ref(),
            records,
            (forced, held),
            open_bytes,
            Instant::now(),
        )?;
        let Some(records) = barrier.closing else {
            return Some(Candidate {
                position: barrier.position,
                closes_files: None,
            });
        };
        // Idle symbols leave the snapshot; evicting them here changes no later decision.
        let mut evicted = Vec::new();
        self.symbols.evict_idle(&mut evicted);
        self.count_evicted(evicted);
        let closing = Closing {
            records,
            newest_arrival_ms: self.newest_arrival_ms,
            aggregators: self
                .symbols
                .iter()
                .map(|(_, kept)| kept.aggregator.clone())
                .collect(),
        };
        Some(Candidate {
            position: barrier.position,
            closes_files: Some(closing),
        })
    }
}

/// Starts the aggregator of `symbol` with `state`, or a fresh state, in a span inside the
/// reader's.
fn start_aggregator(
    settings: &ReaderSettings,
    shard_id: &ShardId,
    symbol: &Symbol,
    state: Option<SymbolState>,
) -> Addr<SymbolAggregator> {
    let state = state.unwrap_or_else(|| SymbolState::new(settings.windows));
    let aggregator = SymbolAggregator::new(
        symbol.clone(),
        shard_id.clone(),
        state,
        settings.rules.for_symbol(symbol),
        settings.bars,
        settings.mailbox,
    );
    span::start(aggregator, span::symbol_aggregator(symbol))
}

impl Actor for ShardReader {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.links
            .committed
            .begin(&self.shard_id, self.generation());
        self.open(ctx);
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

impl ShardReader {
    /// Loads the shard's checkpoint and marks (or its parents' state) and opens its cursor, then
    /// starts reading; on failure, tries again after a pause.
    fn open(&mut self, ctx: &mut Context<Self>) {
        if self.control.aborted() {
            ctx.stop();
            return;
        }
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
            let cursor = source.open_shard(&shard.id, start).await?;
            Ok::<_, ReaderError>((checkpoint, marks, inherited, cursor))
        };
        ctx.wait(open.into_actor(self).map(|result, act, ctx| match result {
            Ok((checkpoint, marks, inherited, cursor)) => {
                act.marks = ResumeMarks::new(marks, checkpoint.as_ref().map(|c| &c.position));
                if let Some(end) = act.marks.files_end() {
                    tracing::info!(%end,
                        "Ending the first files where an earlier owner reserved their end.");
                }
                if let Some(through) = act.marks.alerts_published() {
                    tracing::info!(%through,
                        "Alerts up to here were published before: none is sent again.");
                }
                for (sink, through) in act.marks.sinks_durable() {
                    tracing::info!(sink = sink.name(), %through,
                        "The sink has records up to here already: they are not given it again.");
                }
                act.links.checkpointer.do_send(Resumed {
                    fence: act.assignment.fence.clone(),
                    checkpoint: checkpoint.as_ref().map(|c| c.position.clone()),
                    sinks_durable: act.marks.sinks_durable().clone(),
                });
                if let Some(checkpoint) = checkpoint {
                    tracing::info!(position = %checkpoint.position, symbols = checkpoint.snapshot.len(),
                        "Resuming shard from checkpoint.");
                    act.links
                        .committed
                        .publish(&act.shard_id, &checkpoint.position);
                    act.last_position = Some(checkpoint.position.clone());
                    act.schedule.resumed_at(&checkpoint.position);
                    for (symbol, state) in checkpoint.snapshot {
                        act.restore(symbol, state);
                    }
                }
                if let Some(inherited) = inherited {
                    tracing::info!(symbols = inherited.len(),
                        "Starting child shard with its parents' state.");
                    for (symbol, state) in inherited {
                        act.restore(symbol, state);
                    }
                }
                act.cursor = Some(cursor);
                act.read_next(ctx);
            }
            Err(error) => {
                act.failed_reads += 1;
                let pause = read_pause(act.failed_reads);
                tracing::error!(%error, ?pause,
                    "Opening the shard failed; trying again after a pause.");
                act.links
                    .health
                    .shard_read_failed(&act.shard_id, &error, false);
                ctx.run_later(pause, |act, ctx| act.open(ctx));
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_reads_pause_longer_each_time_up_to_a_minute() {
        let pauses: Vec<u64> = (1..=9).map(|n| read_pause(n).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
