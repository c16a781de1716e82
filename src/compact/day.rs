//! One date's compaction, in the order that keeps every row in the lake exactly once whenever
//! the run stops: lock the date, finish what earlier runs left, plan, then for each group renew
//! the lock, write its manifest, write its compacted file, and only then delete its inputs.
//! [`super`] tells the whole sequence; the decisions are [`super::plan`]'s, the merge
//! [`super::merge`]'s, the lock [`super::lock`]'s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tokio::sync::mpsc;

use super::lock::{self, DateLock};
use super::manifest::{Entry, Manifest};
use super::merge::{self, Input, MergeError};
use super::plan::{self, Committed, File, Named};
use super::upload::{CHUNKS_AHEAD, PartWriter};
use super::{CompactError, DayOutcome};
use crate::checkpoint::{CheckpointError, CheckpointStore};
use crate::objects::{Listed, ObjectError, ObjectStore};
use crate::retry;

/// Files fetched at once.
const READ_AHEAD: usize = 4;
/// Objects deleted at once.
const DELETES_AT_ONCE: usize = 8;

/// A lake to compact: its store and prefix, the checkpoints of its shards, and what to aim for.
pub struct Compactor {
    pub objects: Arc<dyn ObjectStore>,
    /// `""` or a folder ending in `/`, as `lake.prefix`.
    pub prefix: String,
    pub checkpoints: Arc<dyn CheckpointStore>,
    pub target: u64,
    pub dry_run: bool,
    pub progress: Option<indicatif::ProgressBar>,
    /// This run's name in the locks it takes ([`lock::run_id`]).
    pub run: String,
    /// What the checkpoint store said of each shard asked about so far.
    committed: BTreeMap<String, Committed>,
}

impl Compactor {
    pub fn new(
        objects: Arc<dyn ObjectStore>,
        prefix: String,
        checkpoints: Arc<dyn CheckpointStore>,
        target: u64,
        dry_run: bool,
    ) -> Self {
        Self {
            objects,
            prefix,
            checkpoints,
            target,
            dry_run,
            progress: None,
            run: lock::run_id(),
            committed: BTreeMap::new(),
        }
    }

    /// Compacts the `dt=date` partition, holding its lock (a dry run only reports one another
    /// run holds). The lock is released whether the work succeeded or not.
    pub async fn day(&mut self, date: &str) -> Result<DayOutcome, CompactError> {
        let now = chrono::Utc::now();
        if self.dry_run {
            if let Some(holder) = lock::held(&*self.objects, &self.prefix, date, now).await? {
                tracing::warn!(date, run = %holder.run, expires_at = %holder.expires_at,
                    "Another run holds the date's lock: a run now would leave it untouched.");
            }
            return self.locked_day(date, None).await;
        }
        let mut lock = DateLock::take(&*self.objects, &self.prefix, date, &self.run, now).await?;
        let done = self.locked_day(date, Some(&mut lock)).await;
        if let Err(error) = lock.release(&*self.objects).await {
            tracing::warn!(date, %error,
                "The date's lock could not be released; it holds until its lease runs out.");
        }
        done
    }

    /// The work of [`Compactor::day`], under `lock` (`None` in a dry run).
    async fn locked_day(
        &mut self,
        date: &str,
        mut lock: Option<&mut DateLock>,
    ) -> Result<DayOutcome, CompactError> {
        let started = Instant::now();
        let mut outcome = DayOutcome::new(date, self.dry_run);
        let listing = self.listing(date).await?;
        let mut manifests = self.manifests(date).await?;
        outcome.found = listing.len();
        let present = self
            .finish_earlier_runs(&listing, &mut manifests, &mut outcome)
            .await?;
        let groups = self.plan(present, &mut outcome).await?;
        for group in groups {
            if let Some(lock) = lock.as_deref_mut() {
                lock.renew(&*self.objects, chrono::Utc::now()).await?;
            }
            self.group(date, group, &manifests, &mut outcome).await?;
        }
        outcome.seconds = started.elapsed().as_secs_f64();
        Ok(outcome)
    }

    /// The tick files of `date`, with their sizes.
    async fn listing(&self, date: &str) -> Result<Vec<Listed>, CompactError> {
        let partition = format!("{}ticks/dt={date}/", self.prefix);
        let listing = self
            .call("list", |objects| {
                let partition = partition.clone();
                async move { objects.list_sized(&partition).await }
            })
            .await?;
        Ok(listing
            .into_iter()
            .filter(|l| l.key.ends_with(".parquet"))
            .collect())
    }

    /// Step 1: deletes the copies of rows that compacted files hold (a run's inputs it did not
    /// get to delete, or files written again), and the manifests that hold nothing. Returns the
    /// files left to plan with: neither those copies nor files that only look like them.
    async fn finish_earlier_runs<'a>(
        &self,
        listing: &'a [Listed],
        manifests: &mut BTreeMap<String, Manifest>,
        outcome: &mut DayOutcome,
    ) -> Result<Vec<&'a Listed>, CompactError> {
        let mut gone = BTreeSet::new();
        for copy in plan::copies(listing, manifests) {
            let same =
                copy.same_size() || self.rows_of(&copy.file.key).await? == Some(copy.entry.rows);
            if same {
                gone.insert(copy.file.key);
            } else {
                tracing::warn!(key = %copy.file.key, held_by_rows = copy.entry.rows,
                    "A file has the name of one a compacted file holds, but other rows; left as it is.");
                outcome.left.conflicts.push(copy.file.key);
            }
        }
        if !gone.is_empty() {
            tracing::warn!(date = %outcome.date, files = gone.len(),
                "Deleting copies of rows compacted files hold (left by a run that stopped, or written again).");
            self.delete_all(gone.iter().cloned()).await?;
            outcome.copies_deleted = gone.len();
        }
        let present: Vec<&Listed> = listing.iter().filter(|l| !gone.contains(&l.key)).collect();
        let present_keys: BTreeSet<&str> = present.iter().map(|l| l.key.as_str()).collect();
        let stale = plan::stale_manifests(&present_keys, manifests);
        self.delete_all(stale.iter().cloned()).await?;
        for key in stale {
            manifests.remove(&key);
        }
        let conflicts: BTreeSet<&String> = outcome.left.conflicts.iter().collect();
        Ok(present
            .into_iter()
            .filter(|l| !conflicts.contains(&l.key))
            .collect())
    }

    /// Step 2: the groups of committed files, by the shards' checkpoints; what is left goes into
    /// `outcome`.
    async fn plan(
        &mut self,
        present: Vec<&Listed>,
        outcome: &mut DayOutcome,
    ) -> Result<Vec<Vec<File>>, CompactError> {
        let files: Vec<File> = present.into_iter().map(File::of).collect();
        let shards: Vec<String> = files
            .iter()
            .filter_map(|f| match &f.named {
                Named::Shard { shard_id, .. } => Some(shard_id.clone()),
                _ => None,
            })
            .collect();
        self.load_committed(shards).await?;
        let planned = plan::plan(files, &self.committed, self.target);
        let conflicts = std::mem::take(&mut outcome.left.conflicts);
        outcome.left = planned.left;
        outcome.left.conflicts = conflicts;
        if let Some(bar) = &self.progress {
            bar.inc_length(planned.groups.iter().map(|g| g.len() as u64).sum());
        }
        Ok(planned.groups)
    }

    /// The manifests of `date`, by key.
    async fn manifests(&self, date: &str) -> Result<BTreeMap<String, Manifest>, CompactError> {
        let folder = plan::manifests_folder(&self.prefix, date);
        let keys = self
            .call("list", |objects| {
                let folder = folder.clone();
                async move { objects.list(&folder).await }
            })
            .await?;
        let mut manifests = BTreeMap::new();
        for key in keys.into_iter().filter(|k| k.ends_with(".json")) {
            let Some(body) = self.get(&key).await? else {
                continue;
            };
            let manifest =
                Manifest::from_json(&body).map_err(|message| CompactError::Manifest {
                    key: key.clone(),
                    message,
                })?;
            manifests.insert(key, manifest);
        }
        Ok(manifests)
    }

    /// Step 3: merges one group into a compacted file and swaps it in: its manifest, the file,
    /// then its inputs go, then the manifests of compacted inputs.
    async fn group(
        &mut self,
        date: &str,
        group: Vec<File>,
        manifests: &BTreeMap<String, Manifest>,
        outcome: &mut DayOutcome,
    ) -> Result<(), CompactError> {
        let inputs = self.read_group(group, outcome).await?;
        if !plan::worth_merging(inputs.iter().map(|(file, _)| &file.named)) {
            let keys = inputs.into_iter().map(|(file, _)| file.key);
            outcome.left.alone.extend(keys);
            return Ok(());
        }
        let manifest = self.manifest_of(date, &inputs, manifests);
        let rows: u64 = manifest.inputs.iter().map(|e| e.rows).sum();
        let bytes_in: u64 = manifest.inputs.iter().map(|e| e.bytes).sum();
        if !self.dry_run {
            let inputs = inputs.into_iter().map(|(_, input)| input).collect();
            let bytes_out = self.swap(date, &manifest, rows, inputs).await?;
            outcome.bytes_out += bytes_out;
            tracing::info!(date, output = %manifest.output, files = manifest.inputs.len(), rows,
                bytes_in, bytes_out, "Compacted files.");
        }
        outcome.files_in += manifest.inputs.len();
        outcome.files_out += 1;
        outcome.rows += rows;
        outcome.bytes_in += bytes_in;
        Ok(())
    }

    /// The manifest of the compacted file of `inputs`, named by them; the shard files that
    /// compacted inputs held come from their manifests.
    fn manifest_of(
        &self,
        date: &str,
        inputs: &[(File, Input)],
        manifests: &BTreeMap<String, Manifest>,
    ) -> Manifest {
        let named: Vec<(&str, u64)> = inputs
            .iter()
            .map(|(file, _)| (file.key.as_str(), file.bytes))
            .collect();
        let name = plan::output_name(date, &named);
        let earlier = inputs
            .iter()
            .filter(|(file, _)| file.named == Named::Compacted)
            .filter_map(|(file, _)| {
                manifests.get(&plan::manifest_key(&self.prefix, date, &file.key))
            })
            .flat_map(Manifest::held)
            .filter(|entry| Named::of(&entry.key) != Named::Compacted)
            .cloned()
            .collect();
        Manifest {
            output: plan::output_key(&self.prefix, date, &name),
            date: date.to_owned(),
            inputs: inputs
                .iter()
                .map(|(file, input)| Entry {
                    key: file.key.clone(),
                    bytes: file.bytes,
                    rows: input.inspected.rows,
                })
                .collect(),
            earlier,
        }
    }

    /// Writes the manifest, then the compacted file of `inputs` (`rows` rows), then deletes the
    /// inputs and the manifests of compacted inputs. Returns the compacted file's bytes.
    async fn swap(
        &self,
        date: &str,
        manifest: &Manifest,
        rows: u64,
        inputs: Vec<Input>,
    ) -> Result<u64, CompactError> {
        let output = &manifest.output;
        let key = plan::manifest_key(&self.prefix, date, output);
        let body = Bytes::from(manifest.to_json());
        self.call("put", |objects| {
            let (key, body) = (key.clone(), body.clone());
            async move { objects.put(&key, body, "application/json").await }
        })
        .await?;
        let (written, bytes_out) = self.write(output, inputs).await?;
        if written != rows {
            // Never delete inputs a compacted file does not hold in full: take it back.
            self.delete_all([output.clone(), key].into_iter()).await?;
            return Err(CompactError::Task(format!(
                "{output}: merged {written} rows of the inputs' {rows}; nothing was deleted"
            )));
        }
        let input_keys = manifest.inputs.iter().map(|e| e.key.clone());
        self.delete_all(input_keys).await?;
        let earlier_manifests = manifest
            .inputs
            .iter()
            .filter(|e| Named::of(&e.key) == Named::Compacted)
            .map(|e| plan::manifest_key(&self.prefix, date, &e.key));
        self.delete_all(earlier_manifests).await?;
        Ok(bytes_out)
    }

    /// Fetches and inspects the files of a group, keeping those whose every row is committed
    /// (compacted files are: their rows were when they were merged) and which fit the lake.
    async fn read_group(
        &mut self,
        group: Vec<File>,
        outcome: &mut DayOutcome,
    ) -> Result<Vec<(File, Input)>, CompactError> {
        let objects = self.objects.clone();
        let fetched: Vec<(File, Option<Bytes>)> = futures::stream::iter(group)
            .map(|file| {
                let objects = objects.clone();
                async move {
                    let key = file.key.clone();
                    let body =
                        retry::bounded("get", ObjectError::failure, || objects.get(&key)).await?;
                    Ok::<_, ObjectError>((file, body))
                }
            })
            .buffered(READ_AHEAD)
            .inspect_ok(|_| {
                if let Some(bar) = &self.progress {
                    bar.inc(1);
                }
            })
            .try_collect()
            .await?;
        let inspected = tokio::task::spawn_blocking(move || {
            fetched
                .into_iter()
                // A file deleted since the listing is no longer there to merge.
                .filter_map(|(file, body)| body.map(|body| (file, body)))
                .map(|(file, body)| {
                    let inspected = merge::inspect(&file.key, &body);
                    (file, body, inspected)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| CompactError::Task(e.to_string()))?;

        let mut inputs = Vec::new();
        for (file, body, inspected) in inspected {
            let inspected = match inspected {
                Ok(inspected) => inspected,
                Err(error) => {
                    tracing::warn!(%error, "A file kinetick cannot merge; left as it is.");
                    outcome.left.unreadable.push(file.key);
                    continue;
                }
            };
            if file.named != Named::Compacted {
                self.load_committed(inspected.last.keys().cloned()).await?;
                let committed = inspected.last.iter().all(|(shard, last)| {
                    self.committed
                        .get(shard)
                        .is_some_and(|committed| committed.holds(last))
                });
                if !committed {
                    outcome.left.uncommitted.push(file.key);
                    continue;
                }
            }
            let input = Input {
                key: file.key.clone(),
                body,
                inspected,
            };
            inputs.push((file, input));
        }
        Ok(inputs)
    }

    /// Merges `inputs` into the compacted file `key`, streamed to the store as it is written;
    /// tried again after a transient failure of the store (the inputs are still in memory).
    /// Returns its rows and bytes.
    async fn write(&self, key: &str, inputs: Vec<Input>) -> Result<(u64, u64), CompactError> {
        let inputs = Arc::new(inputs);
        retry::bounded("put", CompactError::failure, || {
            let (inputs, objects, bar) =
                (inputs.clone(), self.objects.clone(), self.progress.clone());
            async move {
                let (sender, receiver) = mpsc::channel(CHUNKS_AHEAD);
                let merging = tokio::task::spawn_blocking(move || {
                    let progress = |rows: u64| {
                        if let Some(bar) = &bar {
                            bar.set_message(format!("{} rows merged", indicatif::HumanCount(rows)));
                        }
                    };
                    let (rows, writer) = merge::merge(&inputs, PartWriter::new(sender), progress)?;
                    let bytes = writer
                        .finish()
                        .map_err(|e| MergeError::Output(e.to_string()))?;
                    Ok::<_, MergeError>((rows, bytes))
                });
                let uploaded = objects
                    .put_parts(key, "application/vnd.apache.parquet", receiver)
                    .await;
                let merged = merging
                    .await
                    .map_err(|e| CompactError::Task(e.to_string()))?;
                match (merged, uploaded) {
                    (Ok(written), Ok(())) => Ok(written),
                    // The merge stopped: the upload's error only says it got no end.
                    (Err(merge), Err(upload)) if upload.is_unfinished() => Err(merge.into()),
                    (_, Err(upload)) => Err(upload.into()),
                    (Err(merge), Ok(())) => Err(merge.into()),
                }
            }
        })
        .await
    }

    /// Asks the checkpoint store about each of `shards` not asked about yet.
    async fn load_committed(
        &mut self,
        shards: impl IntoIterator<Item = String>,
    ) -> Result<(), CompactError> {
        for shard in shards {
            if self.committed.contains_key(&shard) {
                continue;
            }
            let store = self.checkpoints.clone();
            let checkpoint = retry::bounded("checkpoint", CheckpointError::failure, || {
                store.load(&shard)
            })
            .await?;
            self.committed
                .insert(shard, Committed::of(checkpoint.as_ref()));
        }
        Ok(())
    }

    /// The rows a file's footer counts; `None` if it is gone or is not a Parquet file.
    async fn rows_of(&self, key: &str) -> Result<Option<u64>, CompactError> {
        let Some(body) = self.get(key).await? else {
            return Ok(None);
        };
        Ok(ParquetRecordBatchReaderBuilder::try_new(body)
            .ok()
            .and_then(|reader| u64::try_from(reader.metadata().file_metadata().num_rows()).ok()))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, CompactError> {
        let key = key.to_owned();
        self.call("get", |objects| {
            let key = key.clone();
            async move { objects.get(&key).await }
        })
        .await
    }

    /// Deletes `keys`, a few at a time; in a dry run, nothing.
    async fn delete_all(&self, keys: impl Iterator<Item = String>) -> Result<(), CompactError> {
        if self.dry_run {
            return Ok(());
        }
        let objects = self.objects.clone();
        futures::stream::iter(keys)
            .map(|key| {
                let objects = objects.clone();
                async move {
                    retry::bounded("delete", ObjectError::failure, || objects.delete(&key)).await
                }
            })
            .buffer_unordered(DELETES_AT_ONCE)
            .try_collect::<()>()
            .await?;
        Ok(())
    }

    /// A store call, tried again after a transient failure.
    async fn call<T, F, Fut>(&self, what: &str, call: F) -> Result<T, CompactError>
    where
        F: Fn(Arc<dyn ObjectStore>) -> Fut,
        Fut: Future<Output = Result<T, ObjectError>>,
    {
        let objects = &self.objects;
        Ok(retry::bounded(what, ObjectError::failure, || call(objects.clone())).await?)
    }
}
