//! Where ticks come from (`[source]`), and the Kafka topic when they come from Kafka (`[kafka]`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The stream `kinetick run` reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct SourceConfig {
    pub kind: SourceKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// The Kinesis stream `aws.stream-name`.
    #[default]
    Kinesis,
    /// The Kafka topic `kafka.topic`: its partitions play the shards, offsets the sequence
    /// numbers. Leases and checkpoints stay in `aws.checkpoint-table`.
    Kafka,
}

/// A Kafka cluster and topic (Amazon MSK or self-run), for `kinetick run` with
/// `source.kind = "kafka"` and for `kinetick produce --topic` / `replay --topic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Brokers to bootstrap from, comma-separated `host:port`.
    pub bootstrap_servers: String,
    /// The topic of ticks (key = symbol).
    pub topic: String,
    /// The client id brokers see (quotas, logs).
    pub client_id: String,
    /// TLS to the brokers (MSK's TLS listeners, ports 9094/9096/9098).
    pub tls: bool,
    /// PEM file of the certificate authorities to trust; without one, the Mozilla roots built
    /// into kinetick (`webpki-roots`), not the system's.
    pub ca_file: Option<PathBuf>,
    /// How clients authenticate.
    pub sasl_mechanism: SaslMechanism,
    /// With `plain` or `scram-*`.
    pub sasl_username: Option<String>,
    /// With `plain` or `scram-*` (from a secret: `KINETICK_KAFKA__SASL_PASSWORD`).
    pub sasl_password: Option<String>,
    /// Longest a fetch waits at the broker for new records while a partition is idle.
    #[serde(with = "humantime_serde")]
    pub fetch_max_wait: Duration,
    /// Most bytes one fetch of a partition returns.
    pub fetch_max_bytes: i32,
    /// How long one request may take before it is abandoned and retried.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: String::new(),
            topic: "kinetick-ticks".into(),
            client_id: "kinetick".into(),
            tls: false,
            ca_file: None,
            sasl_mechanism: SaslMechanism::None,
            sasl_username: None,
            sasl_password: None,
            fetch_max_wait: Duration::from_millis(500),
            fetch_max_bytes: 4 * 1024 * 1024,
            request_timeout: Duration::from_secs(15),
        }
    }
}

impl KafkaConfig {
    /// The bootstrap brokers, one `host:port` each.
    pub fn brokers(&self) -> Vec<String> {
        self.bootstrap_servers
            .split(',')
            .map(str::trim)
            .filter(|broker| !broker.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SaslMechanism {
    #[default]
    None,
    Plain,
    // kebab-case alone would spell these `scram-sha256`, not as Kafka names them.
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
    /// MSK's IAM access control: a token signed with the task's AWS credentials (SigV4).
    AwsMskIam,
}

impl SaslMechanism {
    /// Whether it authenticates with `sasl-username` and `sasl-password`.
    pub fn takes_password(self) -> bool {
        matches!(
            self,
            SaslMechanism::Plain | SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512
        )
    }
}
