//! The retry policies of every AWS-facing call: exponential backoff with jitter, so a throttled
//! or briefly failing service slows a stage down instead of stopping it.
//!
//! [`backoff`] is bounded, for calls whose caller decides what a lasting failure means (reads,
//! lease-table calls). The writes that make records durable go through [`persistently`], which
//! never gives up on its own: it carries out the error policy of [`crate::failure`].

use std::fmt::Display;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::failure::Failure;
use crate::health::{Concern, Health};
use crate::metrics::{Counter, Metrics};

/// Backoff for a retryable failure: 100 ms doubling to 10 s, with jitter, at most 10 retries
/// (about a minute in all) before the error is treated as fatal.
pub fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(10))
        .with_max_times(10)
        .with_jitter()
}

/// `call`, tried again after a transient failure (by `failure_of`) with the bounded
/// [`backoff`]; any other failure, or the last, goes back to the caller. For commands that run
/// once and end (`kinetick compact`), where a lasting failure should end the run.
pub async fn bounded<T, E, Fut>(
    what: &str,
    failure_of: impl Fn(&E) -> Failure,
    call: impl FnMut() -> Fut,
) -> Result<T, E>
where
    E: Display,
    Fut: Future<Output = Result<T, E>>,
{
    use backon::Retryable;

    call.retry(backoff())
        .when(|error| failure_of(error) == Failure::Transient)
        .notify(|error, wait| tracing::warn!(what, %error, ?wait, "Failed, retrying."))
        .await
}

/// Between two tries of a call the service refuses: someone has to fix a permission or create a
/// resource, so a slow pace costs little and keeps the request count (and the log) small.
fn refused_backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(60))
        .without_max_times()
        .with_jitter()
}

fn transient_backoff() -> ExponentialBuilder {
    backoff().without_max_times()
}

/// Where a persistent write reports its failures.
#[derive(Clone, Copy)]
pub struct Reporting<'a> {
    pub concern: Concern,
    pub health: &'a Health,
    pub metrics: &'a Metrics,
}

/// Why [`persistently`] returned without success.
#[derive(Debug)]
pub enum Stopped<E> {
    /// The service refused an item of the call (the caller dead-letters it), or refused the
    /// write because the lease moved on (the caller leaves it to the new owner).
    Rejected(E),
    /// The write is no longer this worker's to make (its lease may have run out).
    Abandoned,
}

/// Runs `call` until it succeeds: transient failures again after a backoff up to 10 s, refusals
/// after one up to a minute, each failure counted and reported to the health board (and the
/// concern reported recovered on success). Stops early only when the service refuses an item or
/// fences the write, or when `wanted` says the write is no longer wanted (asked before every
/// try).
pub async fn persistently<T, E, Fut>(
    report: Reporting<'_>,
    failure_of: impl Fn(&E) -> Failure,
    wanted: impl Fn() -> bool,
    mut call: impl FnMut() -> Fut,
) -> Result<T, Stopped<E>>
where
    E: Display,
    Fut: Future<Output = Result<T, E>>,
{
    let mut transient = transient_backoff().build();
    let mut refused = refused_backoff().build();
    loop {
        if !wanted() {
            return Err(Stopped::Abandoned);
        }
        let error = match call().await {
            Ok(value) => {
                report.health.recovered(report.concern);
                return Ok(value);
            }
            Err(error) => error,
        };
        let failure = failure_of(&error);
        let wait = match failure {
            Failure::ItemRefused | Failure::Fenced => return Err(Stopped::Rejected(error)),
            Failure::Transient => transient.next(),
            Failure::Refused => refused.next(),
        }
        .unwrap_or(Duration::from_secs(60));
        report.metrics.add(Counter::WriteFailures, 1);
        report
            .health
            .failing(report.concern, &error, failure == Failure::Refused);
        match failure {
            Failure::Refused => tracing::error!(concern = %report.concern, %error, ?wait,
                "Refused by the service; nothing is lost, trying again until it is fixed."),
            _ => {
                tracing::warn!(concern = %report.concern, %error, ?wait, "Write failed, retrying.")
            }
        }
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::barrier::SinkKind;

    #[derive(Debug)]
    struct Refusal(Failure);

    impl Display for Refusal {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{:?}", self.0)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_are_tried_again_until_they_succeed_and_reported_meanwhile() {
        let (health, metrics) = (Health::new(Duration::from_secs(60)), Metrics::default());
        let report = Reporting {
            concern: Concern::Sink(SinkKind::Lake),
            health: &health,
            metrics: &metrics,
        };
        let tries = Cell::new(0);
        let result = persistently(
            report,
            |e: &Refusal| e.0,
            || true,
            || {
                tries.set(tries.get() + 1);
                let answer = match tries.get() {
                    1..=3 => Err(Refusal(Failure::Refused)),
                    4 => Err(Refusal(Failure::Transient)),
                    _ => Ok(tries.get()),
                };
                if tries.get() == 4 {
                    assert!(
                        !health
                            .report(tokio::time::Instant::now().into_std())
                            .healthy()
                    );
                }
                async move { answer }
            },
        )
        .await;
        assert_eq!(result.unwrap(), 5);
        assert_eq!(metrics.total(Counter::WriteFailures), 4);
        assert!(health.report(std::time::Instant::now()).healthy());
    }

    #[tokio::test(start_paused = true)]
    async fn an_item_refusal_goes_back_to_the_caller_and_an_unwanted_write_stops() {
        let (health, metrics) = (Health::new(Duration::from_secs(60)), Metrics::default());
        let report = Reporting {
            concern: Concern::Sink(SinkKind::Table),
            health: &health,
            metrics: &metrics,
        };
        let refused = persistently(
            report,
            |e: &Refusal| e.0,
            || true,
            || async { Err::<(), _>(Refusal(Failure::ItemRefused)) },
        )
        .await;
        assert!(matches!(refused, Err(Stopped::Rejected(_))));

        let wanted = Cell::new(true);
        let abandoned = persistently(
            report,
            |e: &Refusal| e.0,
            || wanted.get(),
            || {
                wanted.set(false);
                async { Err::<(), _>(Refusal(Failure::Transient)) }
            },
        )
        .await;
        assert!(matches!(abandoned, Err(Stopped::Abandoned)));
    }
}
