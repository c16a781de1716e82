//! A Kafka topic on the broker `scripts/test.sh` starts on loopback, ticks produced to it, and
//! the settings that point `kinetick run` at it.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kinetick::config::KafkaConfig;
use kinetick::producer::kafka::{KafkaSink, partition_of};
use kinetick::producer::{EntryOutcome, RecordSink, batch::Outgoing};

use super::unique;

/// The broker's `host:port`. The tests do not skip without it: they fail and say how to run them.
pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").expect(
        "KAFKA_BOOTSTRAP_SERVERS is not set: run the tests with scripts/test.sh, which starts a \
         Kafka broker",
    )
}

fn broker_bin() -> String {
    std::env::var("KAFKA_BROKER_BIN").expect(
        "KAFKA_BROKER_BIN is not set: run the tests with scripts/test.sh, which starts a Kafka broker",
    )
}

/// A new topic with `partitions` partitions on the shared broker; returns its name.
pub fn create_topic(partitions: usize) -> String {
    create_topic_on(&bootstrap(), partitions)
}

/// A new topic with `partitions` partitions on the broker at `bootstrap`; returns its name.
pub fn create_topic_on(bootstrap: &str, partitions: usize) -> String {
    let topic = unique("ticks");
    let status = Command::new(broker_bin())
        .args(["topic", "create", &topic, "--partitions"])
        .arg(partitions.to_string())
        .arg("--broker")
        .arg(format!("tcp://{bootstrap}"))
        .stdout(Stdio::null())
        .status()
        .expect("the broker's topic command runs");
    assert!(status.success(), "creating topic {topic}: {status}");
    topic
}

/// A broker of the test's own (in memory, on a free loopback port), for tests that freeze or
/// stop it; killed when dropped.
pub struct PrivateBroker {
    child: Child,
    pub bootstrap: String,
}

/// A loopback port nobody listens on yet.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PrivateBroker {
    pub fn start() -> Self {
        let port = free_port();
        Self::start_advertising(port, port)
    }

    /// A broker listening on `port` that tells clients to reach it at `advertised` (where a
    /// test puts something in front of it).
    pub fn start_advertising(port: u16, advertised: u16) -> Self {
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised = format!("tcp://127.0.0.1:{advertised}");
        let child = Command::new(broker_bin())
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &advertised])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the broker starts");
        let bootstrap = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&bootstrap).is_err() {
            assert!(
                Instant::now() < deadline,
                "the broker did not listen on {bootstrap}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, bootstrap }
    }

    /// SIGSTOP: every call to the broker hangs, as with a broker that stalls or a network that
    /// drops packets, until [`PrivateBroker::thaw`].
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(signal)
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal}");
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `settings` with `extra` after them, as [`start_run`](super::stack::start_run) takes them.
pub fn with<'a>(
    settings: &'a [(&'static str, String)],
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut all: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    all
}

/// `KINETICK_...` settings that make `kinetick run` read `topic` of the shared broker.
pub fn settings(topic: &str) -> Vec<(&'static str, String)> {
    settings_on(&bootstrap(), topic)
}

/// `KINETICK_...` settings that make `kinetick run` read `topic` of the broker at `bootstrap`.
pub fn settings_on(bootstrap: &str, topic: &str) -> Vec<(&'static str, String)> {
    vec![
        ("KINETICK_SOURCE__KIND", "kafka".into()),
        ("KINETICK_KAFKA__BOOTSTRAP_SERVERS", bootstrap.into()),
        ("KINETICK_KAFKA__TOPIC", topic.into()),
        ("KINETICK_KAFKA__FETCH_MAX_WAIT", "100ms".into()),
    ]
}

/// Produces `records` (key, value) to `topic` of the shared broker, oldest first, to the
/// partitions `kinetick produce --topic` chooses.
pub async fn produce(topic: &str, records: &[(String, Bytes)]) {
    produce_on(&bootstrap(), topic, records).await;
}

/// [`produce`] to the broker at `bootstrap`.
pub async fn produce_on(bootstrap: &str, topic: &str, records: &[(String, Bytes)]) {
    let config = KafkaConfig {
        bootstrap_servers: bootstrap.into(),
        ..KafkaConfig::default()
    };
    produce_with(&config, topic, records).await;
}

/// [`produce`] through a client of `config` (its brokers, TLS and SASL).
pub async fn produce_with(config: &KafkaConfig, topic: &str, records: &[(String, Bytes)]) {
    let client = kinetick::stream::kafka::connect::client(config, None)
        .await
        .unwrap();
    let sink = KafkaSink::new(&client, topic).await.unwrap();
    for chunk in records.chunks(500) {
        let outgoing: Vec<Outgoing> = chunk
            .iter()
            .map(|(key, data)| Outgoing {
                partition_key: key.clone(),
                data: data.clone(),
            })
            .collect();
        let outcomes = sink.put(&outgoing).await.unwrap();
        assert!(outcomes.iter().all(|o| *o == EntryOutcome::Written));
    }
}

/// The offset of the last record of each partition, by shard id, once `records` are all the
/// topic holds.
pub fn last_offsets(
    topic: &str,
    partitions: usize,
    records: &[(String, Bytes)],
) -> BTreeMap<String, String> {
    let mut counts: BTreeMap<usize, u64> = BTreeMap::new();
    for (key, _) in records {
        *counts
            .entry(partition_of(key.as_bytes(), partitions))
            .or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(partition, count)| (format!("{topic}-{partition}"), (count - 1).to_string()))
        .collect()
}
