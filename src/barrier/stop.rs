//! Step 6 of a barrier, the last one of a reader: the checkpointer tells the lease coordinator
//! that the reader's work is checkpointed (or can no longer be), so its lease can be let go.

use actix::prelude::*;

use crate::model::ids::ShardId;

/// A shard's reader is done here: its last checkpoint is written, or was refused.
#[derive(Debug, Clone, PartialEq, Message)]
#[rtype(result = "()")]
pub struct ShardStopped {
    pub shard_id: ShardId,
    pub generation: u64,
    pub outcome: StopOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StopOutcome {
    /// Everything read is checkpointed; `shard_end` if the shard was read to its end.
    Checkpointed { shard_end: bool },
    /// The checkpoint store refused the write: another worker holds the lease now.
    LeaseLost,
}
