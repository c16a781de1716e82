//! The one retry policy of every AWS-facing call: exponential backoff with jitter, bounded, so a
//! throttled or briefly failing service slows a stage down instead of stopping it.

use std::time::Duration;

use backon::ExponentialBuilder;

/// Backoff for a retryable failure: 100 ms doubling to 10 s, with jitter, at most 10 retries
/// (about a minute in all) before the error is treated as fatal.
pub fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(10))
        .with_max_times(10)
        .with_jitter()
}
