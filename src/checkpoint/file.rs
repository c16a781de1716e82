//! Checkpoints as one JSON file per shard in a directory, replaced atomically (write + rename).
//!
//! In: a [`Checkpoint`]. Out: `{dir}/{shard_id}.json`, and each of the shard's marks beside it
//! as JSON in `{dir}/{shard_id}.{mark}.mark` (small, so a mark does not rewrite the snapshot).
//! Because a file is replaced by a rename, a crash during a save leaves the previous checkpoint
//! whole, and the shard resumes from it.
//!
//! Durability: a save returns once the file is handed to the OS (survives `kill -9`);
//! [`FileCheckpointStore::with_fsync`] also syncs the file and the directory (power loss).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use super::{Checkpoint, CheckpointError, CheckpointStore, Mark, Marks, snapshot};
use crate::lease::Fence;
use crate::local_files::{blocking, is_transient, write_atomic};
use crate::model::tick::Position;

/// A directory of per-shard checkpoint files.
#[derive(Debug, Clone)]
pub struct FileCheckpointStore {
    dir: PathBuf,
    fsync: bool,
    /// The buffer of the last snapshot's CBOR, kept for the next: a snapshot is megabytes at
    /// 1,000 symbols, and growing a fresh buffer to that size at every checkpoint copies and
    /// first-touches megabytes each time.
    cbor: Arc<Mutex<Vec<u8>>>,
}

impl FileCheckpointStore {
    /// The store in `dir`; the directory is created by the first save.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            fsync: false,
            cbor: Arc::default(),
        }
    }

    /// Also `fsync` each checkpoint and the directory before a save returns (off by default).
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of one shard, or why the shard id cannot name a file in the directory.
    fn path_of(&self, shard_id: &str) -> Result<PathBuf, String> {
        self.file_of(shard_id, "json")
    }

    fn file_of(&self, shard_id: &str, extension: &str) -> Result<PathBuf, String> {
        let bad = shard_id.is_empty()
            || shard_id.starts_with('.')
            || shard_id.contains(['/', '\\', '\0']);
        if bad {
            return Err(format!(
                "shard id {shard_id:?} cannot name a file (empty, leading `.`, or a path separator)"
            ));
        }
        Ok(self.dir.join(format!("{shard_id}.{extension}")))
    }
}

#[async_trait]
impl CheckpointStore for FileCheckpointStore {
    async fn load(&self, shard_id: &str) -> Result<Option<Checkpoint>, CheckpointError> {
        let read_error = |message: String, retryable: bool| CheckpointError::Read {
            shard: shard_id.to_owned(),
            message,
            retryable,
        };
        let path = self.path_of(shard_id).map_err(|m| read_error(m, false))?;
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(read_error(
                    format!("{}: {e}", path.display()),
                    is_transient(&e),
                ));
            }
        };
        // Only a rename publishes the file, so a parse failure is real damage, not a torn
        // write: report it instead of silently restarting the shard from scratch.
        let checkpoint: Checkpoint = serde_json::from_slice(&bytes)
            .map_err(|e| read_error(format!("corrupt file {}: {e}", path.display()), false))?;
        if checkpoint.shard_id != shard_id {
            return Err(read_error(
                format!(
                    "file {} holds the checkpoint of shard {}",
                    path.display(),
                    checkpoint.shard_id
                ),
                false,
            ));
        }
        Ok(Some(checkpoint))
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        let write_error = |message: String, retryable: bool| CheckpointError::Write {
            shard: checkpoint.shard_id.clone(),
            message,
            retryable,
        };
        let path = self
            .path_of(&checkpoint.shard_id)
            .map_err(|m| write_error(m, false))?;
        let body = {
            let mut cbor = self.cbor.lock().unwrap_or_else(PoisonError::into_inner);
            encode_file(checkpoint, &mut cbor)
        }
        .map_err(|e| write_error(format!("cannot encode: {e}"), false))?;
        let fsync = self.fsync;
        let target = path.clone();
        blocking(move || write_atomic(&target, &body, fsync))
            .await
            .map_err(|e| write_error(format!("{}: {e}", path.display()), is_transient(&e)))
    }

    async fn mark(&self, fence: &Fence, mark: &Mark) -> Result<(), CheckpointError> {
        let write_error = |message: String, retryable: bool| CheckpointError::Write {
            shard: fence.shard_id.to_string(),
            message,
            retryable,
        };
        let (name, json) = mark.stored();
        let path = self
            .file_of(&fence.shard_id, &format!("{name}.mark"))
            .map_err(|m| write_error(m, false))?;
        let (fsync, target) = (self.fsync, path.clone());
        blocking(move || write_atomic(&target, json.as_bytes(), fsync))
            .await
            .map_err(|e| write_error(format!("{}: {e}", path.display()), is_transient(&e)))
    }

    async fn marks(&self, shard_id: &str) -> Result<Marks, CheckpointError> {
        let read_error = |message: String, retryable: bool| CheckpointError::Read {
            shard: shard_id.to_owned(),
            message,
            retryable,
        };
        let mut stored = Vec::new();
        for name in Marks::NAMES {
            let path = self
                .file_of(shard_id, &format!("{name}.mark"))
                .map_err(|m| read_error(m, false))?;
            match tokio::fs::read_to_string(&path).await {
                Ok(json) => stored.push((name, json)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(read_error(
                        format!("{}: {e}", path.display()),
                        is_transient(&e),
                    ));
                }
            }
        }
        Marks::from_stored(stored.iter().map(|(name, json)| (*name, json.as_str())))
            .map_err(|m| read_error(m, false))
    }
}

/// The file: `Checkpoint`'s JSON, byte for byte as serde_json writes it, with the snapshot's
/// string appended by [`snapshot::text::append_json`] instead of going through serde_json.
/// `cbor` is a buffer for the snapshot's CBOR.
fn encode_file(checkpoint: &Checkpoint, cbor: &mut Vec<u8>) -> serde_json::Result<Vec<u8>> {
    /// `Checkpoint`'s fields before the snapshot, under the same names.
    #[derive(serde::Serialize)]
    struct Head<'a> {
        shard_id: &'a str,
        position: &'a Position,
        shard_end: bool,
    }
    snapshot::encode_into(&checkpoint.snapshot, cbor);
    let mut body = Vec::with_capacity(256 + cbor.len() * 4 / 3);
    serde_json::to_writer(
        &mut body,
        &Head {
            shard_id: &checkpoint.shard_id,
            position: &checkpoint.position,
            shard_end: checkpoint.shard_end,
        },
    )?;
    debug_assert_eq!(body.last(), Some(&b'}'));
    body.pop();
    body.extend_from_slice(br#","snapshot":"#);
    snapshot::text::append_json(cbor, &mut body);
    body.push(b'}');
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::FilesEnd;
    use crate::model::tick::SequenceNumber;

    // Snapshots stay empty: the window types are being written elsewhere, and their content
    // round-trips through serde, not through anything this store does.
    fn checkpoint(shard: &str, sequence: &str) -> Checkpoint {
        Checkpoint {
            shard_id: shard.to_owned(),
            position: Position::new(SequenceNumber::new(sequence), 3),
            shard_end: false,
            snapshot: Default::default(),
            fence: None,
        }
    }

    fn store() -> (tempfile::TempDir, FileCheckpointStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = FileCheckpointStore::new(dir.path().join("checkpoints"));
        (dir, store)
    }

    #[test]
    fn the_file_is_the_checkpoints_json() {
        let mut saved = checkpoint("shardId-000000000001", "42");
        saved.snapshot = snapshot::tests::snapshot();
        saved.shard_end = true;
        // The CBOR buffer holds a larger snapshot from before: nothing of it may show.
        let mut larger = saved.clone();
        larger.snapshot.extend(
            snapshot::tests::snapshot()
                .into_iter()
                .map(|(symbol, state)| (format!("{symbol}2").as_str().into(), state)),
        );
        let mut cbor = Vec::new();
        encode_file(&larger, &mut cbor).unwrap();
        let body = encode_file(&saved, &mut cbor).unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            serde_json::to_string(&saved).unwrap()
        );
    }

    #[tokio::test]
    async fn save_then_load_round_trips() {
        let (_dir, store) = store();
        let saved = checkpoint(
            "shardId-000000000001",
            "49590338271490256608559692538361571095921575989136588898",
        );
        store.save(&saved).await.unwrap();
        assert_eq!(
            store.load("shardId-000000000001").await.unwrap(),
            Some(saved)
        );
        assert!(store.dir().join("shardId-000000000001.json").is_file());
    }

    #[tokio::test]
    async fn save_replaces_the_previous_checkpoint() {
        let (_dir, store) = store();
        store.save(&checkpoint("s1", "100")).await.unwrap();
        let mut newer = checkpoint("s1", "200");
        newer.shard_end = true;
        store.save(&newer).await.unwrap();
        assert_eq!(store.load("s1").await.unwrap(), Some(newer));
        let files: Vec<_> = std::fs::read_dir(store.dir()).unwrap().collect();
        assert_eq!(files.len(), 1, "no temporary file left behind");
    }

    #[tokio::test]
    async fn shards_do_not_share_a_file() {
        let (_dir, store) = store();
        store.save(&checkpoint("s1", "1")).await.unwrap();
        store.save(&checkpoint("s2", "2")).await.unwrap();
        assert_eq!(store.load("s1").await.unwrap(), Some(checkpoint("s1", "1")));
        assert_eq!(store.load("s2").await.unwrap(), Some(checkpoint("s2", "2")));
    }

    #[tokio::test]
    async fn load_of_a_shard_never_saved_is_none() {
        let (_dir, store) = store();
        assert_eq!(store.load("s1").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_corrupt_file_is_an_error_naming_the_shard() {
        let (_dir, store) = store();
        std::fs::create_dir_all(store.dir()).unwrap();
        std::fs::write(store.dir().join("s9.json"), b"{\"shard_id\":\"s9\",\"pos").unwrap();
        let err = store.load("s9").await.unwrap_err();
        assert!(matches!(&err, CheckpointError::Read { shard, .. } if shard == "s9"));
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("corrupt"), "{err}");
    }

    #[tokio::test]
    async fn a_file_of_another_shard_is_an_error() {
        let (_dir, store) = store();
        store.save(&checkpoint("s1", "1")).await.unwrap();
        std::fs::rename(store.dir().join("s1.json"), store.dir().join("s2.json")).unwrap();
        assert!(store.load("s2").await.is_err());
    }

    #[tokio::test]
    async fn shard_ids_that_are_paths_are_rejected() {
        let (_dir, store) = store();
        for shard in ["../escape", "a/b", "", ".hidden"] {
            let err = store.save(&checkpoint(shard, "1")).await.unwrap_err();
            assert!(matches!(err, CheckpointError::Write { .. }), "{shard}");
            assert!(store.load(shard).await.is_err(), "{shard}");
        }
    }

    #[tokio::test]
    async fn marks_round_trip_beside_the_checkpoint() {
        let (dir, store) = store();
        assert_eq!(store.marks("shard-1").await.unwrap(), Marks::default());
        let fence = Fence {
            shard_id: "shard-1".into(),
            owner: "worker".into(),
            counter: 2,
        };
        let reserved = FilesEnd {
            after: Some(checkpoint("shard-1", "100").position),
            end: checkpoint("shard-1", "200").position,
        };
        let published = checkpoint("shard-1", "250").position;
        store
            .mark(&fence, &Mark::FilesEnd(reserved.clone()))
            .await
            .unwrap();
        store
            .mark(&fence, &Mark::AlertsPublished(published.clone()))
            .await
            .unwrap();
        store.save(&checkpoint("shard-1", "100")).await.unwrap();
        let expected = Marks {
            files_end: Some(reserved),
            alerts_published: Some(published),
            ..Marks::default()
        };
        assert_eq!(store.marks("shard-1").await.unwrap(), expected);
        assert_eq!(store.marks("shard-2").await.unwrap(), Marks::default());
        assert!(
            dir.path()
                .join("checkpoints/shard-1.files_end.mark")
                .exists()
        );
        assert_eq!(
            store.load("shard-1").await.unwrap().unwrap().position,
            checkpoint("shard-1", "100").position,
            "the checkpoint itself is untouched"
        );
    }

    #[tokio::test]
    async fn fsync_mode_round_trips() {
        let (_dir, store) = store();
        let store = store.with_fsync(true);
        store.save(&checkpoint("s1", "7")).await.unwrap();
        assert_eq!(store.load("s1").await.unwrap(), Some(checkpoint("s1", "7")));
    }
}
