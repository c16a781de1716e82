//! The health endpoint of a running pipeline (`GET /health`), for the container's health check,
//! and the client side used by `kinetick health`.
//!
//! 200 with a small JSON status while the pipeline works; 503 once a fatal error stopped it.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::metrics::{Counter, Metrics};

/// Serves the endpoint on `listener` until the process ends.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    fatal: watch::Receiver<Option<String>>,
) {
    loop {
        let Ok((mut connection, _)) = listener.accept().await else {
            continue;
        };
        let (metrics, fatal) = (metrics.clone(), fatal.clone());
        tokio::spawn(async move {
            // The request itself does not matter: every path answers with the status.
            let mut request = [0u8; 1024];
            let _ =
                tokio::time::timeout(Duration::from_secs(2), connection.read(&mut request)).await;
            let (status, body) = match &*fatal.borrow() {
                None => (
                    "200 OK",
                    serde_json::json!({"status": "ok", "records": metrics.total(Counter::RecordsProcessed)}),
                ),
                Some(error) => (
                    "503 Service Unavailable",
                    serde_json::json!({"status": "failed", "error": error}),
                ),
            };
            let body = body.to_string();
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = connection.write_all(response.as_bytes()).await;
        });
    }
}

/// Asks a health endpoint (`host:port`) and tells whether it answered 200.
pub async fn check(address: &str) -> anyhow::Result<bool> {
    let mut stream =
        tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(address)).await??;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut response)).await??;
    Ok(response.starts_with(b"HTTP/1.1 200"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_ok_until_a_fatal_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (fatal, receiver) = watch::channel(None);
        tokio::spawn(serve(listener, Arc::new(Metrics::default()), receiver));
        assert!(check(&address).await.unwrap());
        fatal.send(Some("sink failed".into())).unwrap();
        assert!(!check(&address).await.unwrap());
    }
}
