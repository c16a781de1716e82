//! Checkpoints in a DynamoDB table keyed by `shard_id` (S): the position, the end-of-shard flag,
//! and the window snapshot, inline while small and in the object store when large (DynamoDB
//! items are limited to 400 KB).
//!
//! Each save updates only the checkpoint attributes of the shard's item, so other attributes of
//! the same item (the shard's lease) are left alone.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;

use super::{Checkpoint, CheckpointError, CheckpointStore, ShardSnapshot};
use crate::aws;
use crate::model::tick::{Position, SequenceNumber};
use crate::objects::ObjectStore;

/// Snapshots up to this size (bytes of JSON) stay in the item; larger ones go to the object
/// store. Small, because every worker scans the lease table every poll and a scan is billed by
/// whole item size, projection or not.
const INLINE_SNAPSHOT_MAX: usize = 4 * 1024;

pub struct DynamoCheckpointStore {
    client: Client,
    table_name: String,
    /// Where large snapshots go, under `{prefix}checkpoints/`.
    objects: Arc<dyn ObjectStore>,
    prefix: String,
}

impl DynamoCheckpointStore {
    pub fn new(
        client: Client,
        table_name: impl Into<String>,
        objects: Arc<dyn ObjectStore>,
        prefix: impl Into<String>,
    ) -> Self {
        Self {
            client,
            table_name: table_name.into(),
            objects,
            prefix: prefix.into(),
        }
    }

    fn snapshot_key(&self, shard_id: &str, position: &Position) -> String {
        format!("{}checkpoints/{shard_id}/{position}.json", self.prefix)
    }
}

fn read_error(shard: &str, message: impl Into<String>, retryable: bool) -> CheckpointError {
    CheckpointError::Read {
        shard: shard.to_owned(),
        message: message.into(),
        retryable,
    }
}

fn write_error(shard: &str, message: impl Into<String>, retryable: bool) -> CheckpointError {
    CheckpointError::Write {
        shard: shard.to_owned(),
        message: message.into(),
        retryable,
    }
}

#[async_trait]
impl CheckpointStore for DynamoCheckpointStore {
    async fn load(&self, shard_id: &str) -> Result<Option<Checkpoint>, CheckpointError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .key("shard_id", AttributeValue::S(shard_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| read_error(shard_id, aws::describe(&e), aws::is_retryable(&e)))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let Some(sequence) = text("sequence_number") else {
            return Ok(None);
        };
        let sub_sequence = item
            .get("sub_sequence_number")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let shard_end = item
            .get("shard_end")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false);
        let snapshot_json = match (text("snapshot"), text("snapshot_key")) {
            (Some(inline), _) => Bytes::from(inline),
            (None, Some(key)) => self
                .objects
                .get(&key)
                .await
                .map_err(|e| read_error(shard_id, e.to_string(), e.is_retryable()))?
                .ok_or_else(|| {
                    read_error(shard_id, format!("snapshot object {key} is missing"), false)
                })?,
            (None, None) => Bytes::from_static(b"{}"),
        };
        let snapshot: ShardSnapshot = serde_json::from_slice(&snapshot_json)
            .map_err(|e| read_error(shard_id, format!("snapshot is not valid: {e}"), false))?;
        Ok(Some(Checkpoint {
            shard_id: shard_id.to_owned(),
            position: Position::new(SequenceNumber::new(sequence), sub_sequence),
            shard_end,
            snapshot,
            fence: None,
        }))
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        let shard_id = checkpoint.shard_id.as_str();
        let snapshot = serde_json::to_string(&checkpoint.snapshot).expect("snapshot serializes");
        let (attribute, value) = if snapshot.len() <= INLINE_SNAPSHOT_MAX {
            ("snapshot", snapshot)
        } else {
            let key = self.snapshot_key(shard_id, &checkpoint.position);
            self.objects
                .put(&key, Bytes::from(snapshot), "application/json")
                .await
                .map_err(|e| write_error(shard_id, e.to_string(), e.is_retryable()))?;
            ("snapshot_key", key)
        };
        let other = if attribute == "snapshot" {
            "snapshot_key"
        } else {
            "snapshot"
        };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .key("shard_id", AttributeValue::S(shard_id.to_owned()))
            // `snapshot` is a DynamoDB reserved word, so both snapshot attributes go by name.
            .update_expression(
                "SET sequence_number = :seq, sub_sequence_number = :sub, shard_end = :end, #set = :snap, \
                 checkpointed_at = :at REMOVE #unset",
            )
            .expression_attribute_names("#set", attribute)
            .expression_attribute_names("#unset", other)
            .expression_attribute_values(":seq", AttributeValue::S(checkpoint.position.sequence.to_string()))
            .expression_attribute_values(":sub", AttributeValue::N(checkpoint.position.sub_sequence.to_string()))
            .expression_attribute_values(":end", AttributeValue::Bool(checkpoint.shard_end))
            .expression_attribute_values(":snap", AttributeValue::S(value))
            .expression_attribute_values(":at", AttributeValue::S(chrono::Utc::now().to_rfc3339()));
        if let Some(fence) = &checkpoint.fence {
            request = request
                .condition_expression("lease_owner = :owner AND lease_counter = :counter")
                .expression_attribute_values(":owner", AttributeValue::S(fence.owner.to_string()))
                .expression_attribute_values(
                    ":counter",
                    AttributeValue::N(fence.counter.to_string()),
                );
        }
        request.send().await.map_err(|e| {
            if e.code() == Some("ConditionalCheckFailedException") {
                CheckpointError::LeaseLost {
                    shard: shard_id.to_owned(),
                }
            } else {
                write_error(shard_id, aws::describe(&e), aws::is_retryable(&e))
            }
        })?;
        Ok(())
    }
}
