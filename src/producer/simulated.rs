//! `kinetick produce`: simulated ticks (or live quotes, see [`super::yahoo`]) into the stream at a
//! target rate, for trying the pipeline and load-testing it.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use governor::{Quota, RateLimiter};

use super::batch::{MAX_RECORDS, Outgoing};
use super::simulator::{MarketSimulator, SimulatorConfig};
use super::{Producer, ProducerError, RecordSink, Stats};

/// What to simulate and how fast.
#[derive(Debug, Clone)]
pub struct SimulatedRun {
    pub simulator: SimulatorConfig,
    /// Records per second; 0 = as fast as the sink takes them.
    pub rate: u32,
    /// Stop after this many records…
    pub count: Option<u64>,
    /// …or after this long; neither: until Ctrl-C.
    pub duration: Option<Duration>,
    pub progress: bool,
}

/// Rate-limited chunks: about 20 per second, so the rate is smooth but requests stay full.
fn chunk_size(rate: u32) -> u32 {
    (rate / 20).clamp(1, MAX_RECORDS as u32)
}

pub async fn produce(
    run: SimulatedRun,
    sink: Arc<dyn RecordSink>,
) -> (Stats, Result<(), ProducerError>) {
    let mut simulator = MarketSimulator::new(run.simulator.clone());
    let mut producer = Producer::new(sink, run.count, run.progress);
    let interrupted = interrupt_flag();
    let limiter = NonZeroU32::new(run.rate).map(|rate| {
        let burst = NonZeroU32::new(chunk_size(rate.get())).expect("at least 1");
        RateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
    });
    let chunk = match run.rate {
        0 => MAX_RECORDS as u64,
        rate => u64::from(chunk_size(rate)),
    };
    let deadline = run.duration.map(|d| Instant::now() + d);
    let mut produced = 0u64;
    let mut result = Ok(());
    while !interrupted.load(Ordering::Relaxed)
        && run.count.is_none_or(|count| produced < count)
        && deadline.is_none_or(|d| Instant::now() < d)
    {
        let n = run.count.map_or(chunk, |count| chunk.min(count - produced));
        if let Some(limiter) = &limiter {
            let n = NonZeroU32::new(n as u32).expect("at least 1");
            limiter
                .until_n_ready(n)
                .await
                .expect("chunks fit the burst");
        }
        for record in simulator.by_ref().take(n as usize) {
            producer.push(Outgoing {
                partition_key: record.partition_key.to_string(),
                data: record.data.into(),
            });
        }
        produced += n;
        if let Err(error) = producer.send_while_above(1).await {
            result = Err(error);
            break;
        }
    }
    let (stats, finished) = producer.finish().await;
    (stats, result.and(finished))
}

/// Set on Ctrl-C, so a run without `--count` or `--duration` ends with its summary.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            set.store(true, Ordering::Relaxed);
        }
    });
    flag
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::DryRunSink;

    #[test]
    fn chunks_keep_requests_full_and_the_rate_smooth() {
        assert_eq!(chunk_size(10), 1);
        assert_eq!(chunk_size(1_000), 50);
        assert_eq!(chunk_size(1_000_000), 500);
    }

    #[tokio::test]
    async fn a_counted_dry_run_sends_exactly_the_count() {
        let run = SimulatedRun {
            simulator: SimulatorConfig::default(),
            rate: 0,
            count: Some(1_234),
            duration: None,
            progress: false,
        };
        let (stats, result) = produce(run, Arc::new(DryRunSink)).await;
        result.unwrap();
        assert_eq!((stats.sent, stats.failed), (1_234, 0));
    }
}
