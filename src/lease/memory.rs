//! Leases in memory: the demo's single worker, and tests of the coordinator.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Fence, Lease, LeaseError, LeaseStore, Release};
use crate::model::ids::ShardId;
use crate::model::ids::WorkerId;

#[derive(Debug, Default)]
pub struct MemoryLeaseStore {
    leases: Mutex<BTreeMap<ShardId, Lease>>,
}

impl MemoryLeaseStore {
    fn update<T>(
        &self,
        shard: &ShardId,
        change: impl FnOnce(&mut Lease) -> Option<T>,
    ) -> Result<T, LeaseError> {
        let mut leases = self.leases.lock().expect("lease store lock");
        leases
            .get_mut(shard)
            .and_then(change)
            .ok_or_else(|| LeaseError::Conflict {
                shard: shard.clone(),
            })
    }
}

fn holds(lease: &Lease, fence: &Fence) -> bool {
    lease.owner.as_ref() == Some(&fence.owner) && lease.counter == fence.counter
}

#[async_trait]
impl LeaseStore for MemoryLeaseStore {
    async fn list(&self) -> Result<Vec<Lease>, LeaseError> {
        Ok(self
            .leases
            .lock()
            .expect("lease store lock")
            .values()
            .cloned()
            .collect())
    }

    async fn create(&self, lease: &Lease) -> Result<bool, LeaseError> {
        let mut leases = self.leases.lock().expect("lease store lock");
        let absent = !leases.contains_key(&lease.shard_id);
        if absent {
            leases.insert(lease.shard_id.clone(), lease.clone());
        }
        Ok(absent)
    }

    async fn take(&self, read: &Lease, worker: &WorkerId) -> Result<Lease, LeaseError> {
        self.update(&read.shard_id, |lease| {
            let unchanged = lease.owner == read.owner
                && lease.counter == read.counter
                && lease.heartbeat == read.heartbeat;
            unchanged.then(|| {
                lease.owner = Some(worker.clone());
                lease.counter += 1;
                lease.heartbeat = 0;
                lease.handoff_to = None;
                lease.clone()
            })
        })
    }

    async fn renew(&self, fence: &Fence) -> Result<(), LeaseError> {
        self.update(&fence.shard_id, |lease| {
            holds(lease, fence).then(|| lease.heartbeat += 1)
        })
    }

    async fn request_handoff(&self, read: &Lease, worker: &WorkerId) -> Result<(), LeaseError> {
        self.update(&read.shard_id, |lease| {
            let askable = lease.owner == read.owner
                && lease.counter == read.counter
                && lease.handoff_to.is_none();
            askable.then(|| lease.handoff_to = Some(worker.clone()))
        })
    }

    async fn release(&self, fence: &Fence, release: Release) -> Result<(), LeaseError> {
        self.update(&fence.shard_id, |lease| {
            holds(lease, fence).then(|| {
                lease.counter += 1;
                lease.heartbeat = 0;
                lease.handoff_to = None;
                lease.owner = match release {
                    Release::To(worker) => Some(worker),
                    Release::Free => None,
                    Release::ShardEnd => {
                        lease.shard_end = true;
                        None
                    }
                };
            })
        })
    }
}
