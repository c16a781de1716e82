//! The pipeline stages as actix actors, one file each with its messages:
//!
//! ```text
//! ShardReader -> SymbolAggregator (one per symbol of the shard)
//!             -> sinks: DynamoWriter, ParquetBatcher, Alerter, DeadLetterWriter
//!             -> Checkpointer <- Durable acknowledgements from the sinks
//! LeaseCoordinator -> ReaderPool (starts and places readers)
//! MetricsPublisher (periodic)
//! ```
//!
//! The checkpoint barrier that ties them together is told whole in [`crate::barrier`].
//!
//! Actors are thin: they hold state, call [`crate::model`], and talk to the ports. Each runs
//! inside its `tracing` span ([`span`]), so its log lines carry its shard id and such.

pub mod alerter;
pub mod checkpointer;
pub mod dead_letter_writer;
pub mod dynamo_writer;
pub mod fatal;
pub mod lease_coordinator;
pub mod metrics_publisher;
pub mod object_batcher;
pub mod parquet_batcher;
pub mod reader_pool;
pub mod refused;
pub mod shard_reader;
pub mod sink;
pub mod span;
pub mod symbol_aggregator;
#[cfg(test)]
mod test_support;
