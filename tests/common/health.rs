//! What a run's health endpoint says, asked until it says what a test waits for.

use std::time::{Duration, Instant};

use kinetick::health::endpoint::{Answer, check};

use super::stack::Run;

/// Asks the run's health endpoint until `wanted` holds (or a minute passed).
pub async fn health_until(run: &Run, what: &str, wanted: impl Fn(&Answer) -> bool) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(answer) = check(&run.health).await
            && wanted(&answer)
        {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "the health endpoint never said {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The reasons of an unhealthy answer: `(kind, what)`.
pub fn reasons(answer: &Answer) -> Vec<(String, String)> {
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    let reasons = body["reasons"].as_array().cloned().unwrap_or_default();
    reasons
        .iter()
        .map(|r| {
            let text = |field: &str| r[field].as_str().unwrap_or_default().to_owned();
            (text("kind"), text("what"))
        })
        .collect()
}
