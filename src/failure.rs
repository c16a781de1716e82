//! How a failed call to an outside service is handled, the error policy of every port:
//!
//! - [`Failure::Transient`] (throttling, timeouts, 5xx, lost connections): retried with backoff.
//! - [`Failure::ItemRefused`] (the service refuses one item, e.g. a DynamoDB
//!   `ValidationException`): that item is dead-lettered with the reason and the rest goes on.
//! - [`Failure::Refused`] (permissions, a missing table, bucket, topic or key): every call would
//!   fail the same way until someone fixes it. The stage stops where it is, without losing
//!   anything, reports it on the health endpoint, and tries again slowly
//!   ([`crate::retry::persistently`]) instead of exiting: a restart would replay its backlog
//!   only to meet the same refusal.
//! - [`Failure::Fenced`] (a conditional write refused because the lease moved on): not retried;
//!   the shard's new owner carries on from the last checkpoint.

/// How a failed call is handled; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Transient,
    ItemRefused,
    Refused,
    Fenced,
}

impl Failure {
    pub fn from_retryable(retryable: bool) -> Self {
        match retryable {
            true => Failure::Transient,
            false => Failure::Refused,
        }
    }
}
