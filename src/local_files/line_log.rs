//! An append-only file of lines, safe against crashes: appends never interleave, a failed one is
//! cut back, and a torn last line (a write cut short by `kill -9`) is skipped on read and cut on
//! reopen.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tokio::sync::Mutex;

use super::blocking;

/// The `\n`-terminated lines of a line log, without their `\n`; warns about an unterminated
/// (torn) last line, which is left out.
pub(crate) fn complete_lines<'a>(
    path: &Path,
    bytes: &'a [u8],
) -> impl Iterator<Item = &'a [u8]> + 'a {
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(last) => last + 1,
        None => 0,
    };
    if complete < bytes.len() {
        tracing::warn!(
            path = %path.display(),
            bytes = bytes.len() - complete,
            "Skipping a torn last line; a write was cut short."
        );
    }
    // Without the final `\n`, splitting yields exactly the complete lines.
    let body = complete.checked_sub(1).map(|end| &bytes[..end]);
    body.into_iter().flat_map(|b| b.split(|&c| c == b'\n'))
}

/// An append-only file of lines whose appends never interleave and never leave a partial line
/// behind a later one. Shared by the file-backed local ports.
#[derive(Debug)]
pub(crate) struct LineLog {
    path: PathBuf,
    pub(crate) fsync: bool,
    file: Mutex<LogFile>,
}

#[derive(Debug)]
struct LogFile {
    file: std::fs::File,
    /// Length of the file's complete lines: where a failed append is cut back to.
    len: u64,
    /// A failed append could not be cut back; retried before the next append.
    needs_truncate: bool,
    /// Bytes appended since the log last let go of its written pages.
    cached: u64,
}

/// How much of what a log wrote the page cache holds before the log lets go of it.
const DROP_BEHIND_BYTES: u64 = 8 << 20;

impl LineLog {
    /// Opens (or creates) the log, creating parent directories and cutting a torn last line.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let size = file.metadata()?.len();
        let len = end_of_last_line(&mut file, size)?;
        if len < size {
            tracing::warn!(
                path = %path.display(),
                bytes = size - len,
                "Truncating a torn last line left by a crash."
            );
            file.set_len(len)?;
        }
        Ok(Self {
            path: path.to_owned(),
            fsync: false,
            file: Mutex::new(LogFile {
                file,
                len,
                needs_truncate: false,
                cached: 0,
            }),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `lines` (each ending in `\n`) with one write, all or nothing; they are in the OS
    /// when this returns Ok, and on disk after [`LineLog::sync`].
    ///
    /// The write runs on the calling thread: a page-cache write of a few hundred KiB takes tens
    /// of microseconds, and lines written by the thread that has just encoded them are read from
    /// its cache, not from memory.
    pub(crate) async fn append(&self, lines: &[u8]) -> io::Result<()> {
        self.file.lock().await.append(lines)
    }

    /// With `fsync` on, syncs what was appended to disk (on a blocking thread); else nothing.
    pub(crate) async fn sync(&self) -> io::Result<()> {
        if !self.fsync {
            return Ok(());
        }
        let file = self.file.lock().await.file.try_clone()?;
        blocking(move || file.sync_data()).await
    }
}

impl LogFile {
    fn append(&mut self, lines: &[u8]) -> io::Result<()> {
        debug_assert!(lines.ends_with(b"\n"));
        if self.needs_truncate {
            self.file.set_len(self.len)?;
            self.needs_truncate = false;
        }
        if let Err(e) = self.file.write_all(lines) {
            // A partial write (disk full) must not become the start of the next line.
            self.needs_truncate = self.file.set_len(self.len).is_err();
            return Err(e);
        }
        self.len += lines.len() as u64;
        self.cached += lines.len() as u64;
        if self.cached >= DROP_BEHIND_BYTES {
            self.drop_behind();
            self.cached = 0;
        }
        Ok(())
    }

    /// Starts writing the log's dirty pages to disk and drops those already written from the
    /// page cache (Linux's `POSIX_FADV_DONTNEED` does both), so the cache holds about the last
    /// [`DROP_BEHIND_BYTES`] of the log instead of all of it.
    ///
    /// Nothing reads a log while it is written, and the ticks table grows by about 900 bytes a
    /// tick. Cached whole, every page of it is a fresh page the kernel must find; on a VM that
    /// gives free memory back to its host, each is a host fault as well. Dropped behind, the
    /// same few pages are reused, so the kernel neither looks for fresh pages nor takes host
    /// faults for them.
    ///
    /// Advice only: the data is the same either way, so a failure is logged and ignored.
    fn drop_behind(&self) {
        #[cfg(target_os = "linux")]
        if let Err(e) = rustix::fs::fadvise(&self.file, 0, None, rustix::fs::Advice::DontNeed) {
            tracing::debug!(error = %e, "Could not drop a log's written pages from the page cache.");
        }
    }
}

/// Offset just past the last `\n` of the first `size` bytes (0 when there is none).
fn end_of_last_line(file: &mut std::fs::File, size: u64) -> io::Result<u64> {
    const CHUNK: u64 = 64 * 1024;
    let mut end = size;
    let mut buf = vec![0; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_log_longer_than_its_drop_behind_window_reads_back_whole() {
        // The pages it lets go of are read back from disk.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let log = LineLog::open(&path).unwrap();
        let line = format!("{}\n", "x".repeat(999));
        // Appends of 700 lines do not line up with the window; three windows' worth of them.
        let appends = (3 * DROP_BEHIND_BYTES as usize).div_ceil(700 * line.len());
        for _ in 0..appends {
            append_bytes(&log, line.repeat(700).as_bytes()).await;
        }
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), appends * 700 * line.len());
        assert!(complete_lines(&path, &bytes).all(|l| l == &line.as_bytes()[..999]));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_log_lets_the_page_cache_drop_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let mut log = LineLog::open(&path).unwrap();
        // Synced, every page is clean when the log lets go, so none has to wait for writeback.
        log.fsync = true;
        let mebibyte = format!("{}\n", "x".repeat(1023)).repeat(1024);
        let written = 3 * DROP_BEHIND_BYTES;
        for _ in 0..written >> 20 {
            append_bytes(&log, mebibyte.as_bytes()).await;
        }
        let cached = page_cache_bytes(&path);
        assert!(
            cached < DROP_BEHIND_BYTES,
            "{cached} bytes of a {written}-byte log are still in the page cache"
        );
    }

    /// Appends `lines` and syncs them if the log says so.
    async fn append_bytes(log: &LineLog, lines: &[u8]) {
        log.append(lines).await.unwrap();
        log.sync().await.unwrap();
    }

    /// How much of `path` the page cache holds, by util-linux's `fincore`.
    #[cfg(target_os = "linux")]
    fn page_cache_bytes(path: &Path) -> u64 {
        let output = std::process::Command::new("fincore")
            .args(["--bytes", "--noheadings", "--output", "RES"])
            .arg(path)
            .output()
            .expect("fincore (util-linux) runs");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}
