//! A fault-injecting HTTP proxy in front of the AWS emulator: requests pass through to it,
//! except that the first N requests matching a rule get an injected error response instead
//! (throttling, 5xx, an expired iterator), the way AWS answers under load, or, for Kinesis
//! `PutRecords`, a partial failure: some entries are held back from the emulator and reported as
//! throttled, the rest are written. The SDK clients under test talk to the proxy as they would to
//! AWS; nothing of the SDK is faked.
//!
//! One request per connection upstream (`Connection: close`), which is all the tests need.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An error response in the wire format of the service's protocol.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// JSON protocols (Kinesis, DynamoDB): 400 with the given exception type.
    JsonError(&'static str),
    /// JSON protocols: 500 InternalFailure.
    JsonInternalError,
    /// Query protocols (SNS, CloudWatch): 500 InternalFailure.
    QueryInternalError,
    /// Query protocols: a client error with the given HTTP status line and error code (for
    /// SNS, `400 Bad Request` `InvalidParameter`, or `403 Forbidden` `AuthorizationError`).
    QueryError(&'static str, &'static str),
    /// S3: 503 SlowDown.
    S3SlowDown,
    /// S3: 403 AccessDenied (a bucket policy or role without the permission).
    S3AccessDenied,
    /// No answer at all: the connection stays open until the client gives up (a hung call).
    BlackHole,
}

impl Fault {
    fn response(self) -> String {
        let (status, content_type, body) = match self {
            Fault::JsonError(kind) => (
                "400 Bad Request",
                "application/x-amz-json-1.1",
                format!(r#"{{"__type":"{kind}","message":"injected {kind}"}}"#),
            ),
            Fault::JsonInternalError => (
                "500 Internal Server Error",
                "application/x-amz-json-1.1",
                r#"{"__type":"InternalFailure","message":"injected"}"#.to_owned(),
            ),
            Fault::QueryInternalError => (
                "500 Internal Server Error",
                "text/xml",
                "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code>\
                 <Message>injected</Message></Error><RequestId>fault</RequestId></ErrorResponse>"
                    .to_owned(),
            ),
            Fault::QueryError(status, code) => (
                status,
                "text/xml",
                format!(
                    "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
                     <Message>injected {code}</Message></Error><RequestId>fault</RequestId>\
                     </ErrorResponse>"
                ),
            ),
            Fault::S3SlowDown => (
                "503 Slow Down",
                "application/xml",
                "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>\
                 <RequestId>fault</RequestId></Error>"
                    .to_owned(),
            ),
            Fault::S3AccessDenied => (
                "403 Forbidden",
                "application/xml",
                "<Error><Code>AccessDenied</Code><Message>Access Denied</Message>\
                 <RequestId>fault</RequestId></Error>"
                    .to_owned(),
            ),
            Fault::BlackHole => unreachable!("a black hole does not answer"),
        };
        let error_type = match self {
            Fault::JsonError(kind) => format!("x-amzn-ErrorType: {kind}\r\n"),
            _ => String::new(),
        };
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n{error_type}content-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        )
    }
}

struct Rule {
    /// Matched against the request's head and body, e.g. `Kinesis_20131202.GetRecords`,
    /// `Action=Publish` or `PUT /`.
    needle: String,
    remaining: usize,
    fault: Fault,
}

/// Partial failures of the next `remaining` `PutRecords` requests: every `every`-th entry fails.
struct PartialRule {
    remaining: usize,
    every: usize,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    partial: Option<PartialRule>,
    /// Head and body of every request seen, in order.
    seen: Vec<String>,
}

pub struct FaultProxy {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Starts the proxy on a free loopback port, forwarding to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let (client, _) = listener.accept().await.unwrap();
                tokio::spawn(serve(client, upstream.clone(), shared.clone()));
            }
        });
        Self { url, state }
    }

    /// Answers the next `times` requests containing `needle` with `fault`.
    pub fn fail(&self, needle: &str, times: usize, fault: Fault) {
        self.state.lock().unwrap().rules.push(Rule {
            needle: needle.to_owned(),
            remaining: times,
            fault,
        });
    }

    /// Answers every request containing `needle` with `fault` until [`FaultProxy::clear`].
    pub fn fail_always(&self, needle: &str, fault: Fault) {
        self.fail(needle, usize::MAX, fault);
    }

    /// Drops every rule: requests pass through again.
    pub fn clear(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    /// Fails every `every`-th entry (from the first) of the next `times` `PutRecords` requests
    /// with `ProvisionedThroughputExceededException`; the other entries reach the emulator.
    pub fn fail_put_records_entries(&self, times: usize, every: usize) {
        self.state.lock().unwrap().partial = Some(PartialRule {
            remaining: times,
            every,
        });
    }

    /// Requests seen so far that contain `needle` (answered with a fault or passed through).
    pub fn requests(&self, needle: &str) -> usize {
        let state = self.state.lock().unwrap();
        state.seen.iter().filter(|r| r.contains(needle)).count()
    }
}

/// Serves one request of a client connection; every response says `connection: close`.
async fn serve(mut client: TcpStream, upstream: String, state: Arc<Mutex<State>>) {
    if let Some(request) = read_request(&mut client).await {
        let text = String::from_utf8_lossy(&request).into_owned();
        let partial = {
            let mut state = state.lock().unwrap();
            match &mut state.partial {
                Some(rule)
                    if rule.remaining > 0 && text.contains("Kinesis_20131202.PutRecords") =>
                {
                    rule.remaining -= 1;
                    Some(rule.every)
                }
                _ => None,
            }
        };
        if let Some(every) = partial {
            state.lock().unwrap().seen.push(text);
            let response = forward_partially(&request, &upstream, every).await;
            let _ = client.write_all(&response).await;
            return;
        }
        let fault = {
            let mut state = state.lock().unwrap();
            state.seen.push(text.clone());
            state
                .rules
                .iter_mut()
                .find(|rule| rule.remaining > 0 && text.contains(&rule.needle))
                .map(|rule| {
                    rule.remaining -= 1;
                    rule.fault
                })
        };
        let response = match fault {
            Some(Fault::BlackHole) => {
                // Read until the client hangs up: it times out and abandons the call.
                let mut rest = [0u8; 1024];
                while matches!(client.read(&mut rest).await, Ok(n) if n > 0) {}
                return;
            }
            Some(fault) => fault.response().into_bytes(),
            None => forward(&request, &upstream).await,
        };
        // A client that went away (e.g. timed out) is not the proxy's problem.
        let _ = client.write_all(&response).await;
    }
}

/// One request (head and `Content-Length` body), or `None` at the end of the connection.
async fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut request = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = find(&request, b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        request.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().unwrap());
    while request.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        request.extend_from_slice(&chunk[..n]);
    }
    Some(request)
}

/// Sends the request upstream on a new connection and returns the whole response.
async fn forward(request: &[u8], upstream: &str) -> Vec<u8> {
    let head_end = find(request, b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&request[..head_end]);
    let mut rewritten: String = head
        .trim_end()
        .lines()
        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
        .map(|line| format!("{line}\r\n"))
        .collect();
    rewritten.push_str("connection: close\r\n\r\n");
    let mut server = TcpStream::connect(upstream).await.unwrap();
    server.write_all(rewritten.as_bytes()).await.unwrap();
    server.write_all(&request[head_end..]).await.unwrap();
    let mut response = Vec::new();
    server.read_to_end(&mut response).await.unwrap();
    force_close(response)
}

/// Forwards a `PutRecords` request without every `every`-th entry, and answers with the
/// emulator's results for the others and a throttling error for those held back, in order.
async fn forward_partially(request: &[u8], upstream: &str, every: usize) -> Vec<u8> {
    let head_end = find(request, b"\r\n\r\n").unwrap() + 4;
    let mut body: serde_json::Value = serde_json::from_slice(&request[head_end..]).unwrap();
    let entries = body["Records"].as_array().unwrap().clone();
    let held_back = |i: usize| i.is_multiple_of(every);
    let passed: Vec<_> = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| !held_back(*i))
        .map(|(_, e)| e.clone())
        .collect();
    let mut results = Vec::new();
    if !passed.is_empty() {
        body["Records"] = serde_json::Value::Array(passed);
        let new_body = serde_json::to_vec(&body).unwrap();
        let head = String::from_utf8_lossy(&request[..head_end]);
        let mut rewritten: Vec<u8> = head
            .trim_end()
            .lines()
            .filter(|line| !line.to_ascii_lowercase().starts_with("content-length:"))
            .flat_map(|line| format!("{line}\r\n").into_bytes())
            .collect();
        rewritten.extend(format!("content-length: {}\r\n\r\n", new_body.len()).into_bytes());
        rewritten.extend(new_body);
        let response = forward(&rewritten, upstream).await;
        let body_start = find(&response, b"\r\n\r\n").unwrap() + 4;
        let upstream_body: serde_json::Value =
            serde_json::from_slice(&response[body_start..]).unwrap();
        results = upstream_body["Records"].as_array().unwrap().clone();
    }
    let mut written = results.into_iter();
    let merged: Vec<serde_json::Value> = (0..entries.len())
        .map(|i| match held_back(i) {
            true => serde_json::json!({
                "ErrorCode": "ProvisionedThroughputExceededException",
                "ErrorMessage": "injected partial failure"
            }),
            false => written.next().unwrap(),
        })
        .collect();
    let failed = merged
        .iter()
        .filter(|r| r.get("ErrorCode").is_some())
        .count();
    let body = serde_json::to_string(&serde_json::json!({
        "FailedRecordCount": failed,
        "Records": merged
    }))
    .unwrap();
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Makes the response say `connection: close`, so the client does not reuse the connection.
fn force_close(response: Vec<u8>) -> Vec<u8> {
    let Some(head_end) = find(&response, b"\r\n\r\n") else {
        return response;
    };
    let head = String::from_utf8_lossy(&response[..head_end]);
    let mut out: String = head
        .lines()
        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
        .map(|line| format!("{line}\r\n"))
        .collect();
    out.push_str("connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&response[head_end + 4..]);
    bytes
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
