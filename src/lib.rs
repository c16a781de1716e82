//! kinetick: an actor-based stream processor for market ticks.
//!
//! Map of the crate:
//! - [`model`]: pure logic (ticks, decoding, windows, rules, lake and table formats, simulator).
//! - [`actors`]: the pipeline stages (shard reader, symbol aggregator, sinks, checkpointer).
//! - Ports, each a trait with a local and an AWS implementation side by side:
//!   [`stream`] (shards and records), [`checkpoint`] (positions and window snapshots),
//!   [`table`] (ticks table), [`objects`] (lake files and dead letters), [`alerts`] (alert sink),
//!   [`metrics`] (counters and the publisher's sink).

pub mod actors;
pub mod alerts;
pub mod aws;
pub mod barrier;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod demo;
pub mod health;
pub mod lease;
pub mod metrics;
pub mod model;
pub mod objects;
pub mod pipeline;
pub mod producer;
pub mod retry;
pub mod run;
pub mod stream;
pub mod table;
pub mod telemetry;
