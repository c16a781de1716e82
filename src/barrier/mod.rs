//! The checkpoint barrier: how a position of a shard becomes a checkpoint, from proposal to
//! commit. Its messages and its state live here; each actor's file does only its part.
//!
//! ```text
//! ShardReader ──1 Propose(position, snapshot)──────────────────────────> Checkpointer
//!     │ (snapshot: TakeSnapshot from each SymbolAggregator)                  ▲   │
//!     └──2 ShardBatch(barrier = position)──> each sink ──3 Durable──────────┘   │
//!                                                                 4 decide, 5 commit
//!                   object sinks <──── CommittedPositions board <──────────────┤
//!                   LeaseCoordinator <──────────────── 6 ShardStopped ─────────┘
//! ```
//!
//! 1. The reader decides a barrier is due (`checkpoint.interval`, `checkpoint.max-records`, the
//!    shard's end, or a stop), asks each of its symbol aggregators for its window state, and
//!    sends the checkpointer a [`Propose`]: the position and the shard's snapshot there
//!    (`actors/shard_reader/`, `actors/symbol_aggregator.rs`; messages in [`proposal`]). A
//!    reader that stops having read nothing sends [`FinishedEmpty`] instead.
//! 2. The same read goes to every sink as a [`ShardBatch`] whose `barrier` is that position
//!    ([`sinks`]; the fan-out is `actors/sink.rs`).
//! 3. The sinks that write files first reserve where the shard's next files end, fenced by the
//!    lease ([`files`]), so that whichever owner writes them they hold the same rows. Each sink
//!    answers [`Durable`] once everything of the shard up to the barrier is durable in
//!    it (a barrier without rows too: never over a write given up before it): the table writer after its flush, the alerter after publishing, the lake and
//!    dead-letter writers after their files (`actors/dynamo_writer.rs`, `actors/alerter.rs`,
//!    `actors/object_batcher.rs`).
//! 4. The checkpointer takes the newest candidate every sink has made durable: a pure decision
//!    ([`progress`]), carried out in `actors/checkpointer.rs`.
//! 5. It writes the checkpoint, fenced by the reader's lease (and only while the worker's lease
//!    clock trusts the lease: a sink skips writes after that), and publishes the position on the
//!    [`CommittedPositions`] board ([`committed`]); a shard's next lake files wait for it there.
//! 6. After the reader's last candidate (or when the store refuses the write because the lease
//!    moved on) it sends [`ShardStopped`] to the lease coordinator ([`stop`];
//!    `actors/lease_coordinator/`), which then releases or forgets the lease.
//!
//! Every message carries the reader's generation (its lease counter): what an older reader of
//! the shard sends after a newer one started is dropped at each step.

pub mod committed;
pub mod files;
pub mod progress;
pub mod proposal;
pub mod sinks;
pub mod stop;

pub use committed::CommittedPositions;
pub use files::FileEnds;
pub use proposal::{FinishedEmpty, Propose};
pub use sinks::{Durable, ShardBatch, SinkError, SinkKind};
pub use stop::{ShardStopped, StopOutcome};
