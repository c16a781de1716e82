//! What a reader reads before its first record: the shard's checkpoint, the marks an earlier
//! owner left beside it, and for a child of a reshard the state its parents left.

use backon::Retryable;

use super::error::ReaderError;
use crate::checkpoint::{Checkpoint, CheckpointStore, Marks, ShardSnapshot};
use crate::model::ids::ShardId;
use crate::stream::ShardInfo;

/// The shard's marks ([`Marks`]), the files end only where it follows `checkpoint`.
pub(super) async fn load_marks(
    checkpoints: &dyn CheckpointStore,
    shard_id: &ShardId,
    checkpoint: Option<&Checkpoint>,
) -> Result<Marks, ReaderError> {
    let mut marks = (|| checkpoints.marks(shard_id))
        .retry(crate::retry::backoff())
        .when(|e| e.is_retryable())
        .notify(|e, wait| tracing::warn!(error = %e, ?wait, "Checkpoint read failed, retrying."))
        .await
        .map_err(ReaderError::checkpoint(shard_id))?;
    let after = checkpoint.map(|c| &c.position);
    marks.files_end = marks
        .files_end
        .filter(|r| r.after.as_ref() == after && after.is_none_or(|a| a < &r.end));
    Ok(marks)
}

pub(super) async fn load_checkpoint(
    checkpoints: &dyn CheckpointStore,
    shard_id: &ShardId,
) -> Result<Option<Checkpoint>, ReaderError> {
    (|| checkpoints.load(shard_id))
        .retry(crate::retry::backoff())
        .when(|e| e.is_retryable())
        .notify(|e, wait| tracing::warn!(error = %e, ?wait, "Checkpoint read failed, retrying."))
        .await
        .map_err(ReaderError::checkpoint(shard_id))
}

/// The final window state of a child shard's parents, for the symbols whose partition keys now
/// hash into the child (the symbol, or the key its records carried when that was not the symbol).
pub(super) async fn inherit_state(
    checkpoints: &dyn CheckpointStore,
    child: &ShardInfo,
) -> Result<ShardSnapshot, ReaderError> {
    let mut state = ShardSnapshot::new();
    for parent in child.parents() {
        let Some(checkpoint) = load_checkpoint(checkpoints, parent).await? else {
            continue;
        };
        state.extend(
            checkpoint
                .snapshot
                .into_iter()
                .filter(|(symbol, symbol_state)| {
                    child
                        .hash_range
                        .is_none_or(|range| range.holds_key(symbol_state.placed_by(symbol)))
                }),
        );
    }
    Ok(state)
}
