//! `kinetick compact`: rewrites the small files of a date's lake partition as few large ones, for
//! Athena, which pays per file. Reads and writes through the [`ObjectStore`] port (a directory
//! `kinetick demo` wrote, or `s3://bucket/prefix` through the same S3 store as `kinetick run`)
//! and reads the shards' checkpoints (`DIR/checkpoints`, or the DynamoDB table
//! `aws.checkpoint-table`).
//!
//! The promise it keeps is the lake's: every tick once. The pipeline writes a shard's rows after
//! its checkpoint again, under the same keys, when it replays them after a crash; had those files
//! been compacted and deleted meanwhile, the replayed file would add their rows a second time.
//! So only *committed* files are merged: those whose every row is at or before its shard's
//! checkpoint (a shard that ended counts as committed to its end). Everything else is left as
//! it is and reported.
//!
//! For each date, in this order (each step in [`day`]):
//!
//! 0. **Lock the date.** Before any write or delete of it, the run takes the date's lock
//!    `{prefix}compaction/dt=D/lock` with a conditional write, renews its lease before each
//!    group and deletes it at the end ([`lock`]). While another run holds it, the date is left
//!    untouched and the run fails; a lock whose lease ran out (its run died) is taken over. So
//!    two runs never work on one date at once, and a run whose lock was taken over stops before
//!    its next write. A dry run only reports a lock.
//! 1. **Finish earlier runs.** The manifests under `{prefix}compaction/dt=D/` say which files
//!    each compacted file holds ([`manifest`]). A file the partition still has that a present
//!    compacted file holds (an input a run did not get to delete, or a shard file written again
//!    later) is a copy: deleted once its size, or failing that its row count, matches what the
//!    manifest recorded ([`plan::copies`]). A manifest whose compacted file is not there goes
//!    ([`plan::stale_manifests`]).
//! 2. **Plan.** Shard files whose first row is committed, files of other names and small
//!    compacted files are cut into groups of at most `--target-size` bytes; files of half the
//!    target or more stay, and a group is merged only if it holds a file compaction did not
//!    write, so a rerun with nothing new does nothing ([`plan::plan`]).
//! 3. **For each group**: fetch and inspect its files, keeping those whose every row is
//!    committed ([`merge::inspect`], the checkpoint rule of [`plan::Committed`]); write the
//!    manifest; write the compacted file, named by a digest of its inputs, in the lake's order
//!    and format and streamed to the store a row group at a time ([`merge`], [`upload`]); then
//!    delete the inputs, then the manifests of compacted inputs.
//!
//! A run that stops anywhere leaves the lake whole, and running it again finishes the job (once
//! the lease of its lock ran out, if it died holding it): a manifest without its file holds
//! nothing and goes; once the file is there, its inputs are copies and go; the same inputs give
//! the same names, so a file written again replaces itself. Manifests deleted by hand defeat
//! this. Between writing a compacted file and deleting its inputs, a query sees those rows
//! twice.

pub mod day;
pub mod lock;
pub mod manifest;
pub mod merge;
pub mod plan;
pub mod upload;

use std::fmt;
use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context;
use indicatif::{DecimalBytes, HumanCount};

use self::day::Compactor;
use self::merge::MergeError;
use self::plan::Left;
use crate::checkpoint::CheckpointError;
use crate::checkpoint::file::FileCheckpointStore;
use crate::config::Config;
use crate::failure::Failure;
use crate::objects::local::LocalObjectStore;
use crate::objects::{ObjectError, ObjectStore};
use crate::report::deliver::Aws;
use crate::report::lake_reader::{LakeLocation, resolve_day};

/// `--target-size` by default: what Athena's guidance calls a good file size.
pub const DEFAULT_TARGET: &str = "128MB";

/// What `kinetick compact` was asked for.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// A directory, or `s3://bucket[/prefix]`.
    pub lake: String,
    /// First date (`YYYY-MM-DD`, `today` or `yesterday`, UTC).
    pub date: String,
    /// Last date of a range.
    pub to: Option<String>,
    /// Bytes of inputs per compacted file, at most.
    pub target: u64,
    /// Plan only: write and delete nothing.
    pub dry_run: bool,
    pub progress: bool,
}

/// Why a date's compaction stopped; [`CompactError::failure`] says whether to try again. The
/// lake is whole whatever step it stopped at, and the next run finishes the job.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Merge(#[from] MergeError),
    #[error(
        "compaction manifest {key} cannot be read ({message}); it records which files a \
         compacted file holds, so nothing of its date is touched until it is fixed"
    )]
    Manifest { key: String, message: String },
    #[error("a compaction task failed: {0}")]
    Task(String),
    /// Another run holds the date's lock ([`lock`]); nothing of the date was touched.
    #[error(
        "{date} is being compacted by run {run} (lock {key}, expires {}); nothing of it was \
         touched: try again after that",
        expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )]
    Locked {
        date: String,
        key: String,
        run: String,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    /// This run's lease of the date's lock ran out and another run took it.
    #[error(
        "the compaction lock {key} of {date} is now run {run}'s (this run's lease ran out); \
         stopped before the next write, and a later run finishes the date"
    )]
    LockLost {
        date: String,
        key: String,
        run: String,
    },
    #[error(
        "compaction lock {key} cannot be read ({message}); if no run of its date is under way, \
         delete it"
    )]
    LockUnreadable { key: String, message: String },
}

impl CompactError {
    /// Only the store's transient failures are worth another try.
    pub fn failure(&self) -> Failure {
        match self {
            CompactError::Object(error) => error.failure(),
            CompactError::Checkpoint(error) => error.failure(),
            _ => Failure::Refused,
        }
    }
}

/// What one date's compaction did (or, in a dry run, would do).
#[derive(Debug, Clone, Default)]
pub struct DayOutcome {
    pub date: String,
    pub dry_run: bool,
    /// Tick files the partition held.
    pub found: usize,
    pub files_in: usize,
    pub files_out: usize,
    pub rows: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Copies of rows compacted files hold, deleted (left by a run that stopped, or written
    /// again).
    pub copies_deleted: usize,
    pub left: Left,
    pub seconds: f64,
}

impl DayOutcome {
    pub fn new(date: &str, dry_run: bool) -> Self {
        Self {
            date: date.to_owned(),
            dry_run,
            ..Self::default()
        }
    }
}

impl fmt::Display for DayOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let date = &self.date;
        if self.found == 0 {
            return writeln!(f, "{date}  no tick files");
        }
        let (files, rows) = (self.files_in, HumanCount(self.rows));
        let bytes_in = DecimalBytes(self.bytes_in);
        match (self.dry_run, self.files_out) {
            (_, 0) => writeln!(f, "{date}  nothing to merge ({} files)", self.found)?,
            (true, out) => writeln!(
                f,
                "{date}  would merge {files} files into {out}, {rows} rows, {bytes_in} (dry run)"
            )?,
            (false, out) => writeln!(
                f,
                "{date}  {files} files -> {out}, {rows} rows, {bytes_in} -> {}, {:.1} s",
                DecimalBytes(self.bytes_out),
                self.seconds
            )?,
        }
        let left = &self.left;
        let reasons: Vec<String> = [
            (left.uncommitted.len(), "past their shard's checkpoint"),
            (
                left.large.len(),
                "compacted already, of half the target or more",
            ),
            (left.alone.len(), "with nothing new to merge with"),
            (
                left.conflicts.len(),
                "named as files a compacted file holds, with other rows",
            ),
            (left.unreadable.len(), "that cannot be merged (see the log)"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, why)| format!("{n} {why}"))
        .collect();
        if !reasons.is_empty() {
            writeln!(f, "            left as they are: {}", reasons.join(", "))?;
        }
        if self.copies_deleted > 0 {
            let verb = if self.dry_run {
                "would delete"
            } else {
                "deleted"
            };
            let (n, copies) = match self.copies_deleted {
                1 => (1, "copy"),
                n => (n, "copies"),
            };
            writeln!(
                f,
                "            {verb} {n} {copies} of rows compacted files hold (inputs of a run \
                 that stopped, or files written again)"
            )?;
        }
        Ok(())
    }
}

/// What the command prints at the end.
#[derive(Debug, Clone)]
pub struct CompactOutcome {
    pub lake: String,
    pub days: Vec<DayOutcome>,
}

impl fmt::Display for CompactOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sum = |of: fn(&DayOutcome) -> u64| self.days.iter().map(of).sum::<u64>();
        let dates = match self.days.len() {
            1 => "1 date".to_owned(),
            n => format!("{n} dates"),
        };
        let (files_in, files_out) = (sum(|d| d.files_in as u64), sum(|d| d.files_out as u64));
        let (rows, bytes_in) = (
            HumanCount(sum(|d| d.rows)),
            DecimalBytes(sum(|d| d.bytes_in)),
        );
        let lake = &self.lake;
        if self.days.first().is_some_and(|d| d.dry_run) {
            writeln!(
                f,
                "kinetick compact (dry run): {dates} of {lake}: would merge {files_in} files \
                 into {files_out}, {rows} rows, {bytes_in}"
            )
        } else {
            let bytes_out = DecimalBytes(sum(|d| d.bytes_out));
            writeln!(
                f,
                "kinetick compact: {dates} of {lake}: {files_in} files -> {files_out}, {rows} \
                 rows, {bytes_in} -> {bytes_out}"
            )
        }
    }
}

/// Compacts each date of the options' range in turn, printing a line per date as it is done;
/// must run inside a tokio runtime.
pub async fn run(config: &Config, options: CompactOptions) -> anyhow::Result<CompactOutcome> {
    let location = LakeLocation::parse(&options.lake)?;
    let today = chrono::Utc::now().date_naive();
    let from = resolve_day(&options.date, today);
    let to = options.to.as_deref().map(|to| resolve_day(to, today));
    let dates = dates(&from, to.as_deref())?;
    let aws = Aws::default();
    let (mut compactor, lake) = open(config, &location, &aws, &options).await?;
    let bar = progress_bar(options.progress);
    compactor.progress = bar.clone();
    let mut days = Vec::new();
    let mut failed = None;
    for date in &dates {
        match compactor.day(date).await {
            Ok(day) => {
                let line = day.to_string();
                match &bar {
                    Some(bar) => bar.suspend(|| print!("{line}")),
                    None => print!("{line}"),
                }
                days.push(day);
            }
            Err(error) => {
                failed = Some(anyhow::Error::new(error).context(format!("compacting {date}")));
                break;
            }
        }
    }
    if let Some(bar) = bar {
        crate::telemetry::set_progress_bar(None);
        bar.finish_and_clear();
    }
    if let Some(error) = failed {
        return Err(error);
    }
    Ok(CompactOutcome { lake, days })
}

/// Every date from `from` to `to` (or `from` alone), as `YYYY-MM-DD`.
fn dates(from: &str, to: Option<&str>) -> anyhow::Result<Vec<String>> {
    let parse = |date: &str| {
        chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .ok()
            .filter(|_| date.len() == 10)
            .with_context(|| format!("{date:?} is not a date: YYYY-MM-DD, today or yesterday"))
    };
    let first = parse(from)?;
    let last = to.map(parse).transpose()?.unwrap_or(first);
    anyhow::ensure!(last >= first, "--to {last} is before --date {first}");
    Ok(first
        .iter_days()
        .take_while(|day| *day <= last)
        .map(|day| day.format("%Y-%m-%d").to_string())
        .collect())
}

/// The compactor of the lake at `location`, and the lake as messages name it. A directory holds
/// the lake where `kinetick demo` puts it (`lake.prefix` applies) and its checkpoints in
/// `checkpoints/`; on S3 the store is the one `kinetick run` writes through, and the checkpoints
/// are in the DynamoDB table `aws.checkpoint-table` (large snapshots in `aws.bucket`, or the
/// lake's bucket).
async fn open(
    config: &Config,
    location: &LakeLocation,
    aws: &Aws,
    options: &CompactOptions,
) -> anyhow::Result<(Compactor, String)> {
    let (objects, prefix, checkpoints, root): (Arc<dyn ObjectStore>, String, _, String) =
        match location {
            LakeLocation::Directory(dir) => {
                anyhow::ensure!(dir.is_dir(), "--lake {}: no such directory", dir.display());
                let checkpoints = dir.join("checkpoints");
                if !checkpoints.is_dir() {
                    tracing::warn!(dir = %checkpoints.display(),
                        "No checkpoints beside the lake: no file counts as committed.");
                }
                let prefix = config.lake.prefix.clone();
                let root = format!(
                    "{}/{prefix}",
                    dir.display().to_string().trim_end_matches('/')
                );
                let checkpoints: Arc<dyn crate::checkpoint::CheckpointStore> =
                    Arc::new(FileCheckpointStore::new(checkpoints));
                (
                    Arc::new(LocalObjectStore::new(dir.clone())),
                    prefix,
                    checkpoints,
                    root,
                )
            }
            LakeLocation::S3 { bucket, prefix } => {
                let sdk = aws.sdk().await;
                let objects: Arc<dyn ObjectStore> = Arc::new(crate::ports::s3_objects(
                    &config.aws,
                    sdk,
                    bucket,
                    &aws.metrics,
                ));
                let snapshots: Arc<dyn ObjectStore> = match config.aws.bucket.as_str() {
                    "" => objects.clone(),
                    other if other == bucket => objects.clone(),
                    other => Arc::new(crate::ports::s3_objects(
                        &config.aws,
                        sdk,
                        other,
                        &aws.metrics,
                    )),
                };
                let checkpoints: Arc<dyn crate::checkpoint::CheckpointStore> = Arc::new(
                    crate::ports::aws_checkpoints(config, sdk, snapshots, &aws.metrics),
                );
                (objects, prefix.clone(), checkpoints, location.to_string())
            }
        };
    let compactor = Compactor::new(
        objects,
        prefix,
        checkpoints,
        options.target,
        options.dry_run,
    );
    Ok((compactor, root))
}

/// A bar over the files to read, on a terminal only; it grows as each date's plan is known.
fn progress_bar(enabled: bool) -> Option<indicatif::ProgressBar> {
    let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {prefix} {bar:30} {pos}/{len} files  {msg}  eta {eta}",
            )
            .expect("valid progress template"),
        );
        bar.set_prefix("compacting the lake");
        bar
    });
    crate::telemetry::set_progress_bar(bar.clone());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_a_range() {
        assert_eq!(dates("2026-01-05", None).unwrap(), ["2026-01-05"]);
        assert_eq!(
            dates("2026-02-27", Some("2026-03-01")).unwrap(),
            ["2026-02-27", "2026-02-28", "2026-03-01"]
        );
        assert!(dates("2026-01-06", Some("2026-01-05")).is_err());
        assert!(dates("2026-1-5", None).is_err());
        assert!(dates("today", None).is_err(), "resolved before");
    }

    #[test]
    fn a_line_per_date() {
        let mut day = DayOutcome::new("2026-01-05", false);
        assert_eq!(day.to_string(), "2026-01-05  no tick files\n");
        day.found = 50;
        day.files_in = 48;
        day.files_out = 1;
        day.rows = 999_029;
        day.bytes_in = 50_213_395;
        day.bytes_out = 48_000_000;
        day.seconds = 2.04;
        day.left.uncommitted = vec!["a".into(), "b".into()];
        day.copies_deleted = 3;
        assert_eq!(
            day.to_string(),
            "2026-01-05  48 files -> 1, 999,029 rows, 50.21 MB -> 48.00 MB, 2.0 s\n            \
             left as they are: 2 past their shard's checkpoint\n            \
             deleted 3 copies of rows compacted files hold (inputs of a run that stopped, or \
             files written again)\n"
        );
        day.dry_run = true;
        assert!(day.to_string().starts_with(
            "2026-01-05  would merge 48 files into 1, 999,029 rows, 50.21 MB (dry run)\n"
        ));
    }
}
