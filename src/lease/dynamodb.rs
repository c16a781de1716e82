//! Leases in DynamoDB: the lease attributes of the shard's item in the checkpoint table (key
//! `shard_id`), so a lease and its checkpoint live and are fenced together.
//!
//! Every change is an `UpdateItem` with a condition on what was read; a refused condition is a
//! [`LeaseError::Conflict`]. Reads are one paginated `Scan` that projects only the lease
//! attributes (the snapshot stays behind).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::{Fence, Lease, LeaseError, LeaseStore, Release};
use crate::aws;
use crate::model::ids::WorkerId;

const OWNER: &str = "lease_owner";
const COUNTER: &str = "lease_counter";
const HEARTBEAT: &str = "lease_heartbeat";
const PARENTS: &str = "parent_shard_ids";
const HANDOFF_TO: &str = "handoff_to";
/// Who released the lease last (the hand-off marker), for operators reading the table.
const HANDOFF_FROM: &str = "handoff_from";
const SHARD_END: &str = "shard_end";

pub struct DynamoLeaseStore {
    client: Client,
    table_name: String,
}

impl DynamoLeaseStore {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table_name: table_name.into(),
        }
    }

    /// An update of a shard's lease item, with `:now` the time of `now` (for the item's
    /// `lease_*_at` attributes, which only people read).
    fn update_at(
        &self,
        shard_id: &str,
        now: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table_name)
            .key("shard_id", AttributeValue::S(shard_id.to_owned()))
            .expression_attribute_values(":now", s(now))
    }

    fn update(
        &self,
        shard_id: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.update_at(shard_id, &chrono::Utc::now().to_rfc3339())
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn request_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    shard: &str,
    error: aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> LeaseError {
    if error.code() == Some("ConditionalCheckFailedException") {
        return LeaseError::Conflict {
            shard: shard.into(),
        };
    }
    LeaseError::Request {
        retryable: aws::is_retryable(&error),
        message: aws::describe(&error),
    }
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> Option<WorkerId> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(|s| s.as_str().into())
}

fn lease(item: &HashMap<String, AttributeValue>) -> Option<Lease> {
    Some(Lease {
        shard_id: text(item, "shard_id")?,
        owner: text(item, OWNER),
        counter: number(item, COUNTER),
        heartbeat: number(item, HEARTBEAT),
        shard_end: item
            .get(SHARD_END)
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        parents: item
            .get(PARENTS)
            .and_then(|v| v.as_l().ok())
            .map(|list| {
                list.iter()
                    .filter_map(|p| p.as_s().ok())
                    .map(|p| p.as_str().into())
                    .collect()
            })
            .unwrap_or_default(),
        handoff_to: text(item, HANDOFF_TO),
    })
}

/// The condition that the lease is still as `read` saw it. Counters start absent on items made by
/// a checkpoint before any lease, so zero also matches a missing attribute.
fn unchanged(read: &Lease) -> (String, Vec<(&'static str, AttributeValue)>) {
    let owner = match &read.owner {
        Some(_) => format!("{OWNER} = :read_owner"),
        None => format!("attribute_not_exists({OWNER})"),
    };
    let number = |name: &str, placeholder: &str, value: u64| match value {
        0 => format!("(attribute_not_exists({name}) OR {name} = {placeholder})"),
        _ => format!("{name} = {placeholder}"),
    };
    let condition = format!(
        "{owner} AND {} AND {}",
        number(COUNTER, ":read_counter", read.counter),
        number(HEARTBEAT, ":read_heartbeat", read.heartbeat)
    );
    let mut values = vec![
        (":read_counter", n(read.counter)),
        (":read_heartbeat", n(read.heartbeat)),
    ];
    if let Some(owner) = &read.owner {
        values.push((":read_owner", s(owner)));
    }
    (condition, values)
}

#[async_trait]
impl LeaseStore for DynamoLeaseStore {
    async fn list(&self) -> Result<Vec<Lease>, LeaseError> {
        let projection = format!(
            "shard_id, {OWNER}, {COUNTER}, {HEARTBEAT}, {PARENTS}, {HANDOFF_TO}, {SHARD_END}"
        );
        let mut leases = Vec::new();
        let mut start_key = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table_name)
                .projection_expression(&projection)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| request_error("*", e))?;
            leases.extend(output.items().iter().filter_map(lease));
            start_key = output.last_evaluated_key;
            if start_key.is_none() {
                return Ok(leases);
            }
        }
    }

    async fn create(&self, lease: &Lease) -> Result<bool, LeaseError> {
        let parents = lease.parents.iter().map(|p| s(p)).collect();
        let now = chrono::Utc::now().to_rfc3339();
        let output = self
            .update_at(&lease.shard_id, &now)
            .update_expression(format!(
                "SET {COUNTER} = if_not_exists({COUNTER}, :zero), \
                 {HEARTBEAT} = if_not_exists({HEARTBEAT}, :zero), {PARENTS} = :parents, \
                 lease_created_at = if_not_exists(lease_created_at, :now)"
            ))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":parents", AttributeValue::L(parents))
            // Created now if its creation time is this call's (the item's snapshot is not
            // read back, as the whole old item would be).
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| request_error(&lease.shard_id, e))?;
        let created_at = output
            .attributes()
            .and_then(|after| after.get("lease_created_at"))
            .and_then(|at| at.as_s().ok());
        Ok(created_at == Some(&now))
    }

    async fn take(&self, read: &Lease, worker: &WorkerId) -> Result<Lease, LeaseError> {
        let (condition, values) = unchanged(read);
        let mut request = self
            .update(&read.shard_id)
            .update_expression(format!(
                "SET {OWNER} = :me, {COUNTER} = :counter, {HEARTBEAT} = :zero, \
                 lease_changed_at = :now REMOVE {HANDOFF_TO}"
            ))
            .condition_expression(condition)
            .expression_attribute_values(":me", s(worker))
            .expression_attribute_values(":counter", n(read.counter + 1))
            .expression_attribute_values(":zero", n(0));
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        request
            .send()
            .await
            .map_err(|e| request_error(&read.shard_id, e))?;
        Ok(Lease {
            owner: Some(worker.clone()),
            counter: read.counter + 1,
            heartbeat: 0,
            handoff_to: None,
            ..read.clone()
        })
    }

    async fn renew(&self, fence: &Fence) -> Result<(), LeaseError> {
        self.update(&fence.shard_id)
            .update_expression(format!(
                "SET {HEARTBEAT} = {HEARTBEAT} + :one, lease_renewed_at = :now"
            ))
            .condition_expression(format!("{OWNER} = :owner AND {COUNTER} = :counter"))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":owner", s(&fence.owner))
            .expression_attribute_values(":counter", n(fence.counter))
            .send()
            .await
            .map_err(|e| request_error(&fence.shard_id, e))?;
        Ok(())
    }

    async fn request_handoff(&self, read: &Lease, worker: &WorkerId) -> Result<(), LeaseError> {
        let owner = read.owner.as_deref().unwrap_or_default();
        self.update(&read.shard_id)
            .update_expression(format!(
                "SET {HANDOFF_TO} = :me, handoff_requested_at = :now"
            ))
            .condition_expression(format!(
                "{OWNER} = :owner AND {COUNTER} = :counter AND attribute_not_exists({HANDOFF_TO})"
            ))
            .expression_attribute_values(":me", s(worker))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":counter", n(read.counter))
            .send()
            .await
            .map_err(|e| request_error(&read.shard_id, e))?;
        Ok(())
    }

    async fn release(&self, fence: &Fence, release: Release) -> Result<(), LeaseError> {
        let common = format!(
            "{COUNTER} = :next, {HEARTBEAT} = :zero, {HANDOFF_FROM} = :owner, lease_changed_at = :now"
        );
        let mut request = self.update(&fence.shard_id);
        request = match release {
            Release::Free => {
                request.update_expression(format!("SET {common} REMOVE {OWNER}, {HANDOFF_TO}"))
            }
            Release::ShardEnd => request
                .update_expression(format!(
                    "SET {common}, {SHARD_END} = :end REMOVE {OWNER}, {HANDOFF_TO}"
                ))
                .expression_attribute_values(":end", AttributeValue::Bool(true)),
            Release::To(worker) => request
                .update_expression(format!("SET {common}, {OWNER} = :to REMOVE {HANDOFF_TO}"))
                .expression_attribute_values(":to", s(&worker)),
        };
        request
            .condition_expression(format!("{OWNER} = :owner AND {COUNTER} = :counter"))
            .expression_attribute_values(":owner", s(&fence.owner))
            .expression_attribute_values(":counter", n(fence.counter))
            .expression_attribute_values(":next", n(fence.counter + 1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await
            .map_err(|e| request_error(&fence.shard_id, e))?;
        Ok(())
    }
}
