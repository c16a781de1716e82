//! Step 3 for the sinks that write files (the lake and the dead letters), before they complete
//! them: the end of a shard's next files is reserved in the checkpoint store, fenced by the lease.
//!
//! A file's key names its shard and first row, and its rows run to the barrier that closes it.
//! Barriers fall where an owner's timing puts them, so without a reservation an owner that lost
//! its lease (frozen, cut off) could write late a file under the same key as the new owner's
//! but with other rows: rows lost, or doubled. Reserved first, the end is one fact for every
//! owner: the new owner resumes from the checkpoint the reservation follows and ends its first
//! files at the same place (`actors/shard_reader/` splits its reads there), so a late write
//! replaces a file with the same bytes; and an owner whose lease has moved on cannot reserve,
//! so it writes no file beyond that one.
//!
//! Reservations of a shard follow its commits: an object sink completes the files of a barrier
//! only once the shard's previous files are committed (`actors/object_batcher/`), so a
//! reservation always follows the checkpoint it names.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::checkpoint::{CheckpointError, CheckpointStore, FilesEnd, Mark};
use crate::lease::Fence;
use crate::model::ids::ShardId;
use crate::model::tick::Position;
use crate::retry::{Reporting, Stopped, persistently};

/// The last end reserved for a shard, and under which lease counter; locked across the store's
/// write, so the second sink to ask for the same end waits for the first's write and skips it.
type LastReserved = Arc<tokio::sync::Mutex<Option<(u64, Position)>>>;

/// Reserves file ends, once per shard and barrier whichever object sink asks first.
pub struct FileEnds {
    store: Arc<dyn CheckpointStore>,
    reserved: Mutex<HashMap<ShardId, LastReserved>>,
}

impl FileEnds {
    pub fn new(store: Arc<dyn CheckpointStore>) -> Self {
        Self {
            store,
            reserved: Mutex::default(),
        }
    }

    /// Reserves `end` as the end of the shard's files after the committed position `after`
    /// (trying until it is written, reporting failures through `report`); `LeaseLost` once the
    /// lease has moved on, `None` once `wanted` says the files are no longer to be written.
    pub async fn reserve(
        &self,
        fence: &Fence,
        after: Option<Position>,
        end: &Position,
        report: Reporting<'_>,
        wanted: impl Fn() -> bool,
    ) -> Result<(), Stopped<CheckpointError>> {
        let slot = {
            let mut reserved = self.reserved.lock().expect("file ends lock");
            reserved.entry(fence.shard_id.clone()).or_default().clone()
        };
        let mut last = slot.lock().await;
        if last
            .as_ref()
            .is_some_and(|(counter, reserved)| *counter == fence.counter && reserved == end)
        {
            return Ok(());
        }
        let mark = Mark::FilesEnd(FilesEnd {
            after,
            end: end.clone(),
        });
        persistently(report, CheckpointError::failure, wanted, || {
            self.store.mark(fence, &mark)
        })
        .await?;
        *last = Some((fence.counter, end.clone()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::checkpoint::file::FileCheckpointStore;
    use crate::health::{Concern, Health};
    use crate::metrics::Metrics;
    use crate::model::tick::SequenceNumber;

    fn position(sequence: u64) -> Position {
        Position::new(SequenceNumber::new(sequence.to_string()), 0)
    }

    #[tokio::test]
    async fn a_reservation_reaches_the_store_once_per_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FileCheckpointStore::new(dir.path()));
        let ends = FileEnds::new(store.clone());
        let (health, metrics) = (Health::new(Duration::from_secs(60)), Metrics::default());
        let report = Reporting {
            concern: Concern::Checkpoints,
            health: &health,
            metrics: &metrics,
        };
        let fence = Fence {
            shard_id: "shard-1".into(),
            owner: "worker".into(),
            counter: 4,
        };
        ends.reserve(&fence, Some(position(10)), &position(20), report, || true)
            .await
            .unwrap();
        let file = dir.path().join("shard-1.files_end.mark");
        std::fs::remove_file(&file).unwrap();
        ends.reserve(&fence, Some(position(10)), &position(20), report, || true)
            .await
            .unwrap();
        assert!(
            !file.exists(),
            "the second sink's reservation of the same end is not written again"
        );
        ends.reserve(&fence, Some(position(20)), &position(30), report, || true)
            .await
            .unwrap();
        let reserved = store.marks("shard-1").await.unwrap().files_end.unwrap();
        assert_eq!(
            (reserved.after, reserved.end),
            (Some(position(20)), position(30))
        );
    }
}
