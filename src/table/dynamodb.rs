//! The ticks table in DynamoDB: `BatchWriteItem` in 25-item requests, several in flight, with
//! unprocessed items retried with backoff. A call returns only when every item is written.
//!
//! Tick items are the same whichever owner of a shard writes them, so a plain put is
//! idempotent. A one-minute bar is rewritten as its minute fills, so an owner that lost its lease
//! could write an older bar over a newer one: bars go one `PutItem` each (a batch cannot carry a
//! condition), on condition that the stored bar has no more trades, so a bar never goes back.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures::{StreamExt, TryStreamExt};

use super::{TableError, TicksTable};
use crate::aws;
use crate::failure::Failure;
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
                    failure: aws::failure(&error),
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
                    failure: Failure::Transient,
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

/// Writes one bar unless the table holds a later version of it (more trades); a later version
/// already there counts as written.
async fn put_bar(client: &Client, table_name: &str, item: &Item<'_>) -> Result<(), TableError> {
    let attributes = attribute_map(item);
    let trades = attributes
        .get("trades")
        .cloned()
        .expect("a bar item has its trades");
    let written = client
        .put_item()
        .table_name(table_name)
        .set_item(Some(attributes))
        .condition_expression("attribute_not_exists(trades) OR trades <= :trades")
        .expression_attribute_values(":trades", trades)
        .send()
        .await;
    match written {
        Ok(_) => Ok(()),
        Err(error) if error.code() == Some("ConditionalCheckFailedException") => {
            tracing::debug!("A later version of a bar is in the table; this one is not written.");
            Ok(())
        }
        Err(error) => Err(TableError::Write {
            items: 1,
            failure: aws::failure(&error),
            message: aws::describe(&error),
        }),
    }
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
        let mut bars = Vec::new();
        for item in items {
            if matches!(item, Item::Bar { .. }) {
                bars.push(put_bar(&self.client, &self.table_name, item));
                continue;
            }
            match batches.last_mut() {
                Some(batch) if batch.len() < BATCH => batch.push(write_request(item)),
                _ => batches.push(vec![write_request(item)]),
            }
        }
        futures::stream::iter(batches)
            .map(|batch| self.write_batch(batch))
            .buffer_unordered(self.concurrency)
            .try_collect::<()>()
            .await?;
        futures::stream::iter(bars)
            .buffer_unordered(self.concurrency)
            .try_collect::<()>()
            .await
    }
}
