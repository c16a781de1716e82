//! Why a shard reader cannot go on: each failure keeps its cause (a port's typed error, a stage
//! that went away, a task that failed) and names the shard, for the log line and the fatal
//! error the process exits with.

use actix::MailboxError;

use crate::barrier::SinkError;
use crate::checkpoint::CheckpointError;
use crate::model::ids::ShardId;
use crate::stream::StreamError;

#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    /// Reading the shard's checkpoint, its marks or its parents' state failed after retries.
    #[error("checkpoint of shard {shard}: {source}")]
    Checkpoint {
        shard: ShardId,
        #[source]
        source: CheckpointError,
    },
    /// Opening the shard's cursor failed.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// A stage the reader hands its work to is gone: a bug, or the process stopping.
    #[error("{stage} of shard {shard} is gone: {source}")]
    StageGone {
        stage: &'static str,
        shard: ShardId,
        #[source]
        source: MailboxError,
    },
    /// A symbol aggregator answered with fewer or more ticks than it was sent: a bug.
    #[error("a symbol aggregator of shard {shard} returned {returned} of {sent} ticks")]
    TicksMiscounted {
        shard: ShardId,
        sent: usize,
        returned: usize,
    },
    /// A sink gave up on a write after its retries.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The task handing a batch to the sinks failed.
    #[error("hand-off to the sinks of shard {shard} failed: {source}")]
    HandOff {
        shard: ShardId,
        #[source]
        source: tokio::task::JoinError,
    },
}

impl ReaderError {
    pub fn checkpoint(shard: &ShardId) -> impl FnOnce(CheckpointError) -> Self + '_ {
        move |source| ReaderError::Checkpoint {
            shard: shard.clone(),
            source,
        }
    }

    pub fn gone<'a>(
        stage: &'static str,
        shard: &'a ShardId,
    ) -> impl FnOnce(MailboxError) -> Self + 'a {
        move |source| ReaderError::StageGone {
            stage,
            shard: shard.clone(),
            source,
        }
    }
}
