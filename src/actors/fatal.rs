//! The one way out of a broken pipeline: any stage raises a fatal error, the pipeline stops and
//! the process exits non-zero, so the orchestrator replaces the task; records are read again from
//! the last checkpoint.

use std::sync::Arc;

use tokio::sync::watch;

/// A handle to raise a fatal error: the pipeline stops and the process exits non-zero, so the
/// orchestrator replaces the task; records are read again from the last checkpoint.
#[derive(Clone, Debug)]
pub struct Fatal(Arc<watch::Sender<Option<String>>>);

impl Fatal {
    pub fn new() -> (Self, watch::Receiver<Option<String>>) {
        let (sender, receiver) = watch::channel(None);
        (Self(Arc::new(sender)), receiver)
    }

    pub fn raise(&self, message: impl Into<String>) {
        let message = message.into();
        tracing::error!(error = %message, "Fatal error, stopping.");
        self.0
            .send_if_modified(|slot| slot.is_none() && slot.replace(message).is_none());
    }
}
