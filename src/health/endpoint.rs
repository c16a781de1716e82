//! The health endpoint of a running pipeline (`GET /health`), for the container's health check
//! and operators, and the client side used by `kinetick health`.
//!
//! 200 with a small JSON status while the worker is healthy; 503 once a fatal error stopped it
//! or while its [`Health`] report names reasons, each in the body.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::{Health, Report};
use crate::metrics::{Counter, Metrics};

/// What the endpoint says, as status line and JSON body.
fn answer(metrics: &Metrics, report: &Report, fatal: Option<&str>) -> (&'static str, String) {
    const UNAVAILABLE: &str = "503 Service Unavailable";
    let (status, body) = match (fatal, report.healthy()) {
        (Some(error), _) => (
            UNAVAILABLE,
            serde_json::json!({"status": "failed", "error": error, "restart_helps": true}),
        ),
        (None, false) => (
            UNAVAILABLE,
            serde_json::json!({
                "status": "unhealthy",
                "reasons": report.reasons,
                "restart_helps": report.restart_helps(),
            }),
        ),
        (None, true) => (
            "200 OK",
            serde_json::json!({"status": "ok", "records": metrics.total(Counter::RecordsProcessed)}),
        ),
    };
    (status, body.to_string())
}

/// Serves the endpoint on `listener` until the process ends.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    fatal: watch::Receiver<Option<String>>,
) {
    loop {
        let Ok((mut connection, _)) = listener.accept().await else {
            continue;
        };
        let (metrics, health, fatal) = (metrics.clone(), health.clone(), fatal.clone());
        tokio::spawn(async move {
            // The request itself does not matter: every path answers with the status.
            let mut request = [0u8; 1024];
            let _ =
                tokio::time::timeout(Duration::from_secs(2), connection.read(&mut request)).await;
            let report = health.report(Instant::now());
            let fatal = fatal.borrow().clone();
            let (status, body) = answer(&metrics, &report, fatal.as_deref());
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = connection.write_all(response.as_bytes()).await;
        });
    }
}

/// What a health endpoint answered.
#[derive(Debug)]
pub struct Answer {
    pub healthy: bool,
    /// Unhealthy, and replacing the process could help (not only refusals; see
    /// [`super::Reason::restart_helps`]).
    pub restart_helps: bool,
    /// The JSON body.
    pub body: String,
}

/// Asks a health endpoint (`host:port`).
pub async fn check(address: &str) -> anyhow::Result<Answer> {
    let mut stream =
        tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(address)).await??;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut response)).await??;
    let healthy = response.starts_with(b"HTTP/1.1 200");
    let text = String::from_utf8_lossy(&response);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    let restart_helps = !healthy
        && serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|json| json["restart_helps"].as_bool())
            .unwrap_or(true);
    Ok(Answer {
        healthy,
        restart_helps,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::barrier::SinkKind;
    use crate::health::Concern;

    async fn serving(health: Arc<Health>) -> (String, watch::Sender<Option<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (fatal, receiver) = watch::channel(None);
        tokio::spawn(serve(listener, Arc::default(), health, receiver));
        (address, fatal)
    }

    #[tokio::test]
    async fn reports_ok_until_a_fatal_error() {
        let (address, fatal) = serving(Arc::new(Health::new(Duration::from_secs(60)))).await;
        assert!(check(&address).await.unwrap().healthy);
        fatal.send(Some("sink failed".into())).unwrap();
        let answer = check(&address).await.unwrap();
        assert!(!answer.healthy && answer.restart_helps);
        assert!(answer.body.contains("sink failed"), "{}", answer.body);
    }

    #[tokio::test]
    async fn names_each_reason_and_whether_a_restart_helps() {
        let health = Arc::new(Health::new(Duration::from_secs(60)));
        let (address, _fatal) = serving(health.clone()).await;
        health.failing(Concern::Sink(SinkKind::Lake), &"AccessDenied", true);
        let answer = check(&address).await.unwrap();
        assert!(!answer.healthy);
        assert!(!answer.restart_helps, "a refusal is not fixed by a restart");
        let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(body["reasons"][0]["what"], "lake writes");
        assert_eq!(body["reasons"][0]["kind"], "refused");
        assert_eq!(body["reasons"][0]["error"], "AccessDenied");
        health.recovered(Concern::Sink(SinkKind::Lake));
        assert!(check(&address).await.unwrap().healthy);
    }
}
