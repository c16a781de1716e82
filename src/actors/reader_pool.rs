//! Where shard readers run: the lease coordinator starts each reader through the pool, which puts
//! it on the least busy worker arbiter, beside that arbiter's own table writer.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;

use super::shard_reader::{Assignment, ReaderControl, ReaderLinks, ReaderSettings, ShardReader};
use super::sink::Sinks;
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
        let reader = ShardReader::new(assignment, self.settings.clone(), links, control.clone());
        ShardReader::start_in_arbiter(&self.workers[worker], move |_| reader);
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
