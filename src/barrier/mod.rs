//! The checkpoint barrier: how a position of a shard becomes a checkpoint, from proposal to
//! commit. Its messages and its state live here; each actor's file does only its part.
//!
//! ```text
//! ShardReader ──1 Resumed, Propose(position, snapshot)─────────────────> Checkpointer
//!     │ (snapshot: TakeSnapshot from each SymbolAggregator)                  ▲   │
//!     └──2 ShardBatch(barrier = position)──> each sink ──3 Durable──────────┘   │
//!                                                                 4 decide, 5 commit
//!                   object sinks <──── CommittedPositions board <──────────────┤
//!                   LeaseCoordinator <──────────────── 6 ShardStopped ─────────┘
//! ```
//!
//! 1. The reader decides a barrier is due (`checkpoint.interval`, `checkpoint.max-records`, the
//!    shard's end, or a stop), and whether the files close there (the open files reached
//!    `lake.target-file-size` on the [`OpenFileSizes`] board, or `lake.max-file-age`; always at
//!    its last barrier and at an end an earlier owner reserved). Only a barrier where files close
//!    is a checkpoint candidate: the reader asks each of its symbol aggregators for its window
//!    state and sends the checkpointer a [`Propose`], the position and the shard's snapshot
//!    there (`actors/shard_reader/`, `actors/symbol_aggregator.rs`; messages in [`proposal`]). A
//!    reader that stops having read nothing sends [`FinishedEmpty`] instead; a reader that starts
//!    sends [`Resumed`] first.
//! 2. The same read goes to every sink as a [`ShardBatch`] whose `barrier` is that position, and
//!    `closes_files` says whether files close there ([`sinks`]; the fan-out is
//!    `actors/sink.rs`), but not to a sink that has the read durable already (a resumed reader's
//!    replay).
//! 3. The table writer and the alerter answer [`Durable`] at every barrier, once everything of
//!    the shard up to it is durable in them (a barrier without rows too: never over a write
//!    given up before it). The sinks that write files append each barrier's rows to the open
//!    files and upload them in parts as they grow; at a barrier that closes files they reserve
//!    where the files end, fenced by the lease ([`files`]), so that whichever owner writes them
//!    they hold the same rows, complete them and answer [`Durable`] (`actors/dynamo_writer.rs`,
//!    `actors/alerter.rs`, `actors/object_batcher/`). Every sink writes apart from its actor,
//!    each write only after the one before it, whoever started it
//!    (`BackgroundWrite::spawn_after`, `actors/sink.rs`).
//! 4. The checkpointer takes the newest candidate every sink has made durable; between two
//!    checkpoints, how far the sinks that write no files are durable past it (a pure decision,
//!    [`progress`], carried out in `actors/checkpointer.rs`).
//! 5. It writes the checkpoint, fenced by the reader's lease (and only while the worker's lease
//!    clock trusts the lease: a sink skips writes after that), and publishes the position on the
//!    [`CommittedPositions`] board ([`committed`]); a shard's next files wait for it there. Or it
//!    writes the sinks' durable mark, so that a reader resuming from the checkpoint gives those
//!    sinks nothing they had: the table and the alerts keep their latency while files grow.
//! 6. After the reader's last candidate (or when the store refuses the write because the lease
//!    moved on) it sends [`ShardStopped`] to the lease coordinator ([`stop`];
//!    `actors/lease_coordinator/`), which then releases or forgets the lease.
//!
//! Every message carries the reader's generation (its lease counter): what an older reader of
//! the shard sends after a newer one started is dropped at each step.

pub mod committed;
pub mod files;
pub mod open_files;
pub mod progress;
pub mod proposal;
pub mod sinks;
pub mod stop;

pub use committed::CommittedPositions;
pub use files::FileEnds;
pub use open_files::{FileSizing, OpenFileSizes};
pub use proposal::{FinishedEmpty, Propose, Resumed};
pub use sinks::{Durable, ShardBatch, SinkError, SinkKind};
pub use stop::{ShardStopped, StopOutcome};
