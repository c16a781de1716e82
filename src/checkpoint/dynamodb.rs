//! Checkpoints in a DynamoDB table keyed by `shard_id` (S): the position, the end-of-shard flag,
//! and the window snapshot ([`super::snapshot`]'s CBOR), inline while small and in the object
//! store when large (DynamoDB items are limited to 400 KB).
//!
//! Each save updates only the checkpoint attributes of the shard's item, so other attributes of
//! the same item (the shard's lease) are left alone. A snapshot object is deleted once a newer
//! checkpoint of its shard is saved, so the bucket holds one snapshot per shard (plus, after a
//! crash between the two steps, an orphan).
//!
//! The shard's marks (the end reserved for its next files, how far its alerts are published) are
//! attributes of the same item holding their JSON, written with the same fence as a checkpoint;
//! a save removes the files end, which only holds for the checkpoint it followed.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use bytes::Bytes;

use super::{Checkpoint, CheckpointError, CheckpointStore, Mark, Marks, snapshot};
use crate::aws;
use crate::lease::Fence;
use crate::model::tick::{Position, SequenceNumber};
use crate::objects::ObjectStore;

/// Snapshots up to this size (bytes) stay in the item; larger ones go to the object
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

    /// The object of a large snapshot. A fenced writer's key names its lease counter: a worker
    /// that lost the lease deletes the object of its refused checkpoint, which must never be the
    /// object the new holder wrote for the same position.
    fn snapshot_key(&self, checkpoint: &Checkpoint) -> String {
        let (prefix, shard_id, position) =
            (&self.prefix, &checkpoint.shard_id, &checkpoint.position);
        match &checkpoint.fence {
            Some(fence) => format!(
                "{prefix}checkpoints/{shard_id}/{position}-lease{}.cbor",
                fence.counter
            ),
            None => format!("{prefix}checkpoints/{shard_id}/{position}.cbor"),
        }
    }

    /// Deletes a snapshot object no checkpoint refers to. A failure only leaves an orphan behind
    /// (the checkpoint itself is durable), so it is logged rather than returned.
    async fn delete_snapshot(&self, key: &str) {
        if let Err(error) = self.objects.delete(key).await {
            tracing::warn!(%error, key, "Could not delete a superseded checkpoint snapshot.");
        }
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

/// Makes an update conditional on the lease being `fence`'s.
fn fenced(
    request: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    fence: &Fence,
) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
    request
        .condition_expression("lease_owner = :owner AND lease_counter = :counter")
        .expression_attribute_values(":owner", AttributeValue::S(fence.owner.to_string()))
        .expression_attribute_values(":counter", AttributeValue::N(fence.counter.to_string()))
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
        // Inline snapshots are binary (B); earlier versions wrote JSON text (S).
        let inline = item.get("snapshot").and_then(|value| match value {
            AttributeValue::B(blob) => Some(Bytes::copy_from_slice(blob.as_ref())),
            AttributeValue::S(text) => Some(Bytes::from(text.clone())),
            _ => None,
        });
        let encoded = match (inline, text("snapshot_key")) {
            (Some(inline), _) => inline,
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
        let snapshot = snapshot::decode(&encoded).map_err(|e| read_error(shard_id, e, false))?;
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
        let encoded = snapshot::encode(&checkpoint.snapshot);
        let (attribute, value, written_key) = if encoded.len() <= INLINE_SNAPSHOT_MAX {
            ("snapshot", AttributeValue::B(Blob::new(encoded)), None)
        } else {
            let key = self.snapshot_key(checkpoint);
            self.objects
                .put(&key, Bytes::from(encoded), "application/cbor")
                .await
                .map_err(|e| write_error(shard_id, e.to_string(), e.is_retryable()))?;
            ("snapshot_key", AttributeValue::S(key.clone()), Some(key))
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
                 checkpointed_at = :at REMOVE #unset, files_end",
            )
            .expression_attribute_names("#set", attribute)
            .expression_attribute_names("#unset", other)
            .expression_attribute_values(":seq", AttributeValue::S(checkpoint.position.sequence.to_string()))
            .expression_attribute_values(":sub", AttributeValue::N(checkpoint.position.sub_sequence.to_string()))
            .expression_attribute_values(":end", AttributeValue::Bool(checkpoint.shard_end))
            .expression_attribute_values(":snap", value)
            .expression_attribute_values(":at", AttributeValue::S(chrono::Utc::now().to_rfc3339()))
            // The previous snapshot's key comes back, to delete that object once it is superseded.
            .return_values(ReturnValue::UpdatedOld);
        if let Some(fence) = &checkpoint.fence {
            request = fenced(request, fence);
        }
        let previous = match request.send().await {
            Ok(output) => output.attributes,
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                // The checkpoint was refused, so nothing refers to the snapshot just written.
                if let Some(key) = &written_key {
                    self.delete_snapshot(key).await;
                }
                return Err(CheckpointError::LeaseLost {
                    shard: shard_id.to_owned(),
                });
            }
            // Not deleted: the update may have been applied before the error.
            Err(e) => {
                return Err(write_error(
                    shard_id,
                    aws::describe(&e),
                    aws::is_retryable(&e),
                ));
            }
        };
        let superseded = previous
            .as_ref()
            .and_then(|old| old.get("snapshot_key")?.as_s().ok())
            .filter(|old_key| written_key.as_ref() != Some(*old_key));
        if let Some(key) = superseded {
            self.delete_snapshot(key).await;
        }
        Ok(())
    }

    async fn mark(&self, fence: &Fence, mark: &Mark) -> Result<(), CheckpointError> {
        let shard_id = &*fence.shard_id;
        let (name, json) = mark.stored();
        let request = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .key("shard_id", AttributeValue::S(shard_id.to_owned()))
            .update_expression("SET #mark = :mark")
            .expression_attribute_names("#mark", name)
            .expression_attribute_values(":mark", AttributeValue::S(json));
        match fenced(request, fence).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                Err(CheckpointError::LeaseLost {
                    shard: shard_id.to_owned(),
                })
            }
            Err(e) => Err(write_error(
                shard_id,
                aws::describe(&e),
                aws::is_retryable(&e),
            )),
        }
    }

    async fn marks(&self, shard_id: &str) -> Result<Marks, CheckpointError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .key("shard_id", AttributeValue::S(shard_id.to_owned()))
            .projection_expression("#files, #alerts, #sinks")
            .expression_attribute_names("#files", Marks::FILES_END)
            .expression_attribute_names("#alerts", Marks::ALERTS_PUBLISHED)
            .expression_attribute_names("#sinks", Marks::SINKS_DURABLE)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| read_error(shard_id, aws::describe(&e), aws::is_retryable(&e)))?;
        let item = output.item.unwrap_or_default();
        let stored = item
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.as_s().ok()?.as_str())));
        Marks::from_stored(stored).map_err(|m| read_error(shard_id, m, false))
    }
}
