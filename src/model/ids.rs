//! The names of what kinetick reads and who reads it, beside the identifiers of ticks
//! ([`super::tick`]: symbols and stream positions).

use std::sync::Arc;

/// A shard as the stream names it: `shardId-000000000000` on Kinesis, `<topic>-<partition>` on
/// Kafka.
pub type ShardId = Arc<str>;

/// A worker (an ECS task) in the lease table.
pub type WorkerId = Arc<str>;
