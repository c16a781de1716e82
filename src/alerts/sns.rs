//! Alerts as SNS messages: a human subject and body for e-mail and SMS, the alert as JSON for
//! queues and functions, and `symbol`, `kind` and `severity` message attributes so subscribers
//! can filter.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;

use super::{AlertError, AlertSink};
use crate::aws;
use crate::model::rules::Alert;

/// SNS subjects are limited to 100 printable ASCII characters.
const MAX_SUBJECT: usize = 100;

pub struct SnsAlertSink {
    client: Client,
    topic_arn: String,
}

impl SnsAlertSink {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

/// The subject line: the alert's message, reduced to what SNS accepts.
pub fn subject(alert: &Alert) -> String {
    let printable: String = alert
        .message
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    printable.chars().take(MAX_SUBJECT).collect()
}

/// The human body (e-mail, SMS and the default).
pub fn human_body(alert: &Alert) -> String {
    let time = chrono::DateTime::from_timestamp_millis(alert.event_time_ms).map_or_else(
        || alert.event_time_ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    );
    format!(
        "{}\n\nSymbol: {}\nRule: {}\nSeverity: {}\nValue: {}\nThreshold: {}\nPrice: {:.2}\nTime: {}\nAlert id: {}\n",
        alert.message,
        alert.symbol,
        alert.kind.as_str(),
        alert.severity.as_str(),
        alert.value,
        alert.threshold,
        alert.price,
        time,
        alert.id
    )
}

/// The SNS message with one body per protocol (`MessageStructure=json`).
pub fn message_json(alert: &Alert) -> String {
    let human = human_body(alert);
    let json = serde_json::to_string(alert).expect("alert serializes");
    serde_json::json!({
        "default": human,
        "email": human,
        "sms": alert.message,
        "sqs": json,
        "lambda": json,
        "http": json,
        "https": json,
    })
    .to_string()
}

fn attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data type is set")
}

#[async_trait]
impl AlertSink for SnsAlertSink {
    async fn publish(&self, alert: &Alert) -> Result<(), AlertError> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject(alert))
            .message_structure("json")
            .message(message_json(alert))
            .message_attributes("symbol", attribute(&alert.symbol))
            .message_attributes("kind", attribute(alert.kind.as_str()))
            .message_attributes("severity", attribute(alert.severity.as_str()))
            .send()
            .await
            .map_err(|error| AlertError::Publish {
                alert_id: alert.id.clone(),
                retryable: aws::is_retryable(&error),
                message: aws::describe(&error),
            })?;
        Ok(())
    }
}
