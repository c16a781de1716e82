//! Wiring: starts every stage of the pipeline on its arbiter, connected to a set of [`Ports`],
//! and tells when this worker is done (every shard finished, or shut down and its leases
//! released) or something fatal happened.
//!
//! The lease coordinator decides which shards this worker reads and starts their readers through
//! a [`ReaderPool`]. Threads: shard readers and their symbol aggregators are spread over
//! `pipeline.workers` arbiters (one per core by default); each of those has a table writer on an
//! arbiter of its own; the lake and dead-letter writers share one; the coordinator,
//! checkpointer, alerter and metrics publisher run on the caller's. Each actor runs in its
//! `tracing` span ([`crate::actors::span`]).

use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::watch;

use crate::actors::alerter::Alerter;
use crate::actors::checkpointer::{Checkpointer, CheckpointerLinks};
use crate::actors::dead_letter_writer::{DeadLetterLayout, DeadLetterWriter};
use crate::actors::dynamo_writer::DynamoWriter;
use crate::actors::fatal::Fatal;
use crate::actors::lease_coordinator::{LeaseCoordinator, Shutdown};
use crate::actors::metrics_publisher::{MetricsPublisher, PublishNow};
use crate::actors::object_batcher::FileBoards;
use crate::actors::parquet_batcher::{ParquetBatcher, ParquetLayout};
use crate::actors::reader_pool::ReaderPool;
use crate::actors::refused::RefusedItems;
use crate::actors::shard_reader::{ReaderLinks, ReaderSettings};
use crate::actors::sink::{SinkLinks, Sinks};
use crate::actors::span;
use crate::barrier::{CommittedPositions, FileEnds, OpenFileSizes, SinkKind};
use crate::config::Config;
use crate::health::Health;
use crate::lease::clock::LeaseClock;
use crate::metrics::Metrics;
use crate::model::ids::WorkerId;
use crate::stream::StartPosition;

// The local and AWS sets are assembled side by side in `crate::ports`; the stages connect here.
pub use crate::ports::Ports;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{0}")]
    Fatal(String),
}

pub struct Pipeline {
    coordinator: Addr<LeaseCoordinator>,
    done: watch::Receiver<bool>,
    fatal: watch::Receiver<Option<String>>,
    publisher: Addr<MetricsPublisher>,
    arbiters: Vec<Arbiter>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

impl Pipeline {
    /// Starts every stage, counting into `metrics` (shared with ports that count too). Must run
    /// inside an actix `System`.
    ///
    /// One page of wiring, kept whole: each stage is started once the links it needs exist, in
    /// that order, and splitting it would only pass those links around between functions.
    pub async fn start(
        config: &Config,
        ports: Ports,
        initial_position: StartPosition,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (fatal, fatal_receiver) = Fatal::new();
        let health = Arc::new(Health::new(config.health.unhealthy_after));
        let committed = Arc::new(CommittedPositions::default());
        let (done_sender, done) = watch::channel(false);
        let mailbox = config.pipeline.mailbox.max(1);
        // The coordinator and the checkpointer talk both ways: make the coordinator's address
        // first, start it once the readers' links exist.
        let coordinator_context = Context::<LeaseCoordinator>::new();
        let coordinator = coordinator_context.address();

        // Trusted until a poll before the failover time: a margin for the other workers' polls.
        let lease = &config.lease;
        let clock = Arc::new(LeaseClock::new(
            lease.failover_time.saturating_sub(lease.poll_interval),
        ));
        let checkpointer = Checkpointer::new(
            ports.checkpoints.clone(),
            SinkKind::ALL.to_vec(),
            CheckpointerLinks {
                committed: committed.clone(),
                leases: clock.clone(),
                stopped: coordinator.clone().recipient(),
                metrics: metrics.clone(),
                health: health.clone(),
                fatal: fatal.clone(),
            },
        );
        let checkpointer = span::start(checkpointer, span::checkpointer());
        let links = SinkLinks {
            checkpointer: checkpointer.clone(),
            leases: clock.clone(),
            metrics: metrics.clone(),
            health: health.clone(),
            fatal: fatal.clone(),
            mailbox,
        };

        let workers: Vec<Arbiter> = (0..config.pipeline.worker_count())
            .map(|_| Arbiter::new())
            .collect();
        let boards = FileBoards {
            committed: committed.clone(),
            file_ends: Arc::new(FileEnds::new(ports.checkpoints.clone())),
            sizes: Arc::new(OpenFileSizes::default()),
        };
        let sinks = SinkActors::start(config, &ports, &links, &boards, workers.len());
        let sinks_of_worker = |worker: usize| sinks.of_worker(worker);
        let publisher = MetricsPublisher::new(
            metrics.clone(),
            ports.metrics.clone(),
            config.metrics.interval,
        );
        let publisher = span::start(publisher, span::metrics_publisher());

        let settings = Arc::new(reader_settings(config, initial_position, mailbox));
        let reader_links = ReaderLinks {
            source: ports.stream.clone(),
            checkpoints: ports.checkpoints.clone(),
            sinks: sinks_of_worker(0),
            checkpointer,
            committed: committed.clone(),
            open_files: boards.sizes.clone(),
            metrics: metrics.clone(),
            health: health.clone(),
            fatal: fatal.clone(),
        };
        let pool = ReaderPool::new(
            workers.iter().map(Arbiter::handle).collect(),
            (0..workers.len()).map(sinks_of_worker).collect(),
            settings,
            reader_links,
        );
        let me = worker_id(lease);
        let coordinator_span = span::lease_coordinator(&me);
        let coordinator_actor = LeaseCoordinator::new(
            me,
            config.lease.clone(),
            ports.leases.clone(),
            ports.stream.clone(),
            pool,
            committed,
            clock,
            metrics.clone(),
            health.clone(),
            done_sender,
        );
        span::run(coordinator_context, coordinator_actor, coordinator_span);
        tracing::info!(workers = workers.len(), "Pipeline started.");

        let mut arbiters = workers;
        arbiters.extend(sinks.arbiters);
        Self {
            coordinator,
            done,
            fatal: fatal_receiver,
            publisher,
            arbiters,
            metrics,
            health,
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// What the stages report about their health (for the health endpoint).
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// The first fatal error, once there is one (for the health endpoint).
    pub fn failures(&self) -> watch::Receiver<Option<String>> {
        self.fatal.clone()
    }

    /// Asks every reader to stop reading and checkpoint what it has read, and the coordinator
    /// to release every lease for another worker to take at once.
    pub fn request_stop(&self) {
        self.coordinator.do_send(Shutdown);
    }

    /// Waits until this worker is done: every shard of the stream finished, or stopped,
    /// checkpointed and released after [`Self::request_stop`].
    pub async fn wait(&mut self) -> Result<(), PipelineError> {
        let failed = tokio::select! {
            result = self.done.wait_for(|done| *done) => {
                drop(result);
                None
            }
            result = self.fatal.wait_for(Option::is_some) => result.ok().and_then(|message| message.clone()),
        };
        match failed {
            None => Ok(()),
            Some(message) => Err(PipelineError::Fatal(message)),
        }
    }

    /// Publishes the last metrics and stops the pipeline's threads.
    pub async fn close(self) {
        let _ = self.publisher.send(PublishNow).await;
        Self::stop_threads(self.arbiters);
    }

    /// Stops every thread at once, without flushing or checkpointing: what a crash does (tests of
    /// the delivery guarantee use it).
    pub fn abort(self) {
        Self::stop_threads(self.arbiters);
    }

    fn stop_threads(arbiters: Vec<Arbiter>) {
        for arbiter in &arbiters {
            arbiter.stop();
        }
        for arbiter in arbiters {
            let _ = arbiter.join();
        }
    }
}

/// The sink actors and the threads they run on.
struct SinkActors {
    /// One table writer per worker arbiter: building and writing an item per tick is the
    /// heaviest sink work, so one writer for all shards would be the bottleneck.
    tables: Vec<Addr<DynamoWriter>>,
    lake: Addr<ParquetBatcher>,
    dead_letters: Addr<DeadLetterWriter>,
    alerter: Addr<Alerter>,
    /// Each table writer's, then the one the lake and dead-letter writers share.
    arbiters: Vec<Arbiter>,
}

impl SinkActors {
    fn start(
        config: &Config,
        ports: &Ports,
        links: &SinkLinks,
        boards: &FileBoards,
        workers: usize,
    ) -> Self {
        let mut arbiters: Vec<Arbiter> = (0..workers).map(|_| Arbiter::new()).collect();
        let lake_prefix = &config.lake.prefix;
        let tables = arbiters
            .iter()
            .map(|arbiter| {
                let (links, port, config) =
                    (links.clone(), ports.table.clone(), config.table.clone());
                let refused = RefusedItems {
                    objects: ports.objects.clone(),
                    prefix: lake_prefix.clone(),
                };
                let sink_span = span::sink(SinkKind::Table);
                span::start_in_arbiter(&arbiter.handle(), sink_span, move |_| {
                    DynamoWriter::new(port, refused, links, &config)
                })
            })
            .collect();
        let lake_arbiter = Arbiter::new();
        let lake = {
            let layout = ParquetLayout {
                prefix: config.lake.prefix.clone(),
            };
            let (links, objects, boards) = (links.clone(), ports.objects.clone(), boards.clone());
            let sink_span = span::sink(SinkKind::Lake);
            span::start_in_arbiter(&lake_arbiter.handle(), sink_span, move |_| {
                ParquetBatcher::new(layout, objects, boards, links)
            })
        };
        let dead_letters = {
            let layout = DeadLetterLayout {
                prefix: config.lake.prefix.clone(),
            };
            let (links, objects, boards) = (links.clone(), ports.objects.clone(), boards.clone());
            let sink_span = span::sink(SinkKind::DeadLetters);
            span::start_in_arbiter(&lake_arbiter.handle(), sink_span, move |_| {
                DeadLetterWriter::new(layout, objects, boards, links)
            })
        };
        arbiters.push(lake_arbiter);
        let alerter = Alerter::new(
            ports.alerts.clone(),
            ports.checkpoints.clone(),
            RefusedItems {
                objects: ports.objects.clone(),
                prefix: lake_prefix.clone(),
            },
            links.clone(),
            &config.alerts,
        );
        let alerter = span::start(alerter, span::sink(SinkKind::Alerts));
        Self {
            tables,
            lake,
            dead_letters,
            alerter,
            arbiters,
        }
    }

    /// The sinks of the readers on worker arbiter `worker`: its own table writer, the others
    /// shared.
    fn of_worker(&self, worker: usize) -> Sinks {
        Sinks(vec![
            (SinkKind::Table, self.tables[worker].clone().recipient()),
            (SinkKind::Lake, self.lake.clone().recipient()),
            (SinkKind::Alerts, self.alerter.clone().recipient()),
            (SinkKind::DeadLetters, self.dead_letters.clone().recipient()),
        ])
    }
}

fn reader_settings(
    config: &Config,
    initial_position: StartPosition,
    mailbox: usize,
) -> ReaderSettings {
    ReaderSettings {
        decode_limits: config.input.decode_limits(),
        windows: config.windows,
        rules: config.rules.clone(),
        checkpoint_interval: config.checkpoint.interval,
        checkpoint_max_records: config.checkpoint.max_records.max(1),
        files: config.lake.file_sizing(),
        mailbox,
        bars: config.table.mode.bars(),
        initial_position,
        symbols: crate::model::symbol_table::SymbolLimits::new(
            config.symbols.max_per_shard,
            config.symbols.evict_after,
        ),
    }
}

/// This worker's name in the lease table: the configured one, or [`default_worker_id`].
fn worker_id(lease: &crate::config::LeaseConfig) -> WorkerId {
    match &lease.worker_id {
        Some(id) => id.as_str().into(),
        None => default_worker_id().into(),
    }
}

/// A worker name unique across tasks and restarts: host, process and a random suffix.
fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "kinetick".into());
    format!(
        "{host}-{}-{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
}
