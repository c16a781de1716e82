//! The ticks table in DynamoDB: `BatchWriteItem` in 25-item requests, several in flight, with
//! unprocessed items retried with backoff. A call returns only when every item is written.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures::{StreamExt, TryStreamExt};

use super::{TableError, TicksTable};
use crate::aws;
use crate::model::item::{AttributeSink, Item};

/// Items per `BatchWriteItem` request (the API's limit).
const BATCH: usize = 25;
/// Unprocessed-item retries of one request before the write counts as failed (and the caller's
/// own retry writes the whole call again, which put semantics make harmless).
const UNPROCESSED_RETRIES: usize = 8;

pub struct DynamoTicksTable {
    client: Client,
    table_name: String,
    /// Requests in flight at once.
    concurrency: usize,
}

impl DynamoTicksTable {
    pub fn new(client: Client, table_name: impl Into<String>, concurrency: usize) -> Self {
        Self {
            client,
            table_name: table_name.into(),
            concurrency: concurrency.max(1),
        }
    }

    async fn write_batch(&self, mut requests: Vec<WriteRequest>) -> Result<(), TableError> {
        let mut delays =
            backon::BackoffBuilder::build(crate::retry::backoff()).take(UNPROCESSED_RETRIES);
        loop {
            let items = requests.len();
            let output = self
                .client
                .batch_write_item()
                .request_items(&self.table_name, requests)
                .send()
                .await
                .map_err(|error| TableError::Write {
                    items,
                    retryable: aws::is_retryable(&error),
                    message: aws::describe(&error),
                })?;
            requests = output
                .unprocessed_items
                .and_then(|mut u| u.remove(&self.table_name))
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
            let Some(delay) = delays.next() else {
                return Err(TableError::Write {
                    items: requests.len(),
                    retryable: true,
                    message: "items still unprocessed after retries (throttled)".into(),
                });
            };
            tracing::debug!(
                unprocessed = requests.len(),
                ?delay,
                "DynamoDB left items unprocessed, retrying."
            );
            tokio::time::sleep(delay).await;
        }
    }
}

/// The SDK form of an item.
fn attribute_map(item: &Item) -> HashMap<String, AttributeValue> {
    struct Attributes(HashMap<String, AttributeValue>);

    impl AttributeSink for Attributes {
        fn string(&mut self, name: &'static str, value: &str) {
            self.0.insert(name.into(), AttributeValue::S(value.into()));
        }

        fn number(&mut self, name: &'static str, value: &str) {
            self.0.insert(name.into(), AttributeValue::N(value.into()));
        }

        fn boolean(&mut self, name: &'static str, value: bool) {
            self.0.insert(name.into(), AttributeValue::Bool(value));
        }
    }

    let mut attributes = Attributes(HashMap::with_capacity(32));
    item.write(&mut attributes);
    attributes.0
}

fn write_request(item: &Item) -> WriteRequest {
    let put = PutRequest::builder()
        .set_item(Some(attribute_map(item)))
        .build()
        .expect("item is set");
    WriteRequest::builder().put_request(put).build()
}

#[async_trait]
impl TicksTable for DynamoTicksTable {
    async fn put_items(&self, items: &[Item<'_>]) -> Result<(), TableError> {
        let mut batches: Vec<Vec<WriteRequest>> = Vec::with_capacity(items.len().div_ceil(BATCH));
        for chunk in items.chunks(BATCH) {
            batches.push(chunk.iter().map(write_request).collect());
        }
        futures::stream::iter(batches)
            .map(|batch| self.write_batch(batch))
            .buffer_unordered(self.concurrency)
            .try_collect::<()>()
            .await
    }
}
