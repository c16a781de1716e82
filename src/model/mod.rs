//! Pure logic: no I/O, no async. Ticks and their decoding, rolling windows, alert rules, symbol
//! state snapshots, the lake and table formats, and the market simulator.

pub mod bar;
pub mod dead_letter;
pub mod decode;
pub mod enriched;
pub mod item;
pub mod kpl;
pub mod lake;
pub mod rules;
pub mod simulator;
pub mod state;
pub mod tick;
pub mod window;
