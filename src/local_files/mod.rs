//! Files the local ports share (the object store, the checkpoint store, the ticks table and the
//! alert log): writes that are never seen half done, append-only line logs, and file work kept
//! off the async workers. Failures are `std::io::Error`s; each port says what they mean to it.

mod line_log;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) use self::line_log::{LineLog, complete_lines};

/// Name prefix of in-flight temporary files; keys may not contain a segment starting with it.
pub(crate) const TEMP_PREFIX: &str = ".kinetick-tmp.";

/// Replaces `path` with `body` so that it is never seen half-written: a temporary file in the
/// same directory (same filesystem, so the rename is atomic), then a rename over the target.
/// Creates missing parent directories. With `fsync`, the file and the directory entry are
/// synced too, so the write survives power loss and not only a crash of the process.
pub(crate) fn write_atomic(path: &Path, body: &[u8], fsync: bool) -> io::Result<()> {
    let (dir, temp) = temp_beside(path)?;
    let written = (|| {
        write_new(&temp, body, fsync)?;
        std::fs::rename(&temp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    if fsync {
        sync_dir(dir.unwrap_or(Path::new(".")))?;
    }
    Ok(())
}

/// Writes `body` to a new file at `path` (failing if one is there), synced with `fsync`.
pub(crate) fn write_new(path: &Path, body: &[u8], fsync: bool) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(body)?;
    if fsync {
        file.sync_all()?;
    }
    Ok(())
}

/// A temporary file's path beside `path` (in the same directory, so a rename publishes it
/// atomically), and that directory, created if missing. The name is unique per process and
/// call, so concurrent writers of one key never share a temporary file; listings skip it.
pub(crate) fn temp_beside(path: &Path) -> io::Result<(Option<&Path>, PathBuf)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);

    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)?;
    }
    let temp_name = format!(
        "{TEMP_PREFIX}{}.{}.{file_name}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let temp = dir.map_or_else(|| PathBuf::from(&temp_name), |d| d.join(&temp_name));
    Ok((dir, temp))
}

/// Makes a rename in `dir` durable (the directory entry is data too).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Whether retrying the same local file operation could succeed.
pub(crate) fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Runs blocking filesystem work off the async workers; it completes even if the caller is
/// cancelled, which is safe because nothing partial is ever visible.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(format!("file task failed: {e}"))))
}
