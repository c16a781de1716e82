//! Running a started pipeline to its end, the same way for `kinetick demo` and `kinetick run`:
//! until every shard is finished, a fatal error, or a stop signal (SIGTERM, what ECS sends to
//! stop a task, or SIGINT, Ctrl-C). On a signal the readers stop, every sink flushes, every shard
//! checkpoints and the leases are released with a hand-off marker; then the last metrics are
//! published and the pipeline's threads stop. Meanwhile rejected records are summed by reason in
//! the log ([`RejectionReport`]), and their totals logged once at the end.
//!
//! In: a [`Pipeline`] from [`Pipeline::start`]. Out: `Ok` once it is done and closed, or its
//! fatal error.

use tokio::signal::unix::{SignalKind, signal};

use crate::metrics::rejections::{REPORT_INTERVAL, RejectionReport};
use crate::pipeline::Pipeline;

/// The signal that asked the pipeline to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGTERM: ECS stopping the task, or `kill`.
    Terminate,
    /// SIGINT: Ctrl-C.
    Interrupt,
}

impl StopSignal {
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Terminate => "SIGTERM",
            StopSignal::Interrupt => "SIGINT",
        }
    }
}

/// Runs `pipeline` until it is done or a signal stops it, then closes it. `stopping` is called
/// when a signal arrives, before the pipeline flushes and checkpoints: the caller tells the
/// person or the log what is happening, in its own words and at its own level.
pub async fn run_to_end(
    mut pipeline: Pipeline,
    stopping: impl FnOnce(StopSignal),
) -> anyhow::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let report = RejectionReport::start(pipeline.metrics().clone(), REPORT_INTERVAL);
    let ended = tokio::select! {
        result = pipeline.wait() => Ok(result),
        _ = terminate.recv() => Err(StopSignal::Terminate),
        _ = tokio::signal::ctrl_c() => Err(StopSignal::Interrupt),
    };
    let result = match ended {
        Ok(result) => result,
        Err(signal) => {
            stopping(signal);
            pipeline.request_stop();
            pipeline.wait().await
        }
    };
    pipeline.close().await;
    report.finish();
    Ok(result?)
}
