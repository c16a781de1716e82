//! The local store's conditional calls ([`ObjectStore::put_if`], [`ObjectStore::delete_if`]):
//! the compare and the write happen while the call holds a lock file beside the key
//! (`{TEMP_PREFIX}lock.{name}`, which listings skip and no key can name; created only if there
//! is none, removed after), so two processes sharing a root never both see the tag they expect.
//! A write that requires no object links a whole temporary file into place, which fails if a
//! file is there. A tag is the hex MD5 of the object's bytes, as the uploads tag their parts
//! (and as S3 tags an object put in one piece).
//!
//! [`ObjectStore::put_if`]: crate::objects::ObjectStore::put_if
//! [`ObjectStore::delete_if`]: crate::objects::ObjectStore::delete_if

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

use super::uploads::tag_of;
use crate::local_files::{TEMP_PREFIX, sync_dir, temp_beside, write_atomic, write_new};
use crate::objects::Precondition;

/// The tag of an object's bytes.
pub(super) fn tag(body: &[u8]) -> String {
    let mut digest = Md5::new();
    digest.update(body);
    tag_of(digest)
}

/// The object at `path` and its tag, `None` when there is none.
pub(super) fn get_tagged(path: &Path) -> io::Result<Option<(Vec<u8>, String)>> {
    match std::fs::read(path) {
        Ok(body) => {
            let tag = tag(&body);
            Ok(Some((body, tag)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `body` at `path` if `precondition` holds; its tag, or `None` when it did not hold.
pub(super) fn put_if(
    path: &Path,
    body: &[u8],
    precondition: &Precondition,
    fsync: bool,
) -> io::Result<Option<String>> {
    locked(path, || match precondition {
        Precondition::Absent => put_absent(path, body, fsync),
        Precondition::Tagged(expected) => {
            if current_tag(path)?.as_ref() != Some(expected) {
                return Ok(None);
            }
            write_atomic(path, body, fsync)?;
            Ok(Some(tag(body)))
        }
    })
}

/// Removes the file at `path` if its tag is `expected`; whether it did.
pub(super) fn delete_if(path: &Path, expected: &str) -> io::Result<bool> {
    locked(path, || {
        if current_tag(path)?.as_deref() != Some(expected) {
            return Ok(false);
        }
        std::fs::remove_file(path)?;
        Ok(true)
    })
}

/// A whole temporary file hard-linked to `path`: the link fails if anything is there, so the
/// object appears whole or not at all, and never over another.
fn put_absent(path: &Path, body: &[u8], fsync: bool) -> io::Result<Option<String>> {
    let (dir, temp) = temp_beside(path)?;
    let linked = (|| {
        write_new(&temp, body, fsync)?;
        match std::fs::hard_link(&temp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    })();
    let _ = std::fs::remove_file(&temp);
    if !linked? {
        return Ok(None);
    }
    if fsync {
        sync_dir(dir.unwrap_or(Path::new(".")))?;
    }
    Ok(Some(tag(body)))
}

fn current_tag(path: &Path) -> io::Result<Option<String>> {
    Ok(get_tagged(path)?.map(|(_, tag)| tag))
}

/// How long a call waits for another's lock of the same key (each holds it for a read and a
/// write of a small file).
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// A lock file older than this was left by a process that died holding it.
const LOCK_STALE: Duration = Duration::from_secs(30);
const LOCK_POLL: Duration = Duration::from_millis(5);

/// Runs `call` holding the exclusive lock of `path`: a lock file beside it, created only if
/// there is none and removed after. Waits up to [`LOCK_WAIT`] for another holder (then fails,
/// retryable), and removes a lock file older than [`LOCK_STALE`].
fn locked<T>(path: &Path, call: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    let (dir, _) = temp_beside(path)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let lock_name = format!("{TEMP_PREFIX}lock.{name}");
    let lock = dir.map_or_else(|| PathBuf::from(&lock_name), |d| d.join(&lock_name));
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match File::options().write(true).create_new(true).open(&lock) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let age = std::fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|modified| modified.elapsed().ok());
                if age.is_some_and(|age| age > LOCK_STALE) {
                    let _ = std::fs::remove_file(&lock);
                    continue;
                }
                if Instant::now() > deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("{} is held by another writer", lock.display()),
                    ));
                }
                std::thread::sleep(LOCK_POLL);
            }
            Err(e) => return Err(e),
        }
    }
    let result = call();
    std::fs::remove_file(&lock)?;
    result
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::tests::store;
    use crate::objects::{ObjectStore, Precondition};

    #[tokio::test]
    async fn a_write_that_requires_no_object_happens_once() {
        let (_dir, store) = store();
        let key = "compaction/dt=2026-01-05/lock";
        let put = |body: &'static [u8]| {
            store.put_if(key, Bytes::from_static(body), "", Precondition::Absent)
        };
        let tag = put(b"first").await.unwrap().expect("nothing there");
        assert_eq!(put(b"second").await.unwrap(), None);
        let (body, got) = store.get_tagged(key).await.unwrap().unwrap();
        assert_eq!((&body[..], got), (&b"first"[..], tag));
        assert_eq!(store.list("compaction/").await.unwrap(), [key]);
    }

    #[tokio::test]
    async fn a_write_that_requires_a_tag_happens_only_over_that_object() {
        let (_dir, store) = store();
        let key = "lock";
        assert_eq!(store.get_tagged(key).await.unwrap(), None);
        let tagged = |tag: &str| Precondition::Tagged(tag.to_owned());
        let none = store.put_if(key, Bytes::from_static(b"a"), "", tagged("x"));
        assert_eq!(none.await.unwrap(), None, "no object: no tag matches");
        store.put(key, Bytes::from_static(b"a"), "").await.unwrap();
        let (_, a) = store.get_tagged(key).await.unwrap().unwrap();
        let b = store.put_if(key, Bytes::from_static(b"b"), "", tagged(&a));
        let b = b.await.unwrap().expect("the tag matches");
        assert_ne!(a, b);
        let stale = store.put_if(key, Bytes::from_static(b"c"), "", tagged(&a));
        assert_eq!(stale.await.unwrap(), None);
        assert_eq!(store.get(key).await.unwrap().unwrap(), &b"b"[..]);

        assert!(!store.delete_if(key, &a).await.unwrap());
        assert!(store.get(key).await.unwrap().is_some());
        assert!(store.delete_if(key, &b).await.unwrap());
        assert_eq!(store.get(key).await.unwrap(), None);
        assert!(!store.delete_if(key, &b).await.unwrap(), "gone");
    }

    #[tokio::test]
    async fn of_writers_racing_for_an_absent_key_exactly_one_wins() {
        let (_dir, store) = store();
        let writes = (0..8u8).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .put_if("k", Bytes::from(vec![i; 64]), "", Precondition::Absent)
                    .await
                    .unwrap()
            })
        });
        let won = futures::future::join_all(writes)
            .await
            .into_iter()
            .filter(|put| put.as_ref().unwrap().is_some())
            .count();
        assert_eq!(won, 1);
    }
}
