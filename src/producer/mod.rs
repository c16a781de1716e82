//! `kinetick produce` and `kinetick replay`: ticks into a Kinesis stream or a Kafka topic.
//!
//! Sources turn something into records in the seed JSON format, partition key = symbol: the
//! market [`simulator`] (run at a target rate by [`simulated`]), CSV files of historical bars
//! ([`replay`]), or a public quote endpoint ([`yahoo`]). The [`Producer`] batches them into `PutRecords` requests within the API
//! limits, keeping the order per symbol (see [`batch`]), retries failed entries and throttled
//! requests with backoff, and counts what happened. The sink is Kinesis, a Kafka topic
//! ([`kafka`]), or nothing at all in a dry run that only encodes and batches.

pub mod batch;
pub mod kafka;
pub mod replay;
pub mod simulated;
pub mod simulator;
pub mod yahoo;

use std::fmt;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use backon::BackoffBuilder;

use self::batch::{Outgoing, Pending, Rejected};
use crate::aws;

/// What Kinesis made of one entry of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryOutcome {
    Written,
    /// Throttled or an internal error: worth sending again.
    Failed {
        code: String,
    },
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("PutRecords failed: {message}")]
pub struct PutError {
    pub message: String,
    pub retryable: bool,
}

/// Where requests go.
#[async_trait]
pub trait RecordSink: Send + Sync {
    /// One `PutRecords` request; one outcome per record, in order.
    async fn put(&self, records: &[Outgoing]) -> Result<Vec<EntryOutcome>, PutError>;
}

/// A Kinesis stream.
pub struct KinesisSink {
    client: Client,
    stream_name: String,
}

impl KinesisSink {
    pub fn new(client: Client, stream_name: impl Into<String>) -> Self {
        Self {
            client,
            stream_name: stream_name.into(),
        }
    }
}

#[async_trait]
impl RecordSink for KinesisSink {
    async fn put(&self, records: &[Outgoing]) -> Result<Vec<EntryOutcome>, PutError> {
        let entries = records
            .iter()
            .map(|record| {
                PutRecordsRequestEntry::builder()
                    .partition_key(&record.partition_key)
                    .data(Blob::new(record.data.to_vec()))
                    .build()
                    .expect("key and data are set")
            })
            .collect();
        let output = self
            .client
            .put_records()
            .stream_name(&self.stream_name)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| PutError {
                retryable: aws::is_retryable(&e),
                message: aws::describe(&e),
            })?;
        let outcomes: Vec<EntryOutcome> = output
            .records()
            .iter()
            .map(|entry| match entry.error_code() {
                None => EntryOutcome::Written,
                Some(code) => EntryOutcome::Failed {
                    code: code.to_owned(),
                },
            })
            .collect();
        if outcomes.len() != records.len() {
            return Err(PutError {
                message: format!("{} results for {} records", outcomes.len(), records.len()),
                retryable: false,
            });
        }
        Ok(outcomes)
    }
}

/// Accepts everything: a dry run measures encoding and batching alone.
pub struct DryRunSink;

#[async_trait]
impl RecordSink for DryRunSink {
    async fn put(&self, records: &[Outgoing]) -> Result<Vec<EntryOutcome>, PutError> {
        Ok(vec![EntryOutcome::Written; records.len()])
    }
}

/// Counts of one production run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Records Kinesis accepted.
    pub sent: u64,
    /// Entries sent again after a partial failure or a throttled request.
    pub retried: u64,
    /// Records not sent: refused up front, or still failing after every retry.
    pub failed: u64,
    pub requests: u64,
    pub elapsed: Duration,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.elapsed.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "sent      {} records in {} requests",
            self.sent, self.requests
        )?;
        writeln!(f, "retried   {} entries", self.retried)?;
        writeln!(f, "failed    {} records", self.failed)?;
        writeln!(
            f,
            "rate      {:.0} records/s over {:.1} s",
            self.sent as f64 / seconds,
            seconds
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    #[error(transparent)]
    Put(#[from] PutError),
    #[error("{pending} records still failing after {attempts} attempts (last error: {code})")]
    RetriesExhausted {
        pending: usize,
        attempts: usize,
        code: String,
    },
}

/// Attempts at a request whose records keep failing before the producer gives up.
const MAX_ATTEMPTS: usize = 12;

/// Batches records into requests and sends them, one request at a time.
pub struct Producer {
    sink: Arc<dyn RecordSink>,
    pending: Pending,
    stats: Stats,
    started: Instant,
    progress: Progress,
    /// A send failed for good: nothing more is sent.
    broken: bool,
}

impl Producer {
    /// `total` is the number of records expected, when known (for the progress bar).
    pub fn new(sink: Arc<dyn RecordSink>, total: Option<u64>, show_progress: bool) -> Self {
        Self {
            sink,
            pending: Pending::default(),
            stats: Stats::default(),
            started: Instant::now(),
            progress: Progress::new(total, show_progress),
            broken: false,
        }
    }

    /// Queues a record; one Kinesis would refuse is counted as failed and logged.
    pub fn push(&mut self, record: Outgoing) {
        if let Err(rejected) = self.pending.push(record) {
            self.reject(&rejected);
        }
    }

    fn reject(&mut self, rejected: &Rejected) {
        tracing::error!(reason = %rejected, "Record not sent.");
        self.stats.failed += 1;
    }

    /// Records waiting to be sent.
    pub fn backlog(&self) -> usize {
        self.pending.len()
    }

    /// Sends requests while at least `keep` records wait (0: until none is left).
    pub async fn send_while_above(&mut self, keep: usize) -> Result<(), ProducerError> {
        while !self.broken && !self.pending.is_empty() && self.pending.len() >= keep.max(1) {
            if let Err(error) = self.send_one().await {
                self.broken = true;
                return Err(error);
            }
        }
        Ok(())
    }

    /// Sends one request; failed entries go back to the head of their symbol's queue and the
    /// producer backs off before the next attempt, giving up after [`MAX_ATTEMPTS`].
    async fn send_one(&mut self) -> Result<(), ProducerError> {
        let mut delays = crate::retry::backoff()
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(MAX_ATTEMPTS)
            .build();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = self.pending.next_request();
            if request.is_empty() {
                return Ok(());
            }
            self.stats.requests += 1;
            let (failed, code) = match self.sink.put(&request).await {
                Ok(outcomes) => {
                    let mut failed = Vec::new();
                    let mut code = String::new();
                    for (record, outcome) in request.into_iter().zip(outcomes) {
                        match outcome {
                            EntryOutcome::Written => self.stats.sent += 1,
                            EntryOutcome::Failed { code: c } => {
                                code = c;
                                failed.push(record);
                            }
                        }
                    }
                    (failed, code)
                }
                Err(error) if error.retryable => (request, error.message),
                Err(error) => {
                    self.pending.requeue(request);
                    return Err(error.into());
                }
            };
            self.progress.show(&self.stats);
            if failed.is_empty() {
                return Ok(());
            }
            self.stats.retried += failed.len() as u64;
            self.pending.requeue(failed);
            let Some(delay) = delays.next() else {
                return Err(ProducerError::RetriesExhausted {
                    pending: self.pending.len(),
                    attempts: attempt,
                    code,
                });
            };
            tracing::debug!(%code, ?delay, "PutRecords entries failed, backing off.");
            tokio::time::sleep(delay).await;
        }
    }

    /// Sends everything left (unless a send already failed for good) and returns the counts;
    /// records still unsent count as failed.
    pub async fn finish(mut self) -> (Stats, Result<(), ProducerError>) {
        let result = self.send_while_above(0).await;
        self.stats.failed += self.pending.len() as u64;
        self.stats.elapsed = self.started.elapsed();
        self.progress.finish();
        (self.stats, result)
    }
}

/// A progress bar on a terminal, a log line every 10 s elsewhere.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_log: Instant,
    enabled: bool,
}

impl Progress {
    fn new(total: Option<u64>, enabled: bool) -> Self {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = match total {
                Some(total) => indicatif::ProgressBar::new(total),
                None => indicatif::ProgressBar::no_length(),
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {bar:30} {human_pos}/{human_len} records  {per_sec}  {msg}",
                )
                .expect("valid progress template"),
            );
            bar
        });
        Self {
            bar,
            last_log: Instant::now(),
            enabled,
        }
    }

    fn show(&mut self, stats: &Stats) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(stats.sent);
                bar.set_message(format!(
                    "{} retried, {} failed",
                    stats.retried, stats.failed
                ));
            }
            None if self.enabled && self.last_log.elapsed() >= Duration::from_secs(10) => {
                self.last_log = Instant::now();
                tracing::info!(
                    sent = stats.sent,
                    retried = stats.retried,
                    failed = stats.failed,
                    requests = stats.requests,
                    "Producing."
                );
            }
            None => {}
        }
    }

    fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Where `produce` and `replay` write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination<'a> {
    /// A Kinesis stream, with the SDK's default chain (as `kinetick run` makes it).
    Kinesis(&'a str),
    /// A Kafka topic of the brokers in `[kafka]`.
    Kafka(&'a str),
    /// Nowhere: encode and batch only.
    DryRun,
}

/// The sink of `destination`.
pub async fn sink(
    destination: Destination<'_>,
    kafka: &crate::config::KafkaConfig,
) -> anyhow::Result<Arc<dyn RecordSink>> {
    Ok(match destination {
        Destination::DryRun => Arc::new(DryRunSink),
        Destination::Kinesis(stream) => {
            let sdk = aws::sdk_config().await;
            Arc::new(KinesisSink::new(Client::new(&sdk), stream))
        }
        Destination::Kafka(topic) => {
            let sdk = aws::sdk_config().await;
            let client = crate::stream::kafka::connect::client(kafka, Some(&sdk)).await?;
            Arc::new(kafka::KafkaSink::new(&client, topic).await?)
        }
    })
}

/// A tick as the seed producers send it (the record format of DESIGN.md).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SeedTick {
    pub symbol: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    pub price: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_close: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<f64>,
    /// RFC 3339, UTC.
    pub timestamp: String,
}

impl SeedTick {
    /// Fills `change` and `change_percent` from `previous_close`.
    pub fn with_previous_close(mut self, previous_close: Option<f64>) -> Self {
        self.previous_close = previous_close;
        if let Some(previous) = previous_close.filter(|p| *p > 0.0) {
            let change = self.price - previous;
            self.change = Some(round(change, 4));
            self.change_percent = Some(round(change / previous * 100.0, 4));
        }
        self
    }

    pub fn record(&self) -> Outgoing {
        Outgoing {
            partition_key: self.symbol.clone(),
            data: serde_json::to_vec(self).expect("a tick serializes").into(),
        }
    }
}

fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Fails chosen entries of the first requests, recording what was written in order.
    #[derive(Default)]
    struct FlakySink {
        written: Mutex<Vec<Outgoing>>,
        failures_left: Mutex<usize>,
    }

    #[async_trait]
    impl RecordSink for FlakySink {
        async fn put(&self, records: &[Outgoing]) -> Result<Vec<EntryOutcome>, PutError> {
            let mut left = self.failures_left.lock().unwrap();
            let mut outcomes = Vec::new();
            for (i, record) in records.iter().enumerate() {
                if *left > 0 && i.is_multiple_of(2) {
                    *left -= 1;
                    outcomes.push(EntryOutcome::Failed {
                        code: "ProvisionedThroughputExceededException".into(),
                    });
                } else {
                    self.written.lock().unwrap().push(record.clone());
                    outcomes.push(EntryOutcome::Written);
                }
            }
            Ok(outcomes)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn partial_failures_are_retried_in_order_per_symbol() {
        let sink = Arc::new(FlakySink {
            failures_left: Mutex::new(5),
            ..FlakySink::default()
        });
        let mut producer = Producer::new(sink.clone(), None, false);
        for n in 0..20 {
            for symbol in ["AAPL", "MSFT", "IBM"] {
                producer.push(Outgoing {
                    partition_key: symbol.into(),
                    data: format!("{symbol}-{n:02}").into(),
                });
            }
        }
        let (stats, result) = producer.finish().await;
        result.unwrap();
        assert_eq!((stats.sent, stats.retried, stats.failed), (60, 5, 0));
        let written = sink.written.lock().unwrap();
        for symbol in ["AAPL", "MSFT", "IBM"] {
            let order: Vec<_> = written
                .iter()
                .filter(|r| r.partition_key == symbol)
                .map(|r| r.data.clone())
                .collect();
            let expected: Vec<bytes::Bytes> =
                (0..20).map(|n| format!("{symbol}-{n:02}").into()).collect();
            assert_eq!(order, expected, "{symbol} in order, once each");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_that_keeps_failing_ends_the_run_with_an_error() {
        let sink = Arc::new(FlakySink {
            failures_left: Mutex::new(usize::MAX),
            ..FlakySink::default()
        });
        let mut producer = Producer::new(sink, None, false);
        producer.push(Outgoing {
            partition_key: "AAPL".into(),
            data: "x".into(),
        });
        let (stats, result) = producer.finish().await;
        assert!(matches!(
            result,
            Err(ProducerError::RetriesExhausted { .. })
        ));
        assert_eq!(stats.failed, 1);
    }

    #[test]
    fn change_follows_the_previous_close() {
        let tick = SeedTick {
            symbol: "AAPL".into(),
            open: None,
            high: None,
            low: None,
            price: 105.0,
            previous_close: None,
            change: None,
            change_percent: None,
            volume: Some(10.0),
            timestamp: "2026-01-05T14:30:00Z".into(),
        }
        .with_previous_close(Some(100.0));
        assert_eq!((tick.change, tick.change_percent), (Some(5.0), Some(5.0)));
        let json: serde_json::Value = serde_json::from_slice(&tick.record().data).unwrap();
        assert_eq!(json["previous_close"], 100.0);
        assert!(json.get("open").is_none());
    }
}
