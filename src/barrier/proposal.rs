//! Step 1 of a barrier: a reader says where it resumed, proposes checkpoint candidates, or says
//! it has none.

use std::collections::BTreeMap;

use actix::prelude::*;

use super::sinks::SinkKind;
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

/// A reader starts on a shard: the checkpoint it resumes from, and how far past it the sinks
/// that write no files are durable (their mark), so that what it gives them no more is counted.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Resumed {
    /// The lease the reader holds; its counter is the reader's generation.
    pub fence: Fence,
    pub checkpoint: Option<Position>,
    pub sinks_durable: BTreeMap<SinkKind, Position>,
}
