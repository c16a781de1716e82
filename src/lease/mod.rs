//! The lease port: which worker reads which shard.
//!
//! One lease per shard, in the same table (and item) as the shard's checkpoint. Every change of
//! owner increments the lease's `counter`, the fencing token: a checkpoint write must name the
//! owner and counter it was read under, so a worker that lost a lease cannot commit for it.
//! Renewals increment `heartbeat`; other workers judge a lease expired when they have seen
//! neither number move for the failover time on their own clock, so no clocks are compared.
//!
//! Implementations: DynamoDB ([`dynamodb::DynamoLeaseStore`]) and in memory
//! ([`memory::MemoryLeaseStore`], for the demo's single worker and for tests).

pub mod balance;
pub mod clock;
pub mod dynamodb;
pub mod memory;

use async_trait::async_trait;

use crate::model::ids::{ShardId, WorkerId};
use crate::stream::ShardInfo;

/// A worker's claim on a shard, as the lease store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub shard_id: ShardId,
    pub owner: Option<WorkerId>,
    /// Incremented on every change of owner: the fencing token.
    pub counter: u64,
    /// Incremented on every renewal.
    pub heartbeat: u64,
    /// The shard was read to its end and checkpointed there.
    pub shard_end: bool,
    pub parents: Vec<ShardId>,
    /// A worker asked for this lease (balancing); the owner hands it over after checkpointing.
    pub handoff_to: Option<WorkerId>,
}

impl Lease {
    /// A new, unowned lease for a shard.
    pub fn new(shard: &ShardInfo) -> Self {
        Self {
            shard_id: shard.id.clone(),
            owner: None,
            counter: 0,
            heartbeat: 0,
            shard_end: false,
            parents: shard.parents().cloned().collect(),
            handoff_to: None,
        }
    }

    pub fn is_owned_by(&self, worker: &str) -> bool {
        self.owner.as_deref() == Some(worker)
    }

    /// The fence of this lease for its current owner.
    pub fn fence(&self) -> Option<Fence> {
        self.owner.as_ref().map(|owner| Fence {
            shard_id: self.shard_id.clone(),
            owner: owner.clone(),
            counter: self.counter,
        })
    }
}

/// Who may write a shard's checkpoint: the owner and counter a lease was taken with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fence {
    pub shard_id: ShardId,
    pub owner: WorkerId,
    pub counter: u64,
}

/// What the owner does with a lease it lets go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// Leave it unowned with a hand-off marker, for any worker to take at once (shutdown).
    Free,
    /// Give it straight to the worker that asked for it (balancing).
    To(WorkerId),
    /// The shard was read to its end: nobody reads it again.
    ShardEnd,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The lease changed since it was read (another worker took it, or renewed it): the
    /// conditional write was refused.
    #[error("lease of shard {shard} changed since it was read")]
    Conflict { shard: ShardId },
    #[error("lease store request failed: {message}")]
    Request { message: String, retryable: bool },
}

impl LeaseError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            LeaseError::Request {
                retryable: true,
                ..
            }
        )
    }
}

#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Every lease (one read of the whole table).
    async fn list(&self) -> Result<Vec<Lease>, LeaseError>;

    /// Adds an unowned lease for a shard unless it has one; whether it added it.
    async fn create(&self, lease: &Lease) -> Result<bool, LeaseError>;

    /// Makes `worker` the owner, if the lease is still as it was read (owner, counter and
    /// heartbeat): for a free lease, an expired one, or one handed to `worker`.
    async fn take(&self, lease: &Lease, worker: &WorkerId) -> Result<Lease, LeaseError>;

    /// Proves the owner is alive; refused once the lease has another owner or counter.
    async fn renew(&self, fence: &Fence) -> Result<(), LeaseError>;

    /// Asks the owner of `lease` to hand it to `worker` (refused if someone asked already).
    async fn request_handoff(&self, lease: &Lease, worker: &WorkerId) -> Result<(), LeaseError>;

    /// Lets a lease go (the shard's reader has stopped and checkpointed).
    async fn release(&self, fence: &Fence, release: Release) -> Result<(), LeaseError>;
}
