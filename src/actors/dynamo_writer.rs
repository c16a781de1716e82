//! The DynamoWriter: writes every enriched tick as an item of the ticks table, or each symbol's
//! one-minute bars, or both (`table.mode`).
//!
//! In: [`ShardBatch`]es from all readers. Their ticks are held (shared with the other sinks, not
//! copied) and written when enough wait, every flush interval (so lookups stay fresh) and at
//! every barrier, which is then acknowledged to the checkpointer. Writes go through the
//! [`TicksTable`] port (a local file, or DynamoDB), which encodes each item as it writes it.
//! A flush runs apart from the actor, which takes the next batches meanwhile, so a reader's
//! hand-off never waits for a whole write; flushes run one at a time, in order.
//!
//! A bar is rewritten as its minute fills; the buffer keeps only its latest value, so a flush
//! writes each bar once (a `BatchWriteItem` must not hold two puts of one key).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::refused::RefusedItems;
use super::sink::{BackgroundWrite, SinkLinks};
use crate::barrier::{ShardBatch, SinkError, SinkKind};
use crate::config::TableMode;
use crate::metrics::{Counter, Latency};
use crate::model::bar::MinuteBar;
use crate::model::enriched::EnrichedTick;
use crate::model::ids::ShardId;
use crate::model::item::Item;
use crate::model::tick::{Position, Symbol};
use crate::table::TicksTable;
use crate::table::refused::{self, write_finding_refused};

/// The TTL attribute of an item whose time is `event_time_ms`.
fn expires_at(ttl: Option<Duration>, event_time_ms: i64) -> Option<i64> {
    ttl.map(|ttl| event_time_ms.div_euclid(1000) + ttl.as_secs() as i64)
}

pub struct DynamoWriter {
    table: Arc<dyn TicksTable>,
    /// Where items the table refuses are kept as dead letters (under `prefix`).
    refused: RefusedItems,
    links: SinkLinks,
    ttl: Option<Duration>,
    flush_interval: Duration,
    max_buffered: usize,
    mode: TableMode,
    /// Chunks of ticks not written yet (never empty ones).
    ticks: Vec<Arc<[EnrichedTick]>>,
    /// Latest value of each bar changed since the last flush.
    bars: BTreeMap<(Symbol, i64), MinuteBar>,
    /// Barriers whose items are all in `ticks` and `bars`, or written.
    barriers: Vec<(ShardId, u64, Position)>,
    /// The latest flush (write, then acknowledgements), running apart from the actor so that
    /// the next batches are taken while it writes. The next flush writes once it is done.
    flushing: Option<BackgroundWrite>,
}

impl DynamoWriter {
    pub fn new(
        table: Arc<dyn TicksTable>,
        refused: RefusedItems,
        links: SinkLinks,
        config: &crate::config::TableConfig,
    ) -> Self {
        Self {
            table,
            refused,
            links,
            ttl: config.ttl,
            flush_interval: config.flush_interval,
            max_buffered: config.max_buffered_items.max(1),
            mode: config.mode,
            ticks: Vec::new(),
            bars: BTreeMap::new(),
            barriers: Vec::new(),
            flushing: None,
        }
    }

    /// Takes what is buffered into a flush that writes once the flush before it is done, so
    /// that a barrier is acknowledged only after every tick before it is written. Returns what
    /// resolves when the flush begins to write.
    fn start_flush(&mut self) -> impl Future<Output = Result<(), SinkError>> + use<> {
        let flush = self.flush();
        let (previous, fatal) = (self.flushing.take(), self.links.fatal.clone());
        let (flushing, begun) =
            BackgroundWrite::spawn_after(previous, SinkKind::Table, fatal, flush);
        self.flushing = Some(flushing);
        begun
    }

    fn flush_in_progress(&self) -> bool {
        self.flushing.as_ref().is_some_and(|f| !f.is_finished())
    }

    /// Writes the buffer, then acknowledges the barriers it covered.
    fn flush(&mut self) -> impl Future<Output = Result<(), SinkError>> + use<> {
        let ticks = std::mem::take(&mut self.ticks);
        let bars = std::mem::take(&mut self.bars);
        let ttl = self.ttl;
        let barriers = std::mem::take(&mut self.barriers);
        let (table, links, refused) =
            (self.table.clone(), self.links.clone(), self.refused.clone());
        async move {
            let tick_items = ticks
                .iter()
                .flat_map(|batch| batch.iter())
                .map(|tick| Item::Tick {
                    tick,
                    expires_at: expires_at(ttl, tick.tick.event_time_ms),
                });
            let bar_items = bars.iter().map(|((symbol, _), bar)| Item::Bar {
                symbol,
                bar,
                expires_at: expires_at(ttl, bar.minute_start_ms),
            });
            let items: Vec<Item> = tick_items.chain(bar_items).collect();
            if !items.is_empty() {
                let started = Instant::now();
                let report = links.reporting(SinkKind::Table);
                for (item, error) in write_finding_refused(&*table, &items, report).await {
                    let (letter, name) = refused::dead_letter(item, &error);
                    refused.keep("table", &name, letter, &links).await;
                }
                links.metrics.observe(
                    Latency::TableWriteLatency,
                    started.elapsed().as_secs_f64() * 1000.0,
                );
                links
                    .metrics
                    .add(Counter::TableItemsWritten, items.len() as u64);
            }
            for (shard_id, generation, position) in barriers {
                links
                    .acknowledge(SinkKind::Table, shard_id, generation, position)
                    .await?;
            }
            Ok(())
        }
    }
}

impl Actor for DynamoWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.links.mailbox);
        ctx.run_interval(self.flush_interval, |act, _| {
            let idle = act.ticks.is_empty() && act.bars.is_empty() && act.barriers.is_empty();
            // A flush in progress is followed by the next batch's, which takes these items.
            if !idle && !act.flush_in_progress() {
                drop(act.start_flush());
            }
        });
    }
}

impl Handler<ShardBatch> for DynamoWriter {
    type Result = AtomicResponse<Self, Result<(), SinkError>>;

    fn handle(&mut self, batch: ShardBatch, _: &mut Context<Self>) -> Self::Result {
        if self.mode.ticks() {
            let chunks = batch.ticks.iter().filter(|chunk| !chunk.is_empty());
            self.ticks.extend(chunks.cloned());
        }
        if self.mode.bars() {
            for (symbol, bar) in batch.bars.iter() {
                self.bars
                    .insert((symbol.clone(), bar.minute_start_ms), bar.clone());
            }
        }
        if let Some(position) = batch.barrier {
            self.barriers
                .push((batch.shard_id, batch.fence.counter, position));
        }
        let buffered_ticks: usize = self.ticks.iter().map(|batch| batch.len()).sum();
        let flush_now =
            buffered_ticks + self.bars.len() >= self.max_buffered || !self.barriers.is_empty();
        if !flush_now {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        }
        // The batch is taken once its flush begins, after the previous one: a writer holds at
        // most one flush's items being written beside the ones it collects. (The flush starts
        // here, not after that wait: actix may run a due interval before a handler's wait takes
        // hold, and the interval must find this flush under way.)
        let begun = self.start_flush();
        AtomicResponse::new(Box::pin(begun.into_actor(self)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::SeqCst;

    use async_trait::async_trait;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::actors::refused::RefusedItems;
    use crate::actors::test_support::{
        answered_ok, eventually, position, proposal, sink_links, still_waiting, tick_batch,
    };
    use crate::config::TableConfig;
    use crate::objects::local::LocalObjectStore;
    use crate::table::TableError;
    use crate::table::file::FileTicksTable;

    /// The file table, whose first `held` writes each wait for a permit (in turn); later
    /// writes go through at once.
    struct GatedTable {
        inner: FileTicksTable,
        gate: Semaphore,
        held: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl TicksTable for GatedTable {
        async fn put_items(&self, items: &[Item<'_>]) -> Result<(), TableError> {
            let held = self.held.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1));
            if held.is_ok() {
                self.gate.acquire().await.expect("gate open").forget();
            }
            self.inner.put_items(items).await
        }
    }

    /// A writer to `table` that flushes every `flush_interval`, its dead letters in `dir`.
    fn start_writer(
        table: Arc<dyn TicksTable>,
        links: SinkLinks,
        dir: &std::path::Path,
        flush_interval: Duration,
    ) -> Addr<DynamoWriter> {
        let config = TableConfig {
            flush_interval,
            ..TableConfig::default()
        };
        let refused = RefusedItems {
            objects: Arc::new(LocalObjectStore::new(dir.to_path_buf())),
            prefix: String::new(),
        };
        DynamoWriter::new(table, refused, links, &config).start()
    }

    async fn sequences(table: &FileTicksTable) -> Vec<String> {
        let text = tokio::fs::read_to_string(table.path())
            .await
            .unwrap_or_default();
        let items = text.lines().map(|line| {
            let item: serde_json::Value = serde_json::from_str(line).unwrap();
            item["sequence_number"]["S"].as_str().unwrap().to_owned()
        });
        items.collect()
    }

    #[actix::test]
    async fn batches_are_taken_while_a_flush_writes_and_flushes_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let table = Arc::new(GatedTable {
            inner: FileTicksTable::new(dir.path().join("ticks.jsonl")).unwrap(),
            gate: Semaphore::new(0),
            held: usize::MAX.into(),
        });
        let (links, _) = sink_links(dir.path(), SinkKind::Table);
        let writer = start_writer(table.clone(), links, dir.path(), Duration::from_secs(3600));
        let shard = "shardId-000000000000";

        // A barrier flushes at once; the next batch is taken while that flush waits to write.
        for (sequence, barrier) in [(1, true), (2, false)] {
            let reply = writer.send(tick_batch(shard, sequence, barrier));
            assert!(
                answered_ok(reply).await,
                "batch {sequence} is taken while the first flush writes"
            );
        }
        // The next flush waits for the first one, and so does its batch.
        let next = actix::spawn(writer.send(tick_batch(shard, 3, true)));
        assert!(
            still_waiting(&next).await,
            "a second flush started beside the first"
        );

        table.gate.add_permits(2);
        next.await.unwrap().unwrap().unwrap();
        assert!(eventually(async || sequences(&table.inner).await.len() == 3).await);
        assert_eq!(sequences(&table.inner).await, ["1", "2", "3"]);
    }

    /// A barrier is acknowledged only once every tick before it is written, also when the
    /// flush interval comes due while a barrier's batch waits for the flush before it (actix
    /// runs a due interval before a message handler's wait takes hold).
    #[actix::test]
    async fn a_barrier_is_acknowledged_only_after_every_earlier_flush_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let table = Arc::new(GatedTable {
            inner: FileTicksTable::new(dir.path().join("ticks.jsonl")).unwrap(),
            gate: Semaphore::new(0),
            held: 2.into(),
        });
        let (links, committed) = sink_links(dir.path(), SinkKind::Table);
        let shard = "shardId-000000000000";
        committed.begin(&shard.into(), 1);
        let now = std::time::Instant::now();
        links.leases.renewed(&shard.into(), 1, now);
        for sequence in 1..=3 {
            links.checkpointer.do_send(proposal(shard, sequence));
        }
        let writer = start_writer(table.clone(), links, dir.path(), Duration::from_millis(20));

        // The first flush is held; the second batch waits for it, and the third is queued
        // behind, while the flush interval comes due.
        assert!(answered_ok(writer.send(tick_batch(shard, 1, true))).await);
        let second = actix::spawn(writer.send(tick_batch(shard, 2, true)));
        let third = actix::spawn(writer.send(tick_batch(shard, 3, true)));
        assert!(still_waiting(&second).await);

        // The first flush writes; the second is held, so nothing after the first is committed.
        table.gate.add_permits(1);
        assert!(eventually(async || committed.get(&shard.into()).is_some()).await);
        assert!(still_waiting(&third).await);
        assert_eq!(
            sequences(&table.inner).await,
            ["1"],
            "the third flush waits"
        );
        assert_eq!(committed.get(&shard.into()), Some(position(1)));

        table.gate.add_permits(1);
        for batch in [second, third] {
            batch.await.unwrap().unwrap().unwrap();
        }
        assert!(eventually(async || committed.get(&shard.into()) == Some(position(3))).await);
        assert_eq!(sequences(&table.inner).await, ["1", "2", "3"]);
    }
}
