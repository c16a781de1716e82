//! Step 1 of a barrier: a reader proposes a checkpoint candidate, or says it has none.

use actix::prelude::*;

use crate::checkpoint::ShardSnapshot;
use crate::lease::Fence;
use crate::model::ids::ShardId;
use crate::model::tick::Position;

/// A checkpoint candidate from a reader.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Propose {
    pub shard_id: ShardId,
    /// The lease the reader holds; its counter is the reader's generation.
    pub fence: Fence,
    pub position: Position,
    pub snapshot: ShardSnapshot,
    /// The reader will send nothing more for this shard (end of shard, or shutting down).
    pub last: bool,
    /// The shard was read to its end (a closed parent shard).
    pub shard_end: bool,
    /// Records read since the previous candidate (of every candidate it stands for, once the
    /// checkpointer takes several at once).
    pub records: u64,
    /// Stream arrival time of the newest record before the candidate, epoch ms.
    pub newest_arrival_ms: i64,
}

/// A reader that finishes without any record to checkpoint.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct FinishedEmpty {
    pub shard_id: ShardId,
    pub generation: u64,
    pub shard_end: bool,
}
