//! `kinetick run` and `produce --topic` on a Kafka listener that speaks TLS, trusting the
//! broker's certificate authority from `kafka.ca-file`: every tick once in the table and the lake.
//! The test broker has no TLS listener of its own, so a TLS front on loopback (with a certificate
//! made here) forwards to it, and the broker advertises the front as its address.

mod common;

use std::sync::Arc;

use common::kafka::{self, PrivateBroker, free_port};
use common::stack::{
    assert_exactly_once, create_stack, records, start_run, terminate, wait_for_checkpoints,
};
use kinetick::config::KafkaConfig;
use rcgen::{CertificateParams, KeyPair};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A TLS front on `front` forwarding each connection to the broker on `broker`, and the PEM of
/// the certificate authority that signed its certificate (for 127.0.0.1).
async fn tls_front(front: u16, broker: u16) -> String {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(("127.0.0.1", front)).await.unwrap();
    tokio::spawn(async move {
        loop {
            let (client, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut client) = acceptor.accept(client).await else {
                    return;
                };
                let mut upstream = TcpStream::connect(("127.0.0.1", broker)).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    ca.pem()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_listener_is_read_with_the_ca_file_and_nothing_is_lost() {
    let config = common::sdk_config();
    let (broker_port, front_port) = (free_port(), free_port());
    let broker = PrivateBroker::start_advertising(broker_port, front_port);
    let ca_pem = tls_front(front_port, broker_port).await;
    let ca_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca_file.path(), ca_pem).unwrap();
    let front = format!("127.0.0.1:{front_port}");
    let topic = kafka::create_topic_on(&broker.bootstrap, 2);

    let tls = KafkaConfig {
        bootstrap_servers: front.clone(),
        tls: true,
        ca_file: Some(ca_file.path().to_owned()),
        ..KafkaConfig::default()
    };
    // Without the authority, the broker's certificate is not trusted.
    let untrusted = KafkaConfig {
        ca_file: None,
        ..tls.clone()
    };
    let refused = kinetick::stream::kafka::connect::client(&untrusted, None).await;
    assert!(
        refused.is_err(),
        "a certificate of an unknown authority is refused"
    );

    let (all, valid) = records(1_500, 61);
    kafka::produce_with(&tls, &topic, &all).await;

    let stack = create_stack(&config).await;
    let settings = kafka::settings_on(&front, &topic);
    let ca_path = ca_file.path().display().to_string();
    let run = start_run(
        &stack,
        &kafka::with(
            &settings,
            &[
                ("KINETICK_KAFKA__TLS", "true"),
                ("KINETICK_KAFKA__CA_FILE", ca_path.as_str()),
            ],
        ),
    );
    wait_for_checkpoints(
        &config,
        &stack.checkpoint_table,
        &kafka::last_offsets(&topic, 2, &all),
    )
    .await;
    let _log = terminate(run);
    assert_exactly_once(&config, &stack, valid).await;
}
