//! kinetick: an actor-based stream processor for market ticks.
//!
//! Map of the crate:
//! - [`model`]: pure logic (ticks, decoding, windows, rules, lake and table formats).
//! - [`actors`]: the pipeline stages (lease coordinator, shard reader, symbol aggregator, sinks,
//!   checkpointer, metrics publisher).
//! - [`barrier`]: the checkpoint barrier protocol, from a reader's proposal to the commit, its
//!   messages and state in one place.
//! - Ports, each a trait with a local and an AWS implementation side by side: [`stream`] (shards
//!   and records), [`lease`] (who reads which shard: leases, the balancing rule, the hand-off),
//!   [`checkpoint`] (positions and window snapshots), [`table`] (ticks table), [`objects`] (lake
//!   files and dead letters), [`alerts`] (alert sink), [`metrics`] (counters and the publisher's
//!   sink). [`ports`] assembles the local set and the AWS set beside each other; [`aws`] holds
//!   what the AWS implementations share (SDK configuration, error judgement), [`retry`] their
//!   retry policy, and `local_files` what the local ones share (atomic writes, line logs).
//! - Wiring and running: [`pipeline`] starts every stage connected to a set of ports;
//!   [`shutdown`] runs it to its end (signals, flush, checkpoint, close) for both commands.
//! - The front door: [`cli`] (commands and options), [`config`] (settings from defaults, file and
//!   `KINETICK_...` variables), [`telemetry`] (logs), [`health`] (the container's health
//!   endpoint), and one module per command: [`demo`] (the whole pipeline on local ports),
//!   [`run`] (on AWS), [`producer`] (`produce` and `replay` into a Kinesis stream or a Kafka
//!   topic, and the market simulator the demo uses), [`report`] (an HTML report of the lake:
//!   charts, the day at a glance, the seed queries' answers; uploaded to S3 and its digest
//!   published to SNS by the stack's daily schedule), [`compact`] (merges a date's small lake
//!   files into few large ones, only the rows the checkpoints have committed).

pub mod actors;
pub mod alerts;
pub mod aws;
pub mod barrier;
pub mod checkpoint;
pub mod cli;
pub mod compact;
pub mod config;
pub mod demo;
pub mod failure;
pub mod health;
pub mod lease;
mod local_files;
pub mod metrics;
pub mod model;
pub mod objects;
pub mod pipeline;
pub mod ports;
pub mod producer;
pub mod report;
pub mod retry;
pub mod run;
pub mod shutdown;
pub mod stream;
pub mod table;
pub mod telemetry;
