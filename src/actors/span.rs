//! Each actor's `tracing` span, and starting an actor inside it.
//!
//! actix calls an actor's `started`, handlers, timers and context futures from the actor's own
//! task, outside any span of whoever sent the message. [`start`], [`start_in_arbiter`] and
//! [`run`] poll that whole task inside the actor's span, so every line the actor logs carries
//! the span's fields (a reader's `shard_id`) without naming them. A future that leaves the task
//! (`tokio::spawn`, `actix::spawn`, a `ResponseFuture`) takes its span along with
//! `.in_current_span()` where it is made.
//!
//! Spans:
//! - `shard_reader{shard_id, generation}`, with a child `symbol_aggregator{symbol}` per symbol;
//! - `lease_coordinator{worker_id}`, `checkpointer`, `metrics_publisher`;
//! - `sink{sink}` per sink actor; an actor that serves many shards (the checkpointer, the object
//!   sinks) enters a child `shard{shard_id, generation}` for the work of one shard.
//!
//! Spans are at ERROR level: a filter that lets any line through keeps them too, so a WARN line
//! of a reader carries its shard id under `RUST_LOG=warn`.

use actix::dev::channel;
use actix::prelude::*;
use tracing::{Instrument, Span};

use crate::barrier::SinkKind;
use crate::lease::Fence;
use crate::model::ids::{ShardId, WorkerId};
use crate::model::tick::Symbol;

/// The reader of the shard under `fence`: the shard and the lease counter it reads under.
pub fn shard_reader(fence: &Fence) -> Span {
    tracing::error_span!(
        parent: None,
        "shard_reader",
        shard_id = %fence.shard_id,
        generation = fence.counter
    )
}

/// A symbol's aggregator, inside the current span (its reader's).
pub fn symbol_aggregator(symbol: &Symbol) -> Span {
    tracing::error_span!("symbol_aggregator", symbol = %symbol)
}

/// The work of one shard in an actor that serves many, inside the current span (the actor's).
pub fn shard(shard_id: &ShardId, generation: u64) -> Span {
    tracing::error_span!("shard", shard_id = %shard_id, generation)
}

/// A sink actor; its name as in health reasons.
pub fn sink(kind: SinkKind) -> Span {
    tracing::error_span!(parent: None, "sink", sink = kind.name())
}

/// The lease coordinator of this worker.
pub fn lease_coordinator(worker_id: &WorkerId) -> Span {
    tracing::error_span!(parent: None, "lease_coordinator", worker_id = %worker_id)
}

/// The checkpointer; see [`shard`] for its work on one shard.
pub fn checkpointer() -> Span {
    tracing::error_span!(parent: None, "checkpointer")
}

/// The metrics publisher.
pub fn metrics_publisher() -> Span {
    tracing::error_span!(parent: None, "metrics_publisher")
}

/// Starts `actor` on the current arbiter, all of its work inside `span`.
pub fn start<A>(actor: A, span: Span) -> Addr<A>
where
    A: Actor<Context = Context<A>>,
{
    run(Context::new(), actor, span)
}

/// Runs `actor` in `context` (made beforehand for its address) on the current arbiter, all of
/// its work inside `span`.
pub fn run<A>(context: Context<A>, actor: A, span: Span) -> Addr<A>
where
    A: Actor<Context = Context<A>>,
{
    let task = context.into_future(actor);
    let address = task.address();
    actix::spawn(task.instrument(span));
    address
}

/// Starts the actor that `make` builds on `arbiter`, all of its work inside `span`.
pub fn start_in_arbiter<A, F>(arbiter: &ArbiterHandle, span: Span, make: F) -> Addr<A>
where
    A: Actor<Context = Context<A>>,
    F: FnOnce(&mut Context<A>) -> A + Send + 'static,
{
    // As `Actor::start_in_arbiter`: the address exists before the actor, on the caller's thread.
    let (sender, receiver) = channel::channel(DEFAULT_MAILBOX_CAPACITY);
    arbiter.spawn_fn(move || {
        let mut context = Context::with_receiver(receiver);
        let actor = make(&mut context);
        actix::spawn(context.into_future(actor).instrument(span));
    });
    Addr::new(sender)
}

/// actix's default mailbox capacity; an actor sets its own in `started`.
const DEFAULT_MAILBOX_CAPACITY: usize = 16;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::actors::test_support::eventually;
    use crate::telemetry::testing::{CapturedLines, json_subscriber};

    /// Logs from every place actix runs an actor's code.
    struct Chatty;

    #[derive(Message)]
    #[rtype(result = "()")]
    struct Speak;

    impl Actor for Chatty {
        type Context = Context<Self>;

        fn started(&mut self, ctx: &mut Context<Self>) {
            tracing::info!("Started.");
            ctx.run_later(Duration::from_millis(1), |_, _| {
                tracing::info!("Timer fired.");
            });
        }
    }

    impl Handler<Speak> for Chatty {
        type Result = ResponseActFuture<Self, ()>;

        fn handle(&mut self, _: Speak, _: &mut Context<Self>) -> Self::Result {
            tracing::info!("Handled.");
            let work = async { tracing::info!("Awaited.") };
            Box::pin(work.into_actor(self).map(|(), _, _| {
                tracing::info!("Mapped.");
            }))
        }
    }

    #[actix::test]
    async fn every_line_of_an_actor_carries_its_span_fields() {
        let captured = CapturedLines::default();
        let _default = tracing::subscriber::set_default(json_subscriber(&captured));
        let fence = Fence {
            shard_id: "shardId-000000000007".into(),
            owner: "worker-1".into(),
            counter: 3,
        };
        let actor = start(Chatty, shard_reader(&fence));
        actor.send(Speak).await.unwrap();
        assert!(eventually(async || captured.json().len() == 5).await);

        let lines = captured.json();
        let mut messages: Vec<_> = lines
            .iter()
            .map(|l| l["fields"]["message"].as_str().unwrap())
            .collect();
        messages.sort_unstable();
        assert_eq!(
            messages,
            [
                "Awaited.",
                "Handled.",
                "Mapped.",
                "Started.",
                "Timer fired."
            ],
            "{lines:?}"
        );
        for line in &lines {
            assert_eq!(line["fields"]["shard_id"], "shardId-000000000007", "{line}");
            assert_eq!(line["fields"]["generation"], 3, "{line}");
        }
    }
}
