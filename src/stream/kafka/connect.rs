//! A Kafka client from the `[kafka]` settings: bootstrap brokers, TLS, SASL (PLAIN, SCRAM, or
//! MSK IAM), and how its errors read to the rest of kinetick.

use std::sync::Arc;
use std::time::Duration;

use rskafka::BackoffConfig;
use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::{Client, ClientBuilder, Credentials, OauthBearerCredentials, SaslConfig};

use super::msk_iam;
use crate::config::{KafkaConfig, SaslMechanism};
use crate::model::ids::ShardId;
use crate::stream::StreamError;

/// A connected client: it has read the cluster's metadata from one of the bootstrap brokers.
pub async fn client(
    config: &KafkaConfig,
    sdk: Option<&aws_config::SdkConfig>,
) -> anyhow::Result<Client> {
    let mut builder = ClientBuilder::new(config.brokers())
        .client_id(config.client_id.as_str())
        // The client's own retries end within a request's time, so a broker that is down shows
        // as a failed read (reported and read again) instead of a call that never returns.
        .backoff_config(BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
            deadline: Some(config.request_timeout),
        });
    if config.tls {
        builder = builder.tls_config(Arc::new(tls_config(config)?));
    }
    if let Some(sasl) = sasl_config(config, sdk)? {
        builder = builder.sasl_config(sasl);
    }
    let brokers = &config.bootstrap_servers;
    tokio::time::timeout(config.request_timeout * 2, builder.build())
        .await
        .map_err(|_| anyhow::anyhow!("Kafka brokers {brokers} did not answer"))?
        .map_err(|e| anyhow::anyhow!("cannot connect to Kafka brokers {brokers}: {e}"))
}

fn tls_config(config: &KafkaConfig) -> anyhow::Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_file {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| {
                anyhow::anyhow!("kafka.ca-file {} cannot be read: {e}", path.display())
            })? {
                let cert = cert.map_err(|e| {
                    anyhow::anyhow!("kafka.ca-file {} is not PEM: {e}", path.display())
                })?;
                roots.add(cert)?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn sasl_config(
    config: &KafkaConfig,
    sdk: Option<&aws_config::SdkConfig>,
) -> anyhow::Result<Option<SaslConfig>> {
    let credentials = || {
        Credentials::new(
            config.sasl_username.clone().unwrap_or_default(),
            config.sasl_password.clone().unwrap_or_default(),
        )
    };
    Ok(match config.sasl_mechanism {
        SaslMechanism::None => None,
        SaslMechanism::Plain => Some(SaslConfig::Plain(credentials())),
        SaslMechanism::ScramSha256 => Some(SaslConfig::ScramSha256(credentials())),
        SaslMechanism::ScramSha512 => Some(SaslConfig::ScramSha512(credentials())),
        SaslMechanism::AwsMskIam => {
            let sdk = sdk.ok_or_else(|| {
                anyhow::anyhow!("kafka.sasl-mechanism aws-msk-iam needs AWS credentials")
            })?;
            Some(SaslConfig::Oauthbearer(OauthBearerCredentials {
                callback: msk_iam::token_callback(sdk)?,
                authz_id: None,
                bearer_kvs: Vec::new(),
            }))
        }
    })
}

/// A failed Kafka call as the stream port reports it: refusals a retry will not change
/// (authorization, a topic or partition that does not exist) are not retryable.
pub fn stream_error(
    operation: &'static str,
    shard: Option<&ShardId>,
    error: KafkaError,
) -> StreamError {
    let retryable = match &error {
        KafkaError::ServerError { protocol_error, .. } => !matches!(
            protocol_error,
            ProtocolError::TopicAuthorizationFailed
                | ProtocolError::ClusterAuthorizationFailed
                | ProtocolError::SaslAuthenticationFailed
                | ProtocolError::UnknownTopicOrPartition
        ),
        KafkaError::Connection(rskafka::ConnectionError::SaslFailed(_)) => false,
        _ => true,
    };
    StreamError::Request {
        operation,
        shard: shard.cloned(),
        message: error.to_string(),
        retryable,
    }
}

/// A call that did not answer within `kafka.request-timeout`.
pub fn timed_out(operation: &'static str, shard: Option<&ShardId>, limit: Duration) -> StreamError {
    StreamError::Request {
        operation,
        shard: shard.cloned(),
        message: format!("no answer within {}", humantime::format_duration(limit)),
        retryable: true,
    }
}
