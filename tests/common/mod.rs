//! What the AWS integration tests share: the emulator's endpoint (moto's server, started on a
//! loopback port by `scripts/test.sh`), SDK clients for it, and unique resource names.

#![allow(dead_code)]

pub mod fault_proxy;
pub mod health;
pub mod kafka;
pub mod lake;
pub mod stack;

use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_s3::config::Credentials;

pub const REGION: &str = "us-east-1";

/// The emulator's endpoint. The tests do not skip without it: they fail and say how to run them.
pub fn endpoint() -> String {
    std::env::var("AWS_EMULATOR_URL").expect(
        "AWS_EMULATOR_URL is not set: run the tests with scripts/test.sh, which starts the AWS emulator",
    )
}

/// The Kinesis emulator that reshards like Kinesis (kinesalite), for the resharding tests.
pub fn kinesis_endpoint() -> String {
    std::env::var("KINESIS_EMULATOR_URL").expect(
        "KINESIS_EMULATOR_URL is not set: run the tests with scripts/test.sh, which starts kinesalite",
    )
}

pub fn sdk_config() -> SdkConfig {
    sdk_config_at(&endpoint())
}

/// An SDK configuration for the emulator reached at `endpoint` (e.g. through a proxy).
pub fn sdk_config_at(endpoint: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
            Credentials::new(
                "ANOTREAL",
                "notrealrnrELgWzOk3IfjzDKtFBhDby",
                None,
                None,
                "tests",
            ),
        ))
        .build()
}

/// Environment of a `kinetick` process that talks to the emulator through the SDK's default chain.
pub fn aws_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "ANOTREAL".to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY",
            "notrealrnrELgWzOk3IfjzDKtFBhDby".to_owned(),
        ),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
}

/// A resource name no other test (or earlier run against the same emulator) uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    )
}

/// The bytes of one object.
pub async fn object_bytes(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> bytes::Bytes {
    let object = s3.get_object().bucket(bucket).key(key).send().await;
    let object = object.unwrap_or_else(|e| panic!("{key}: {e}"));
    object.body.collect().await.unwrap().into_bytes()
}

/// A new bucket, and a path-style client for it.
pub async fn bucket(config: &aws_config::SdkConfig) -> (aws_sdk_s3::Client, String) {
    let client = s3(config);
    let name = unique("bucket").to_lowercase();
    client.create_bucket().bucket(&name).send().await.unwrap();
    (client, name)
}

/// A new on-demand DynamoDB table with string keys; returns its name.
pub async fn table(client: &aws_sdk_dynamodb::Client, hash: &str, range: Option<&str>) -> String {
    let name = unique("table");
    let mut request = client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(hash)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(hash)
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        );
    if let Some(range) = range {
        request = request
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(range)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(range)
                    .key_type(KeyType::Range)
                    .build()
                    .unwrap(),
            );
    }
    request.send().await.unwrap();
    name
}

/// A new SNS topic; returns its ARN.
pub async fn topic(config: &SdkConfig) -> String {
    aws_sdk_sns::Client::new(config)
        .create_topic()
        .name(unique("alerts"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap()
}

/// A new SQS queue subscribed to `topic_arn`; returns the queue URL.
pub async fn subscribed_queue(config: &SdkConfig, topic_arn: &str) -> String {
    let sqs = aws_sdk_sqs::Client::new(config);
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("alerts"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    subscribe(config, topic_arn, &queue_url).await;
    queue_url
}

/// Subscribes the queue at `queue_url` to the topic.
async fn subscribe(config: &SdkConfig, topic_arn: &str, queue_url: &str) {
    let arn = aws_sdk_sqs::types::QueueAttributeName::QueueArn;
    let attributes = aws_sdk_sqs::Client::new(config)
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(arn.clone())
        .send()
        .await
        .unwrap();
    aws_sdk_sns::Client::new(config)
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(attributes.attributes().unwrap()[&arn].clone())
        .send()
        .await
        .unwrap();
}

/// Every message in the queue, as the SNS envelope it carries, deleting each once read (so none
/// is read twice, and a FIFO queue hands out the rest of a message group).
pub async fn drain_queue(config: &SdkConfig, queue_url: &str) -> Vec<serde_json::Value> {
    let sqs = aws_sdk_sqs::Client::new(config);
    let mut envelopes = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if received.messages().is_empty() {
            return envelopes;
        }
        for message in received.messages() {
            envelopes.push(serde_json::from_str(message.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

/// The alert inside an SNS envelope (its JSON body, as queues receive it).
pub fn alert_of(envelope: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap()
}

/// A new FIFO SNS topic and a FIFO SQS queue subscribed to it; returns the topic's ARN and the
/// queue's URL. SNS drops a message whose de-duplication id it took in the last five minutes.
pub async fn fifo_topic_and_queue(config: &SdkConfig) -> (String, String) {
    let (sns, sqs) = (
        aws_sdk_sns::Client::new(config),
        aws_sdk_sqs::Client::new(config),
    );
    let name = unique("alerts");
    let topic = sns
        .create_topic()
        .name(format!("{name}.fifo"))
        .attributes("FifoTopic", "true")
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("{name}.fifo"))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    subscribe(config, &topic, &queue_url).await;
    (topic, queue_url)
}

/// Sum of a metric's data points of the last hour (GetMetricStatistics).
pub async fn metric_sum(config: &SdkConfig, namespace: &str, name: &str) -> f64 {
    use aws_sdk_cloudwatch::primitives::DateTime;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let statistics = aws_sdk_cloudwatch::Client::new(config)
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(name)
        .start_time(DateTime::from_secs(now - 3600))
        .end_time(DateTime::from_secs(now + 600))
        .period(60)
        .statistics(aws_sdk_cloudwatch::types::Statistic::Sum)
        .send()
        .await
        .unwrap();
    statistics.datapoints().iter().filter_map(|d| d.sum()).sum()
}
