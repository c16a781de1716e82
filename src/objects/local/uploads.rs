//! The local store's uploads in parts, staged under `{root}/.kinetick-tmp.uploads/{id}/`: the
//! key in `key`, each part in `part-{number}`, written to a temporary file and renamed, so that
//! uploading a number again replaces it whole. Completing concatenates the parts into a
//! temporary file beside the target and renames it over the target (as a put does), then
//! removes the staging folder. A staging folder is removed by first renaming it to a hidden
//! name, so the upload is gone at once even if removing its files fails halfway (the next
//! removal of that upload finishes the job).
//!
//! The staging folder's name starts with the temporary-file prefix, so listings skip it and no
//! key can name it. A part's tag is the hex MD5 of its bytes (as S3's ETag of a plain part), so
//! completing checks that each part is the one its tag names. A crash inside `begin_upload`
//! may leave a folder without its key: it holds no parts and is not listed.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use md5::{Digest, Md5};

use super::{LocalObjectStore, io_error};
use crate::local_files::{TEMP_PREFIX, blocking, sync_dir, temp_beside, write_atomic};
use crate::objects::{MAX_PART_NUMBER, MIN_PART_BYTES, ObjectError, Upload, UploadedPart};

/// The file of a staging folder that holds the upload's key.
const KEY_FILE: &str = "key";
/// An upload id: 128 random bits in lowercase hex, unique across processes sharing a root.
const ID_DIGITS: usize = 32;
/// Bytes read from a part at a time while completing.
const COPY_BUFFER: usize = 1 << 20;

/// The staging folders of one store.
#[derive(Debug, Clone)]
pub(super) struct Staging {
    dir: PathBuf,
    fsync: bool,
}

/// Why an upload call failed.
enum Failed {
    Io(io::Error),
    Gone,
    /// The call can never succeed as made (a part too small, a tag that does not match).
    Refused(String),
}

impl From<io::Error> for Failed {
    fn from(e: io::Error) -> Self {
        Failed::Io(e)
    }
}

impl Failed {
    fn into_error(self, operation: &'static str, upload: &Upload) -> ObjectError {
        match self {
            Failed::Io(e) => io_error(operation, &upload.key, &e),
            Failed::Gone => ObjectError::upload_gone(operation, upload),
            Failed::Refused(message) => ObjectError::Request {
                operation,
                key: upload.key.clone(),
                message,
                retryable: false,
            },
        }
    }
}

/// Runs upload work off the async workers.
async fn run<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Failed> + Send + 'static,
) -> Result<T, Failed> {
    blocking(move || Ok(work())).await?
}

impl Staging {
    pub(super) fn of(store: &LocalObjectStore) -> Self {
        Self {
            dir: store.root.join(format!("{TEMP_PREFIX}uploads")),
            fsync: store.fsync,
        }
    }

    /// `key` must already be checked as a key.
    pub(super) async fn begin(self, key: &str) -> Result<Upload, ObjectError> {
        let owned = key.to_owned();
        let id = blocking(move || self.create(&owned))
            .await
            .map_err(|e| io_error("begin upload", key, &e))?;
        Ok(Upload {
            key: key.to_owned(),
            id,
        })
    }

    pub(super) async fn upload_part(
        self,
        upload: &Upload,
        number: i32,
        body: Bytes,
    ) -> Result<UploadedPart, ObjectError> {
        let owned = upload.clone();
        let tag = run(move || self.write_part(&owned, number, &body))
            .await
            .map_err(|e| e.into_error("upload part", upload))?;
        Ok(UploadedPart { number, tag })
    }

    /// `target` is the path of the upload's key.
    pub(super) async fn complete(
        self,
        target: PathBuf,
        upload: &Upload,
        parts: &[UploadedPart],
    ) -> Result<(), ObjectError> {
        let (owned, parts) = (upload.clone(), parts.to_vec());
        run(move || self.publish(&target, &owned, &parts))
            .await
            .map_err(|e| e.into_error("complete upload", upload))
    }

    pub(super) async fn abort(self, upload: &Upload) -> Result<(), ObjectError> {
        let owned = upload.clone();
        blocking(move || self.drop_upload(&owned))
            .await
            .map_err(|e| io_error("abort upload", &upload.key, &e))
    }

    pub(super) async fn unfinished(self, prefix: &str) -> Result<Vec<Upload>, ObjectError> {
        let owned = prefix.to_owned();
        blocking(move || self.read_unfinished(&owned))
            .await
            .map_err(|e| io_error("list uploads", prefix, &e))
    }

    /// The folder of upload `id`, or `None` for an id this store never gives (it could name
    /// a path outside the staging folders).
    fn folder(&self, id: &str) -> Option<PathBuf> {
        let ours =
            id.len() == ID_DIGITS && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ours.then(|| self.dir.join(id))
    }

    /// The folder of `upload` if the upload is under way: its folder holds the upload's key.
    fn under_way(&self, upload: &Upload) -> Result<PathBuf, Failed> {
        let folder = self.folder(&upload.id).ok_or(Failed::Gone)?;
        match std::fs::read_to_string(folder.join(KEY_FILE)) {
            Ok(key) if key == upload.key => Ok(folder),
            Ok(_) => Err(Failed::Gone),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Failed::Gone),
            Err(e) => Err(e.into()),
        }
    }

    /// A new staging folder holding `key`; returns its id.
    fn create(&self, key: &str) -> io::Result<String> {
        std::fs::create_dir_all(&self.dir)?;
        loop {
            let id = format!("{:0width$x}", rand::random::<u128>(), width = ID_DIGITS);
            let folder = self.dir.join(&id);
            match std::fs::create_dir(&folder) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                created => created?,
            }
            if let Err(e) = write_atomic(&folder.join(KEY_FILE), key.as_bytes(), self.fsync) {
                let _ = std::fs::remove_dir_all(&folder);
                return Err(e);
            }
            if self.fsync {
                sync_dir(&self.dir)?;
            }
            return Ok(id);
        }
    }

    /// Writes part `number` of `upload`, replacing one of that number; returns its tag.
    fn write_part(&self, upload: &Upload, number: i32, body: &[u8]) -> Result<String, Failed> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);

        if !(1..=MAX_PART_NUMBER).contains(&number) {
            return Err(Failed::Refused(format!(
                "part number {number} is not within 1..={MAX_PART_NUMBER}"
            )));
        }
        let folder = self.under_way(upload)?;
        // Not `write_atomic`: it would create the folder again, had an abort just removed it.
        let temp = folder.join(format!(
            "{TEMP_PREFIX}{}.{}.part",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            file.write_all(body)?;
            if self.fsync {
                file.sync_all()?;
            }
            drop(file);
            std::fs::rename(&temp, part_path(&folder, number))
        })();
        match written {
            Ok(()) if self.fsync => sync_dir(&folder)?,
            Ok(()) => {}
            // The folder went away meanwhile: the upload was completed or aborted.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let _ = std::fs::remove_file(&temp);
                return Err(Failed::Gone);
            }
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(e.into());
            }
        }
        let mut digest = Md5::new();
        digest.update(body);
        Ok(tag_of(digest))
    }

    /// Makes `upload` the object at `target` from `parts`, then removes its staging folder.
    fn publish(
        &self,
        target: &Path,
        upload: &Upload,
        parts: &[UploadedPart],
    ) -> Result<(), Failed> {
        let folder = self.under_way(upload)?;
        if parts.is_empty() {
            return Err(Failed::Refused("an upload needs at least one part".into()));
        }
        if let Some(pair) = parts
            .windows(2)
            .find(|pair| pair[0].number >= pair[1].number)
        {
            return Err(Failed::Refused(format!(
                "parts must be in ascending order of number; {} comes after {}",
                pair[1].number, pair[0].number
            )));
        }
        let (dir, temp) = temp_beside(target)?;
        let written = self
            .concatenate(&folder, parts, &temp)
            .and_then(|()| std::fs::rename(&temp, target).map_err(Failed::from));
        if let Err(failed) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(failed);
        }
        if self.fsync {
            sync_dir(dir.unwrap_or(Path::new(".")))?;
        }
        // The object is whole: a folder left behind is only untidy (an abort removes it).
        if let Err(e) = self.remove(&upload.id) {
            tracing::warn!(
                key = %upload.key,
                upload_id = %upload.id,
                error = %e,
                "Could not remove the parts of a completed upload."
            );
        }
        Ok(())
    }

    /// Writes `parts` from `folder`, one after the other, into the new file `temp`, checking
    /// each against its tag and S3's least part size.
    fn concatenate(
        &self,
        folder: &Path,
        parts: &[UploadedPart],
        temp: &Path,
    ) -> Result<(), Failed> {
        let mut out = OpenOptions::new().write(true).create_new(true).open(temp)?;
        let mut buffer = vec![0; COPY_BUFFER];
        for (index, part) in parts.iter().enumerate() {
            let number = part.number;
            let mut file = match File::open(part_path(folder, number)) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound && !folder.exists() => {
                    return Err(Failed::Gone);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(Failed::Refused(format!("part {number} was not uploaded")));
                }
                Err(e) => return Err(e.into()),
            };
            let bytes = file.metadata()?.len();
            if index + 1 < parts.len() && bytes < MIN_PART_BYTES as u64 {
                return Err(Failed::Refused(format!(
                    "part {number} holds {bytes} bytes; every part but the last needs at least \
                     {MIN_PART_BYTES}"
                )));
            }
            let mut digest = Md5::new();
            loop {
                let read = match file.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(read) => read,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e.into()),
                };
                digest.update(&buffer[..read]);
                out.write_all(&buffer[..read])?;
            }
            if tag_of(digest) != part.tag {
                return Err(Failed::Refused(format!(
                    "part {number} is not the one tagged {} (uploaded again since?)",
                    part.tag
                )));
            }
        }
        if self.fsync {
            out.sync_all()?;
        }
        Ok(())
    }

    /// Removes the staging folder of `upload` unless it is another key's.
    fn drop_upload(&self, upload: &Upload) -> io::Result<()> {
        let Some(folder) = self.folder(&upload.id) else {
            return Ok(());
        };
        match std::fs::read_to_string(folder.join(KEY_FILE)) {
            Ok(key) if key != upload.key => Ok(()),
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            // Ours, or gone, or a removal that failed halfway: finish it.
            _ => self.remove(&upload.id),
        }
    }

    /// Removes the staging folder of `id` (one of ours): renamed to a hidden name first, so the
    /// upload is gone at once, then deleted with its files. A folder already gone is no error.
    fn remove(&self, id: &str) -> io::Result<()> {
        let folder = self.dir.join(id);
        let trash = self.dir.join(format!("{TEMP_PREFIX}{id}"));
        match std::fs::rename(&folder, &trash) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        match std::fs::remove_dir_all(&trash) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The uploads under way whose key starts with `prefix`, sorted by key.
    fn read_unfinished(&self, prefix: &str) -> io::Result<Vec<Upload>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut uploads = Vec::new();
        for entry in entries {
            let name = entry?.file_name();
            // Hidden names (removals under way, temporary files) are no uploads.
            let Some(id) = name.to_str() else { continue };
            let Some(folder) = self.folder(id) else {
                continue;
            };
            match std::fs::read_to_string(folder.join(KEY_FILE)) {
                Ok(key) if key.starts_with(prefix) => uploads.push(Upload {
                    key,
                    id: id.to_owned(),
                }),
                Ok(_) => {}
                // Removed meanwhile, or a crash inside `begin_upload` left it without its key.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        uploads.sort_by(|a, b| (&a.key, &a.id).cmp(&(&b.key, &b.id)));
        Ok(uploads)
    }
}

fn part_path(folder: &Path, number: i32) -> PathBuf {
    folder.join(format!("part-{number:05}"))
}

pub(super) fn tag_of(digest: Md5) -> String {
    digest
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::store;
    use super::*;
    use crate::objects::ObjectStore;

    fn body(length: usize, seed: u8) -> Bytes {
        (0..length)
            .map(|i| (i % 251) as u8 ^ seed)
            .collect::<Vec<_>>()
            .into()
    }

    /// Files left in the staging folders, removals under way included.
    fn staged(store: &LocalObjectStore) -> usize {
        match std::fs::read_dir(&Staging::of(store).dir) {
            Ok(entries) => entries.count(),
            Err(_) => 0,
        }
    }

    #[tokio::test]
    async fn an_upload_in_three_parts_appears_whole_only_when_completed() {
        let (_dir, store) = store();
        let key = "ticks/dt=2026-01-05/compacted.parquet";
        let bodies = [
            body(MIN_PART_BYTES, 1),
            body(MIN_PART_BYTES + 3, 2),
            body(10, 3),
        ];
        let upload = store.begin_upload(key, "").await.unwrap();
        let mut parts = Vec::new();
        for (number, body) in (1..).zip(&bodies) {
            let part = store.upload_part(&upload, number, body.clone()).await;
            parts.push(part.unwrap());
        }
        assert_eq!(store.get(key).await.unwrap(), None);
        assert!(
            store.list("").await.unwrap().is_empty(),
            "staging is hidden"
        );
        assert_eq!(
            store.unfinished_uploads("").await.unwrap(),
            std::slice::from_ref(&upload)
        );

        store.complete_upload(&upload, &parts).await.unwrap();
        assert_eq!(
            store.get(key).await.unwrap().unwrap(),
            bodies.concat(),
            "the parts in order"
        );
        assert_eq!(store.list("").await.unwrap(), [key]);
        assert!(store.unfinished_uploads("").await.unwrap().is_empty());
        assert_eq!(staged(&store), 0, "the staging folder is removed");
        let folder = store.root().join("ticks/dt=2026-01-05");
        assert_eq!(
            std::fs::read_dir(folder).unwrap().count(),
            1,
            "no temporary file"
        );

        // Completing again (a retry whose first answer was lost) finds the upload gone.
        let again = store.complete_upload(&upload, &parts).await.unwrap_err();
        assert!(again.is_upload_gone() && !again.is_retryable(), "{again}");
    }

    #[tokio::test]
    async fn a_part_uploaded_again_replaces_it() {
        let (_dir, store) = store();
        let upload = store.begin_upload("a/b", "").await.unwrap();
        let first = store
            .upload_part(&upload, 1, body(MIN_PART_BYTES, 1))
            .await
            .unwrap();
        let second = store
            .upload_part(&upload, 1, body(MIN_PART_BYTES, 2))
            .await
            .unwrap();
        assert_ne!(first.tag, second.tag);
        let last = store
            .upload_part(&upload, 2, Bytes::from_static(b"end"))
            .await
            .unwrap();

        // The tag of the replaced part names bytes that are no longer there.
        let stale = store
            .complete_upload(&upload, &[first, last.clone()])
            .await
            .unwrap_err();
        assert!(!stale.is_retryable() && !stale.is_upload_gone(), "{stale}");

        store
            .complete_upload(&upload, &[second, last])
            .await
            .unwrap();
        let expected = [&body(MIN_PART_BYTES, 2)[..], b"end"].concat();
        assert_eq!(store.get("a/b").await.unwrap().unwrap(), expected);
    }

    #[tokio::test]
    async fn an_aborted_upload_leaves_nothing_and_is_gone() {
        let (_dir, store) = store();
        store
            .put("a/b", Bytes::from_static(b"old"), "")
            .await
            .unwrap();
        let upload = store.begin_upload("a/b", "").await.unwrap();
        let part = store
            .upload_part(&upload, 1, Bytes::from_static(b"new"))
            .await
            .unwrap();
        store.abort_upload(&upload).await.unwrap();

        assert_eq!(staged(&store), 0);
        assert!(store.unfinished_uploads("").await.unwrap().is_empty());
        assert_eq!(store.list("").await.unwrap(), ["a/b"]);
        assert_eq!(store.get("a/b").await.unwrap().unwrap(), "old");
        store.abort_upload(&upload).await.unwrap();

        let complete = store.complete_upload(&upload, &[part]).await.unwrap_err();
        assert!(
            complete.is_upload_gone() && !complete.is_retryable(),
            "{complete}"
        );
        let part = store
            .upload_part(&upload, 2, Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        assert!(part.is_upload_gone(), "{part}");
        assert_eq!(staged(&store), 0, "no part brings the upload back");
    }

    #[tokio::test]
    async fn an_upload_a_crashed_process_left_is_found_by_its_prefix() {
        let (_dir, store) = store();
        let (begun, other) = {
            // A process that began uploads and never ended them.
            let crashed = store.clone();
            let begun = crashed.begin_upload("lake/ticks/x", "").await.unwrap();
            crashed
                .upload_part(&begun, 1, Bytes::from_static(b"half"))
                .await
                .unwrap();
            let other = crashed.begin_upload("lake/tock/y", "").await.unwrap();
            (begun, other)
        };
        let restarted = LocalObjectStore::new(store.root());
        assert_eq!(
            restarted.unfinished_uploads("lake/ticks/").await.unwrap(),
            std::slice::from_ref(&begun)
        );
        assert_eq!(
            restarted.unfinished_uploads("lake/ti").await.unwrap(),
            std::slice::from_ref(&begun),
            "a partial segment, as in S3"
        );
        assert!(
            restarted
                .unfinished_uploads("dead-letters/")
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            restarted.unfinished_uploads("").await.unwrap(),
            [begun.clone(), other.clone()]
        );
        assert!(restarted.list("").await.unwrap().is_empty());

        for upload in restarted.unfinished_uploads("lake/").await.unwrap() {
            restarted.abort_upload(&upload).await.unwrap();
        }
        assert!(restarted.unfinished_uploads("").await.unwrap().is_empty());
        assert_eq!(staged(&restarted), 0);
    }

    #[tokio::test]
    async fn completing_refuses_parts_s3_would_refuse() {
        let (_dir, store) = store();
        let upload = store.begin_upload("k", "").await.unwrap();
        let small = store
            .upload_part(&upload, 1, Bytes::from_static(b"small"))
            .await
            .unwrap();
        let last = store
            .upload_part(&upload, 2, Bytes::from_static(b"last"))
            .await
            .unwrap();
        let missing = UploadedPart {
            number: 3,
            tag: last.tag.clone(),
        };
        for parts in [
            vec![small.clone(), last.clone()],
            vec![last.clone(), small.clone()],
            vec![small.clone(), missing],
            vec![],
        ] {
            let error = store.complete_upload(&upload, &parts).await.unwrap_err();
            assert!(!error.is_retryable() && !error.is_upload_gone(), "{error}");
        }
        for number in [0, MAX_PART_NUMBER + 1] {
            let error = store
                .upload_part(&upload, number, Bytes::new())
                .await
                .unwrap_err();
            assert!(!error.is_retryable(), "{error}");
        }
        assert_eq!(store.get("k").await.unwrap(), None);
        // The upload is still under way: a last part alone is a whole object.
        store.complete_upload(&upload, &[last]).await.unwrap();
        assert_eq!(store.get("k").await.unwrap().unwrap(), "last");
    }

    #[tokio::test]
    async fn an_upload_of_another_key_or_a_strange_id_is_gone() {
        let (_dir, store) = store();
        let upload = store.begin_upload("k", "").await.unwrap();
        let part = store
            .upload_part(&upload, 1, Bytes::from_static(b"x"))
            .await
            .unwrap();
        for stranger in [
            Upload {
                key: "other".into(),
                id: upload.id.clone(),
            },
            Upload {
                key: "k".into(),
                id: "../../outside".into(),
            },
        ] {
            let error = store
                .complete_upload(&stranger, std::slice::from_ref(&part))
                .await
                .unwrap_err();
            assert!(error.is_upload_gone(), "{error}");
            store.abort_upload(&stranger).await.unwrap();
        }
        assert_eq!(store.unfinished_uploads("").await.unwrap(), [upload]);
    }

    #[tokio::test]
    async fn keys_under_the_staging_folder_are_refused() {
        let (_dir, store) = store();
        let key = format!("{TEMP_PREFIX}uploads/x");
        assert!(store.begin_upload(&key, "").await.is_err());
        assert!(store.put(&key, Bytes::new(), "").await.is_err());
    }

    #[tokio::test]
    async fn fsync_mode_uploads_the_same_way() {
        let (_dir, store) = store();
        let store = store.with_fsync(true);
        let upload = store.begin_upload("x/y", "").await.unwrap();
        let part = store
            .upload_part(&upload, 1, Bytes::from_static(b"1"))
            .await
            .unwrap();
        store.complete_upload(&upload, &[part]).await.unwrap();
        assert_eq!(store.get("x/y").await.unwrap().unwrap(), "1");
    }
}
