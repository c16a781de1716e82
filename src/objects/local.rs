//! Objects as files under a root directory, the key as the relative path; written atomically.
//!
//! In: S3-style keys (`ticks/dt=2026-01-05/shard-1.parquet`) and bodies. Out: files at
//! `{root}/{key}`. A put writes a temporary file beside the target and renames it over the
//! target, so a reader (or a process restarted after `kill -9`) sees the old object or the new
//! one, never half of one. Leftover temporary files of a crashed put are ignored by [`list`].
//!
//! Durability: a put returns once the bytes are handed to the OS (survives the process dying);
//! [`LocalObjectStore::with_fsync`] also syncs the file and its directory (survives power loss).
//!
//! Uploads in parts are staged in a hidden folder under the root and published the same way as
//! a put ([`uploads`]). Conditional writes compare tags under a lock of the key ([`conditional`]).
//!
//! [`list`]: ObjectStore::list

mod conditional;
mod uploads;

use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use self::uploads::Staging;
use super::{Listed, ObjectError, ObjectStore, Part, Precondition, Upload, UploadedPart};
use crate::local_files::{
    TEMP_PREFIX, blocking, is_transient, sync_dir, temp_beside, write_atomic,
};

/// A directory standing in for an S3 bucket.
#[derive(Debug, Clone)]
pub struct LocalObjectStore {
    root: PathBuf,
    fsync: bool,
}

impl LocalObjectStore {
    /// The store rooted at `root`; the directory is created by the first put.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            fsync: false,
        }
    }

    /// Also `fsync` each object and its directory before a put returns (off by default: the
    /// local store serves demos, where surviving `kill -9` is the promise, not power loss).
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, operation: &'static str, key: &str) -> Result<PathBuf, ObjectError> {
        check_key(key).map_err(|message| ObjectError::Request {
            operation,
            key: key.to_owned(),
            message,
            retryable: false,
        })?;
        Ok(self.root.join(key))
    }
}

#[async_trait]
impl ObjectStore for LocalObjectStore {
    /// `content_type` is not kept: a file has none.
    async fn put(&self, key: &str, body: Bytes, _content_type: &str) -> Result<(), ObjectError> {
        let path = self.path_of("put", key)?;
        let fsync = self.fsync;
        blocking(move || write_atomic(&path, &body, fsync))
            .await
            .map_err(|e| io_error("put", key, &e))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, ObjectError> {
        let path = self.path_of("get", key)?;
        match tokio::fs::read(&path).await {
            Ok(body) => Ok(Some(Bytes::from(body))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("get", key, &e)),
        }
    }

    async fn get_tagged(&self, key: &str) -> Result<Option<(Bytes, String)>, ObjectError> {
        let path = self.path_of("get", key)?;
        let tagged = blocking(move || conditional::get_tagged(&path))
            .await
            .map_err(|e| io_error("get", key, &e))?;
        Ok(tagged.map(|(body, tag)| (Bytes::from(body), tag)))
    }

    /// `content_type` is not kept: a file has none.
    async fn put_if(
        &self,
        key: &str,
        body: Bytes,
        _content_type: &str,
        precondition: Precondition,
    ) -> Result<Option<String>, ObjectError> {
        let path = self.path_of("put if", key)?;
        let fsync = self.fsync;
        blocking(move || conditional::put_if(&path, &body, &precondition, fsync))
            .await
            .map_err(|e| io_error("put if", key, &e))
    }

    async fn delete_if(&self, key: &str, tag: &str) -> Result<bool, ObjectError> {
        let path = self.path_of("delete if", key)?;
        let tag = tag.to_owned();
        blocking(move || conditional::delete_if(&path, &tag))
            .await
            .map_err(|e| io_error("delete if", key, &e))
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        let path = self.path_of("delete", key)?;
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error("delete", key, &e)),
            _ => Ok(()),
        }
    }

    async fn list_sized(&self, prefix: &str) -> Result<Vec<Listed>, ObjectError> {
        let keys = self.list(prefix).await?;
        let root = self.root.clone();
        blocking(move || {
            let mut listed = Vec::with_capacity(keys.len());
            for key in keys {
                match std::fs::metadata(root.join(&key)) {
                    Ok(metadata) => listed.push(Listed {
                        key,
                        bytes: metadata.len(),
                    }),
                    // Deleted since the listing: not there any more.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(listed)
        })
        .await
        .map_err(|e| io_error("list", prefix, &e))
    }

    /// Appends the parts to a temporary file beside the target and renames it over the target
    /// at the end, so the object is never seen half written.
    async fn put_parts(
        &self,
        key: &str,
        _content_type: &str,
        mut parts: tokio::sync::mpsc::Receiver<Part>,
    ) -> Result<(), ObjectError> {
        use tokio::io::AsyncWriteExt;

        let path = self.path_of("put", key)?;
        let failed = |e: io::Error| io_error("put", key, &e);
        let target = path.clone();
        let (dir, temp) = blocking(move || {
            let (dir, temp) = temp_beside(&target)?;
            Ok((dir.map(Path::to_path_buf), temp))
        })
        .await
        .map_err(failed)?;
        let written = async {
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)
                .await?;
            loop {
                match parts.recv().await {
                    Some(Part::Data(data)) => file.write_all(&data).await?,
                    Some(Part::End) => break,
                    None => return Ok(false),
                }
            }
            file.flush().await?;
            if self.fsync {
                file.sync_all().await?;
            }
            drop(file);
            tokio::fs::rename(&temp, &path).await?;
            if self.fsync {
                let dir = dir.unwrap_or_else(|| PathBuf::from("."));
                blocking(move || sync_dir(&dir)).await?;
            }
            Ok(true)
        }
        .await;
        match written {
            Ok(true) => Ok(()),
            Ok(false) => {
                let _ = tokio::fs::remove_file(&temp).await;
                Err(ObjectError::unfinished(key))
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&temp).await;
                Err(failed(e))
            }
        }
    }

    /// `content_type` is not kept: a file has none.
    async fn begin_upload(&self, key: &str, _content_type: &str) -> Result<Upload, ObjectError> {
        self.path_of("begin upload", key)?;
        Staging::of(self).begin(key).await
    }

    async fn upload_part(
        &self,
        upload: &Upload,
        number: i32,
        body: Bytes,
    ) -> Result<UploadedPart, ObjectError> {
        Staging::of(self).upload_part(upload, number, body).await
    }

    async fn complete_upload(
        &self,
        upload: &Upload,
        parts: &[UploadedPart],
    ) -> Result<(), ObjectError> {
        let target = self.path_of("complete upload", &upload.key)?;
        Staging::of(self).complete(target, upload, parts).await
    }

    async fn abort_upload(&self, upload: &Upload) -> Result<(), ObjectError> {
        Staging::of(self).abort(upload).await
    }

    async fn unfinished_uploads(&self, prefix: &str) -> Result<Vec<Upload>, ObjectError> {
        Staging::of(self).unfinished(prefix).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        check_prefix(prefix).map_err(|message| ObjectError::Request {
            operation: "list",
            key: prefix.to_owned(),
            message,
            retryable: false,
        })?;
        // Only the directory the prefix fully names needs walking; the rest of the prefix
        // (a partial segment such as `dt=2026-01-0`) filters, as in S3.
        let dir_part = prefix.rfind('/').map_or("", |i| &prefix[..=i]);
        let start = self.root.join(dir_part);
        let (dir_part, owned_prefix) = (dir_part.to_owned(), prefix.to_owned());
        blocking(move || {
            let mut keys = Vec::new();
            walk(&start, &dir_part, &mut keys)?;
            keys.retain(|k| k.starts_with(&owned_prefix));
            keys.sort();
            Ok(keys)
        })
        .await
        .map_err(|e| io_error("list", prefix, &e))
    }
}

/// Why `key` is not a safe relative path under the root, if it is not.
fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("key is empty".into());
    }
    if key.starts_with('/') {
        return Err("key must be relative, not an absolute path".into());
    }
    for segment in key.split('/') {
        check_segment(segment)?;
    }
    Ok(())
}

/// Like [`check_key`], but the prefix may be empty and may end in `/` or a partial segment.
fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.starts_with('/') {
        return Err("prefix must be relative, not an absolute path".into());
    }
    match prefix.rsplit_once('/') {
        None => Ok(()),
        Some((dirs, _partial)) => dirs.split('/').try_for_each(check_segment),
    }
}

fn check_segment(segment: &str) -> Result<(), String> {
    match segment {
        "" => Err("key has an empty path segment (`//` or a trailing `/`)".into()),
        "." | ".." => Err(format!(
            "key has a `{segment}` segment; keys must stay under the root"
        )),
        s if s.contains('\\') || s.contains('\0') => {
            Err("key has a backslash or NUL character".into())
        }
        s if s.starts_with(TEMP_PREFIX) => Err(format!(
            "key segments may not start with `{TEMP_PREFIX}` (temporary files)"
        )),
        _ => Ok(()),
    }
}

/// Appends the keys of every object under `dir` (whose key prefix is `key_prefix`) to `keys`.
fn walk(dir: &Path, key_prefix: &str, keys: &mut Vec<String>) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // A prefix nothing was written under, or a root never written to, holds no objects.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            tracing::warn!(path = %entry.path().display(), "Skipping a file whose name is not UTF-8.");
            continue;
        };
        if name.starts_with(TEMP_PREFIX) {
            continue;
        }
        let file_type = entry.file_type()?;
        let key = format!("{key_prefix}{name}");
        if file_type.is_dir() {
            walk(&entry.path(), &format!("{key}/"), keys)?;
        } else if file_type.is_file() {
            keys.push(key);
        }
    }
    Ok(())
}

fn io_error(operation: &'static str, key: &str, e: &io::Error) -> ObjectError {
    ObjectError::Request {
        operation,
        key: key.to_owned(),
        message: e.to_string(),
        retryable: is_transient(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in a directory of its own (also for the uploads' tests).
    pub(super) fn store() -> (tempfile::TempDir, LocalObjectStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalObjectStore::new(dir.path().join("bucket"));
        (dir, store)
    }

    #[tokio::test]
    async fn put_then_get_round_trips_under_partition_segments() {
        let (_dir, store) = store();
        let key = "ticks/dt=2026-01-05/shard-1-000042.parquet";
        store
            .put(
                key,
                Bytes::from_static(b"PAR1"),
                "application/vnd.apache.parquet",
            )
            .await
            .unwrap();
        assert_eq!(store.get(key).await.unwrap().unwrap(), &b"PAR1"[..]);
        assert!(store.root().join("ticks/dt=2026-01-05").is_dir());
    }

    #[tokio::test]
    async fn put_replaces_an_existing_object() {
        let (_dir, store) = store();
        store
            .put("a/b", Bytes::from_static(b"old, longer"), "")
            .await
            .unwrap();
        store
            .put("a/b", Bytes::from_static(b"new"), "")
            .await
            .unwrap();
        assert_eq!(store.get("a/b").await.unwrap().unwrap(), &b"new"[..]);
        assert_eq!(store.list("").await.unwrap(), ["a/b"]);
    }

    #[tokio::test]
    async fn get_of_a_missing_key_is_none() {
        let (_dir, store) = store();
        assert_eq!(store.get("nothing/here").await.unwrap(), None);
    }

    #[tokio::test]
    async fn delete_removes_the_object_and_a_missing_key_is_no_error() {
        let (_dir, store) = store();
        store
            .put("checkpoints/a.json", Bytes::from("{}"), "")
            .await
            .unwrap();
        store.delete("checkpoints/a.json").await.unwrap();
        assert_eq!(store.get("checkpoints/a.json").await.unwrap(), None);
        store.delete("checkpoints/a.json").await.unwrap();
    }

    #[tokio::test]
    async fn list_is_recursive_sorted_and_filters_by_prefix() {
        let (_dir, store) = store();
        for key in [
            "ticks/dt=2026-01-06/b.parquet",
            "ticks/dt=2026-01-05/z.parquet",
            "ticks/dt=2026-01-05/a.parquet",
            "dead-letters/dt=2026-01-05/x.json",
            "ticks-other/c",
        ] {
            store.put(key, Bytes::new(), "").await.unwrap();
        }
        assert_eq!(
            store.list("ticks/").await.unwrap(),
            [
                "ticks/dt=2026-01-05/a.parquet",
                "ticks/dt=2026-01-05/z.parquet",
                "ticks/dt=2026-01-06/b.parquet",
            ]
        );
        // S3 prefixes are not directories: a partial segment matches too.
        assert_eq!(
            store.list("ticks/dt=2026-01-0").await.unwrap().len(),
            3,
            "partial segment prefix"
        );
        assert_eq!(store.list("ticks").await.unwrap().len(), 4);
        assert_eq!(store.list("").await.unwrap().len(), 5);
        assert!(store.list("nothing/").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn list_of_a_store_never_written_is_empty() {
        let (_dir, store) = store();
        assert!(store.list("").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_object_put_in_parts_appears_whole_at_the_end_or_not_at_all() {
        let (_dir, store) = store();
        let key = "ticks/dt=2026-01-05/compacted.parquet";
        let (sender, receiver) = tokio::sync::mpsc::channel(2);
        let writing = tokio::spawn({
            let store = store.clone();
            async move { store.put_parts(key, "", receiver).await }
        });
        sender
            .send(Part::Data(Bytes::from_static(b"first ")))
            .await
            .unwrap();
        sender
            .send(Part::Data(Bytes::from_static(b"second")))
            .await
            .unwrap();
        // Not there before the end, not even in a listing.
        tokio::task::yield_now().await;
        assert_eq!(store.get(key).await.unwrap(), None);
        assert!(store.list("ticks/").await.unwrap().is_empty());
        sender.send(Part::End).await.unwrap();
        writing.await.unwrap().unwrap();
        assert_eq!(store.get(key).await.unwrap().unwrap(), "first second");
        assert_eq!(
            store.list_sized("ticks/").await.unwrap(),
            [Listed {
                key: key.to_owned(),
                bytes: 12
            }]
        );

        // A writer that stops before the end leaves the old object and no temporary file.
        let (sender, receiver) = tokio::sync::mpsc::channel(2);
        sender
            .send(Part::Data(Bytes::from_static(b"half")))
            .await
            .unwrap();
        drop(sender);
        let error = store.put_parts(key, "", receiver).await.unwrap_err();
        assert!(error.is_unfinished());
        assert_eq!(store.get(key).await.unwrap().unwrap(), "first second");
        let folder = store.root().join("ticks/dt=2026-01-05");
        assert_eq!(std::fs::read_dir(folder).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn list_ignores_temporary_files_left_by_a_crash() {
        let (_dir, store) = store();
        store.put("ticks/a", Bytes::new(), "").await.unwrap();
        let leftover = store.root().join(format!("ticks/{TEMP_PREFIX}123.0.b"));
        std::fs::write(&leftover, b"half").unwrap();
        assert_eq!(store.list("").await.unwrap(), ["ticks/a"]);
    }

    #[tokio::test]
    async fn keys_escaping_the_root_are_rejected() {
        let (_dir, store) = store();
        for key in [
            "../outside",
            "a/../../outside",
            "/etc/passwd",
            "",
            "a//b",
            "a/",
            "./a",
        ] {
            let err = store.put(key, Bytes::new(), "").await.unwrap_err();
            assert!(!err.is_retryable(), "{key}: {err}");
            assert!(store.get(key).await.is_err(), "{key}");
        }
        let err = store.get("../x").await.unwrap_err().to_string();
        assert!(err.contains("`..`"), "{err}");
        assert!(store.list("../").await.is_err());
        assert!(store.list("/abs").await.is_err());
        assert!(!store.root().exists(), "nothing was written");
    }

    #[tokio::test]
    async fn concurrent_puts_of_one_key_leave_one_whole_body() {
        let (_dir, store) = store();
        let bodies: Vec<Bytes> = (0..16u8).map(|i| Bytes::from(vec![i; 64 * 1024])).collect();
        let tasks: Vec<_> = bodies
            .iter()
            .cloned()
            .map(|body| {
                let store = store.clone();
                tokio::spawn(async move { store.put("k", body, "").await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let got = store.get("k").await.unwrap().unwrap();
        assert!(bodies.contains(&got), "the body is one of the puts, whole");
        assert_eq!(store.list("").await.unwrap(), ["k"]);
    }

    #[tokio::test]
    async fn fsync_mode_writes_the_same_way() {
        let (_dir, store) = store();
        let store = store.with_fsync(true);
        store
            .put("x/y", Bytes::from_static(b"1"), "")
            .await
            .unwrap();
        assert_eq!(store.get("x/y").await.unwrap().unwrap(), &b"1"[..]);
    }
}
