//! Alerts as SNS messages: a human subject and body for e-mail and SMS, the alert as JSON for
//! queues and functions, and `alert_id`, `symbol`, `kind` and `severity` message attributes so
//! subscribers can filter and drop repeats without parsing the body.
//!
//! On a FIFO topic (its name ends in `.fifo`) each message also carries the symbol as its group
//! and a digest of the alert id as its de-duplication id, so SNS itself drops a repeat published
//! within its five-minute de-duplication window.
//!
//! The same topic also takes [`Notice`]s, messages for people that are not alerts (`kinetick
//! report`'s daily digest): one text body for every protocol, and a `kind` attribute that
//! subscription filters can take or leave them by.

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
    fifo: bool,
}

impl SnsAlertSink {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        let topic_arn = topic_arn.into();
        Self {
            client,
            fifo: topic_arn.ends_with(".fifo"),
            topic_arn,
        }
    }
}

/// A FIFO topic's de-duplication id for an alert: at most 128 characters, so a digest of the
/// alert id (which can be longer, and hold any character a symbol holds).
pub fn deduplication_id(alert: &Alert) -> String {
    crate::model::digest::hex_md5(alert.id.as_bytes())
}

/// A message for people that is not an alert, such as the daily digest of `kinetick report`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Stable for the same content (`digest/2026-01-05`): a FIFO topic drops a repeat by it.
    pub id: String,
    /// The `kind` message attribute (`digest`); never one of the alert kinds.
    pub kind: &'static str,
    pub subject: String,
    /// Plain text, for a mail client.
    pub body: String,
}

/// The subject line: the alert's message, reduced to what SNS accepts.
pub fn subject(alert: &Alert) -> String {
    subject_line(&alert.message)
}

/// `text` reduced to what SNS accepts as a subject: at most [`MAX_SUBJECT`] printable ASCII
/// characters.
pub fn subject_line(text: &str) -> String {
    let printable: String = text
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

impl SnsAlertSink {
    /// Publishes a notice once (the caller decides about retries): the same body for every
    /// protocol, `kind` as its only attribute; on a FIFO topic the kind is its group and a digest
    /// of its id its de-duplication id.
    pub async fn publish_notice(&self, notice: &Notice) -> Result<(), AlertError> {
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject_line(&notice.subject))
            .message(&notice.body)
            .message_attributes("kind", attribute(notice.kind));
        if self.fifo {
            request = request
                .message_group_id(notice.kind)
                .message_deduplication_id(crate::model::digest::hex_md5(notice.id.as_bytes()));
        }
        request.send().await.map_err(|error| AlertError::Publish {
            alert_id: notice.id.clone(),
            failure: aws::failure(&error),
            message: aws::describe(&error),
        })?;
        Ok(())
    }
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
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject(alert))
            .message_structure("json")
            .message(message_json(alert))
            .message_attributes("alert_id", attribute(&alert.id))
            .message_attributes("symbol", attribute(&alert.symbol))
            .message_attributes("kind", attribute(alert.kind.as_str()))
            .message_attributes("severity", attribute(alert.severity.as_str()));
        if self.fifo {
            request = request
                .message_group_id(alert.symbol.as_str())
                .message_deduplication_id(deduplication_id(alert));
        }
        request.send().await.map_err(|error| AlertError::Publish {
            alert_id: alert.id.clone(),
            failure: aws::failure(&error),
            message: aws::describe(&error),
        })?;
        Ok(())
    }
}
