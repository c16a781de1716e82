//! Where shard readers run: the lease coordinator starts each reader through the pool, which puts
//! it on the least busy worker arbiter, beside that arbiter's own table writer.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;

use super::shard_reader::{Assignment, ReaderControl, ReaderLinks, ReaderSettings, ShardReader};
use super::sink::Sinks;
use super::span;
use crate::model::ids::ShardId;

/// Starts shard readers on the worker arbiters, each on the least busy one.
pub struct ReaderPool {
    workers: Vec<ArbiterHandle>,
    /// The sinks of each worker arbiter (its own table writer, the shared others).
    sinks: Vec<Sinks>,
    settings: Arc<ReaderSettings>,
    links: ReaderLinks,
    placement: HashMap<ShardId, usize>,
}

impl ReaderPool {
    /// A pool over `workers`, whose readers on worker `i` feed `sinks[i]`.
    pub fn new(
        workers: Vec<ArbiterHandle>,
        sinks: Vec<Sinks>,
        settings: Arc<ReaderSettings>,
        links: ReaderLinks,
    ) -> Self {
        Self {
            workers,
            sinks,
            settings,
            links,
            placement: HashMap::new(),
        }
    }

    /// Starts the reader of `assignment` on the least busy worker arbiter, in its span
    /// ([`span::shard_reader`]).
    pub fn start(&mut self, assignment: Assignment) -> Arc<ReaderControl> {
        let mut load = vec![0usize; self.workers.len()];
        for worker in self.placement.values() {
            load[*worker] += 1;
        }
        let worker = (0..load.len()).min_by_key(|w| load[*w]).unwrap_or(0);
        self.placement.insert(assignment.shard.id.clone(), worker);
        self.links.health.shard_started(&assignment.shard.id);
        let control = Arc::new(ReaderControl::default());
        let links = ReaderLinks {
            sinks: self.sinks[worker].clone(),
            ..self.links.clone()
        };
        let span = span::shard_reader(&assignment.fence);
        let reader = ShardReader::new(assignment, self.settings.clone(), links, control.clone());
        span::start_in_arbiter(&self.workers[worker], span, move |_| reader);
        control
    }

    /// The shard's reader is gone (or going): its arbiter has room for another.
    pub fn stopped(&mut self, shard_id: &ShardId) {
        self.placement.remove(shard_id);
        // Not this worker's shard any more: nothing to report about it.
        self.links.health.shard_released(shard_id);
        self.links.metrics.remove_shard(shard_id);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::actors::test_support::{eventually, sink_links};
    use crate::barrier::SinkKind;
    use crate::checkpoint::file::FileCheckpointStore;
    use crate::lease::Fence;
    use crate::model::symbol_table::SymbolLimits;
    use crate::stream::local::LocalStream;
    use crate::stream::{ShardInfo, StartPosition};
    use crate::telemetry::testing::{CapturedLines, json_subscriber};

    fn assignment(shard: &str) -> Assignment {
        Assignment {
            shard: ShardInfo {
                id: shard.into(),
                parent: None,
                adjacent_parent: None,
                hash_range: None,
            },
            fence: Fence {
                shard_id: shard.into(),
                owner: "worker-1".into(),
                counter: 5,
            },
        }
    }

    fn settings() -> ReaderSettings {
        ReaderSettings {
            decode_limits: Default::default(),
            windows: Default::default(),
            rules: Default::default(),
            checkpoint_interval: Duration::from_secs(3600),
            checkpoint_max_records: 1_000,
            files: crate::config::LakeConfig::default().file_sizing(),
            mailbox: 4,
            bars: false,
            initial_position: StartPosition::TrimHorizon,
            symbols: SymbolLimits::default(),
        }
    }

    /// A reader's lines name its shard through the span the pool starts it in, whether logged
    /// while it opens the shard or while it processes a read.
    #[actix::test]
    async fn a_readers_lines_carry_its_shard_id_and_generation() {
        let captured = CapturedLines::default();
        let _default = tracing::subscriber::set_default(json_subscriber(&captured));
        let dir = tempfile::tempdir().unwrap();
        let stream = LocalStream::new(1, 16);
        stream.put("AAPL", Bytes::from_static(b"not json")).await;
        let (sink_links, committed) = sink_links(dir.path(), SinkKind::Lake);
        let links = ReaderLinks {
            source: stream,
            checkpoints: Arc::new(FileCheckpointStore::new(dir.path().join("checkpoints"))),
            sinks: Sinks(Vec::new()),
            checkpointer: sink_links.checkpointer,
            committed,
            open_files: Arc::default(),
            metrics: Arc::default(),
            health: sink_links.health,
            fatal: sink_links.fatal,
        };
        // The readers run on this test's thread, which its log subscriber covers.
        let workers = vec![Arbiter::current()];
        let mut pool = ReaderPool::new(
            workers,
            vec![Sinks(Vec::new())],
            Arc::new(settings()),
            links,
        );
        pool.start(assignment("shardId-000000000000"));
        pool.start(assignment("shardId-000000000042"));

        const REJECTED: &str = "Records rejected and dead-lettered.";
        const NOT_OPENED: &str = "Opening the shard failed; trying again after a pause.";
        let logged = |message: &str| {
            let mut lines = captured.json().into_iter();
            lines.find(|line| line["fields"]["message"] == message)
        };
        assert!(
            eventually(async || logged(REJECTED).is_some() && logged(NOT_OPENED).is_some()).await,
            "{}",
            captured.text()
        );
        let rejected = logged(REJECTED).unwrap();
        assert_eq!(rejected["fields"]["shard_id"], "shardId-000000000000");
        assert_eq!(rejected["fields"]["generation"], 5);
        assert_eq!(rejected["spans"][0]["name"], "shard_reader");
        let not_opened = logged(NOT_OPENED).unwrap();
        assert_eq!(not_opened["level"], "ERROR");
        assert_eq!(not_opened["fields"]["shard_id"], "shardId-000000000042");
    }
}
