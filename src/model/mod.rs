//! Pure logic: no I/O, no async. The names of shards and workers, ticks and their decoding,
//! rolling windows, alert rules, symbol state snapshots and their bit-exact floats, which symbols
//! a shard keeps, the lake and table formats, and the calendar arithmetic they share.

pub mod bar;
pub(crate) mod calendar;
pub mod dead_letter;
pub mod decode;
pub mod digest;
pub mod enriched;
pub(crate) mod exact_float;
pub mod ids;
pub mod item;
pub mod kpl;
pub mod lake;
pub mod rules;
pub mod state;
pub mod symbol_table;
pub mod tick;
pub mod window;
