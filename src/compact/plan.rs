//! The compaction's decisions, pure functions of what a date's partition, its manifests and the
//! checkpoints hold: what each file is, which are committed, what earlier runs left to finish,
//! which files go into which output, and the outputs' names. [`super::day`] gathers the view,
//! calls these and carries out what they say.

use std::collections::{BTreeMap, BTreeSet};

use md5::{Digest, Md5};

use super::manifest::{Entry, Manifest};
use crate::checkpoint::Checkpoint;
use crate::model::tick::Position;
use crate::objects::Listed;

/// Name prefix of compacted files.
const COMPACTED: &str = "compacted-";
/// Hex digits of the inputs' digest in a compacted file's name.
const DIGEST_HEX: usize = 16;

/// What a file of a `ticks/dt=…/` partition is, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    /// `{shard}-{first position}.parquet`: one shard's rows between two checkpoints.
    Shard { shard_id: String, first: Position },
    /// `compacted-{date}-{digest}.parquet`: an output of a compaction.
    Compacted,
    /// Any other name (a file put there by hand or by another tool): its rows tell its shards.
    Other,
}

impl Named {
    pub fn of(key: &str) -> Self {
        let name = key.rsplit('/').next().unwrap_or(key);
        let Some(stem) = name.strip_suffix(".parquet") else {
            return Self::Other;
        };
        if is_compacted(stem) {
            return Self::Compacted;
        }
        match stem.rsplit_once('-') {
            Some((shard_id, first)) if !shard_id.is_empty() => match first.parse() {
                Ok(first) => Self::Shard {
                    shard_id: shard_id.to_owned(),
                    first,
                },
                Err(_) => Self::Other,
            },
            _ => Self::Other,
        }
    }
}

/// `compacted-YYYY-MM-DD-<16 hex digits>`, and nothing looser: a Kafka topic named `compacted`
/// has shard files `compacted-0-<offset>.parquet`.
fn is_compacted(stem: &str) -> bool {
    let Some(rest) = stem.strip_prefix(COMPACTED) else {
        return false;
    };
    let (date, digest) = rest.split_at_checked(10).unwrap_or(("", ""));
    let date_like = date.len() == 10
        && date.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let digest = digest.strip_prefix('-').unwrap_or("");
    date_like
        && digest.len() == DIGEST_HEX
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What the checkpoint store says of a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// No checkpoint: none of its rows is committed yet.
    Nothing,
    /// Every row up to and including this position.
    UpTo(Position),
    /// The shard was closed (resharded) and read to its end: every row, for good.
    All,
}

impl Committed {
    pub fn of(checkpoint: Option<&Checkpoint>) -> Self {
        match checkpoint {
            None => Self::Nothing,
            Some(checkpoint) if checkpoint.shard_end => Self::All,
            Some(checkpoint) => Self::UpTo(checkpoint.position.clone()),
        }
    }

    /// Whether the row at `position` is committed: no replay can write it again.
    pub fn holds(&self, position: &Position) -> bool {
        match self {
            Self::Nothing => false,
            Self::UpTo(checkpoint) => position <= checkpoint,
            Self::All => true,
        }
    }
}

/// A file of the partition, and what its name says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub key: String,
    pub bytes: u64,
    pub named: Named,
}

impl File {
    pub fn of(listed: &Listed) -> Self {
        Self {
            key: listed.key.clone(),
            bytes: listed.bytes,
            named: Named::of(&listed.key),
        }
    }
}

/// A file of the partition whose rows a compacted file already holds, by the compacted file's
/// manifest: an input a run did not get to delete, or a shard file written again later (a late
/// write of an owner that lost its lease, or a shard read again from an older checkpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub file: Listed,
    /// What the manifest recorded of it.
    pub entry: Entry,
}

impl Copy {
    /// Its size says it is the file the manifest recorded; otherwise its rows must be counted.
    pub fn same_size(&self) -> bool {
        self.file.bytes == self.entry.bytes
    }
}

/// The copies in `listing` of rows that the compacted files of `manifests` hold. Only a
/// manifest whose compacted file is there counts: one written by a run that stopped before
/// its file, or whose file a later compaction merged, holds nothing.
pub fn copies(listing: &[Listed], manifests: &BTreeMap<String, Manifest>) -> Vec<Copy> {
    let present: BTreeMap<&str, &Listed> = listing.iter().map(|l| (l.key.as_str(), l)).collect();
    let live: Vec<&Manifest> = manifests
        .values()
        .filter(|m| present.contains_key(m.output.as_str()))
        .collect();
    let mut held: BTreeMap<&str, &Entry> = BTreeMap::new();
    for manifest in &live {
        for entry in manifest.held() {
            held.entry(entry.key.as_str()).or_insert(entry);
        }
    }
    // A live output held by another live manifest is an input that one merged: a copy too.
    held.into_iter()
        .filter_map(|(key, entry)| {
            present.get(key).map(|file| Copy {
                file: (*file).clone(),
                entry: entry.clone(),
            })
        })
        .collect()
}

/// The manifests whose compacted file is not in `present`: written by a run that stopped before
/// the file, or of a file a later compaction merged. They hold nothing, and go.
pub fn stale_manifests(
    present: &BTreeSet<&str>,
    manifests: &BTreeMap<String, Manifest>,
) -> Vec<String> {
    manifests
        .iter()
        .filter(|(_, m)| !present.contains(m.output.as_str()))
        .map(|(key, _)| key.clone())
        .collect()
}

/// The files a plan leaves as they are, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Left {
    /// Files with rows past their shard's checkpoint: a replay may write them again.
    pub uncommitted: Vec<String>,
    /// Compacted files of at least half the target size: done.
    pub large: Vec<String>,
    /// Compacted files with nothing new to merge with: alone in their group, or in a group of
    /// compacted files only (merging earlier outputs again would have every run rewrite them).
    pub alone: Vec<String>,
    /// Files under a key a compacted file holds, with other rows: left for someone to look at.
    pub conflicts: Vec<String>,
    /// Files this version cannot merge (not Parquet, or columns it does not know): logged.
    pub unreadable: Vec<String>,
}

impl Left {
    pub fn count(&self) -> usize {
        self.uncommitted.len()
            + self.large.len()
            + self.alone.len()
            + self.conflicts.len()
            + self.unreadable.len()
    }
}

/// Which files go into which compacted file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Each group becomes one compacted file, of at most the target size of inputs.
    pub groups: Vec<Vec<File>>,
    pub left: Left,
}

/// Groups the committed files of a partition into outputs of about `target` bytes.
///
/// A shard file is a candidate once its first row is committed (`committed` by shard; a shard
/// missing there has no checkpoint); its other rows are checked when it is read, as are those of
/// files whose name does not say their shard. Compacted files of at least half the target are
/// left as they are; any other file is a candidate whatever its size, since only compaction
/// sorts a partition's rows by symbol across row groups (a pipeline file's row group is one
/// barrier's rows of all its shard's symbols). Candidates go in a stable order, files of other
/// names, each shard's files by position, then compacted files, and are cut into groups whose
/// sizes add up to at most the target (a larger file is a group of its own). A group is merged
/// only if it holds something new ([`worth_merging`]), so a rerun with nothing new does
/// nothing, and a small compacted file (a day's last output) is merged again only with newer
/// files.
pub fn plan(files: Vec<File>, committed: &BTreeMap<String, Committed>, target: u64) -> Plan {
    let mut left = Left::default();
    let mut candidates = Vec::new();
    for file in files {
        let first_committed = match &file.named {
            Named::Shard { shard_id, first } => committed
                .get(shard_id)
                .is_some_and(|committed| committed.holds(first)),
            Named::Compacted | Named::Other => true,
        };
        if !first_committed {
            left.uncommitted.push(file.key);
        } else if file.named == Named::Compacted && file.bytes.saturating_mul(2) >= target {
            left.large.push(file.key);
        } else {
            candidates.push(file);
        }
    }
    candidates.sort_by(|a, b| order(a).cmp(&order(b)));

    let mut groups: Vec<Vec<File>> = Vec::new();
    let mut size = 0u64;
    for file in candidates {
        let fits = groups
            .last()
            .is_some_and(|_| size.saturating_add(file.bytes) <= target);
        if !fits {
            groups.push(Vec::new());
            size = 0;
        }
        size += file.bytes;
        groups.last_mut().expect("a group was pushed").push(file);
    }
    let (groups, alone): (Vec<_>, Vec<_>) = groups
        .into_iter()
        .partition(|g| worth_merging(g.iter().map(|f| &f.named)));
    left.alone = alone.into_iter().flatten().map(|f| f.key).collect();
    Plan { groups, left }
}

/// Whether a group of files of these names is worth merging: one of them is not a compacted
/// file. A file alone is rewritten too: compacted, its rows are sorted by symbol range.
pub fn worth_merging<'a>(names: impl IntoIterator<Item = &'a Named>) -> bool {
    names.into_iter().any(|named| *named != Named::Compacted)
}

/// The order candidates are grouped in: other names, shard files by shard and position, then
/// compacted files, which so go with the newest files.
fn order(file: &File) -> (u8, &str, Option<&Position>, &str) {
    match &file.named {
        Named::Other => (0, "", None, &file.key),
        Named::Shard { shard_id, first } => (1, shard_id, Some(first), &file.key),
        Named::Compacted => (2, "", None, &file.key),
    }
}

/// The name (without extension) of the compacted file of `inputs` (key and size): the same
/// inputs always give the same name, so a rerun after a crash writes the same keys.
pub fn output_name(date: &str, inputs: &[(&str, u64)]) -> String {
    let mut lines: Vec<String> = inputs
        .iter()
        .map(|(key, bytes)| format!("{key}\t{bytes}\n"))
        .collect();
    lines.sort();
    let mut digest = Md5::new();
    for line in &lines {
        digest.update(line.as_bytes());
    }
    let hex: String = digest
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("{COMPACTED}{date}-{}", &hex[..DIGEST_HEX])
}

/// `{prefix}ticks/dt={date}/{name}.parquet`: beside the files it replaces, in their partition.
pub fn output_key(prefix: &str, date: &str, name: &str) -> String {
    format!("{prefix}ticks/dt={date}/{name}.parquet")
}

/// `{prefix}compaction/dt={date}/`: where the manifests of a date are.
pub fn manifests_folder(prefix: &str, date: &str) -> String {
    format!("{prefix}compaction/dt={date}/")
}

/// The manifest of the compacted file `output_key`.
pub fn manifest_key(prefix: &str, date: &str, output_key: &str) -> String {
    let name = output_key.rsplit('/').next().unwrap_or(output_key);
    let stem = name.strip_suffix(".parquet").unwrap_or(name);
    format!("{}{stem}.json", manifests_folder(prefix, date))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tick::SequenceNumber;

    fn position(sequence: &str) -> Position {
        Position::new(SequenceNumber::new(sequence), 0)
    }

    fn file(key: &str, bytes: u64) -> File {
        File::of(&Listed {
            key: format!("ticks/dt=2026-01-05/{key}"),
            bytes,
        })
    }

    fn keys(files: &[File]) -> Vec<&str> {
        files
            .iter()
            .map(|f| f.key.rsplit('/').next().unwrap())
            .collect()
    }

    fn short(keys: &[String]) -> Vec<&str> {
        keys.iter().map(|k| k.rsplit('/').next().unwrap()).collect()
    }

    #[test]
    fn names_say_what_a_file_is() {
        assert_eq!(
            Named::of("p/ticks/dt=2026-01-05/shardId-000000000001-4959033827.parquet"),
            Named::Shard {
                shard_id: "shardId-000000000001".into(),
                first: position("4959033827")
            }
        );
        assert_eq!(
            Named::of("ticks/dt=2026-01-05/kinetick-ticks-0-17.3.parquet"),
            Named::Shard {
                shard_id: "kinetick-ticks-0".into(),
                first: Position::new(SequenceNumber::new("17"), 3)
            }
        );
        let compacted = output_name("2026-01-05", &[("a", 1)]);
        assert_eq!(
            Named::of(&format!("ticks/dt=2026-01-05/{compacted}.parquet")),
            Named::Compacted
        );
        // A Kafka topic named `compacted` writes shard files, not compacted ones.
        assert!(matches!(
            Named::of("ticks/dt=2026-01-05/compacted-0-1234.parquet"),
            Named::Shard { .. }
        ));
        for other in ["by-hand.parquet", "-12.parquet", "x-12", "shard-1x.parquet"] {
            assert_eq!(Named::of(other), Named::Other, "{other}");
        }
    }

    #[test]
    fn a_row_is_committed_up_to_the_checkpoint_or_once_the_shard_ended() {
        let up_to = Committed::UpTo(position("100"));
        assert!(up_to.holds(&position("99")) && up_to.holds(&position("100")));
        assert!(!up_to.holds(&Position::new(SequenceNumber::new("100"), 1)));
        assert!(!up_to.holds(&position("1000")), "numerically, not as text");
        assert!(!Committed::Nothing.holds(&position("0")));
        assert!(Committed::All.holds(&position("99999999")));
    }

    #[test]
    fn only_files_whose_first_row_is_committed_are_candidates() {
        let committed = BTreeMap::from([
            ("shard-a".to_owned(), Committed::UpTo(position("200"))),
            ("shard-b".to_owned(), Committed::All),
        ]);
        let files = vec![
            file("shard-a-100.parquet", 10),
            file("shard-a-201.parquet", 10),
            file("shard-b-5.parquet", 10),
            file("shard-c-1.parquet", 10),
            file("by-hand.parquet", 10),
        ];
        let plan = plan(files, &committed, 1000);
        assert_eq!(
            short(&plan.left.uncommitted),
            ["shard-a-201.parquet", "shard-c-1.parquet"],
            "past the checkpoint, and a shard without one"
        );
        assert_eq!(plan.groups.len(), 1);
        assert_eq!(
            keys(&plan.groups[0]),
            [
                "by-hand.parquet",
                "shard-a-100.parquet",
                "shard-b-5.parquet"
            ]
        );
    }

    #[test]
    fn groups_add_up_to_at_most_the_target_in_shard_and_position_order() {
        let committed = BTreeMap::from([("s".to_owned(), Committed::All)]);
        // Positions compare as numbers: 9 before 10.
        let files: Vec<File> = [(10, 30), (9, 30), (11, 30), (12, 30), (13, 45), (14, 20)]
            .iter()
            .map(|(first, bytes)| file(&format!("s-{first}.parquet"), *bytes))
            .collect();
        let plan = plan(files, &committed, 100);
        let groups: Vec<Vec<&str>> = plan.groups.iter().map(|g| keys(g)).collect();
        assert_eq!(
            groups,
            [
                vec!["s-9.parquet", "s-10.parquet", "s-11.parquet"],
                vec!["s-12.parquet", "s-13.parquet", "s-14.parquet"],
            ]
        );
        assert!(
            plan.groups
                .iter()
                .all(|g| g.iter().map(|f| f.bytes).sum::<u64>() <= 100)
        );
        assert_eq!(plan.left, Left::default());
    }

    #[test]
    fn large_compacted_files_and_compacted_files_alone_are_left_as_they_are() {
        let committed = BTreeMap::from([("s".to_owned(), Committed::All)]);
        let done = format!("{}.parquet", output_name("2026-01-05", &[("x", 1)]));
        let rest = format!("{}.parquet", output_name("2026-01-05", &[("y", 1)]));
        // A full compacted file stays; the day's last, small one merges with newer files. A
        // large shard file is a group of its own, to be sorted by symbol range.
        let plan = plan(
            vec![
                file(&done, 60),
                file(&rest, 20),
                file("s-1.parquet", 5),
                file("s-2.parquet", 170),
                file("s-3.parquet", 70),
            ],
            &committed,
            100,
        );
        assert_eq!(short(&plan.left.large), [done.as_str()]);
        let groups: Vec<Vec<&str>> = plan.groups.iter().map(|g| keys(g)).collect();
        assert_eq!(
            groups,
            [
                vec!["s-1.parquet"],
                vec!["s-2.parquet"],
                vec!["s-3.parquet", rest.as_str()]
            ]
        );
        assert!(plan.left.alone.is_empty());

        // Nothing new beside the day's small compacted files: nothing to do.
        let other = format!("{}.parquet", output_name("2026-01-05", &[("z", 1)]));
        let again = super::plan(vec![file(&rest, 25), file(&other, 30)], &committed, 100);
        assert!(again.groups.is_empty());
        assert_eq!(again.left.alone.len(), 2);
        assert!(!worth_merging([&Named::Compacted]));
        assert!(worth_merging([&Named::Other]));
        assert!(worth_merging([&Named::Compacted, &Named::Other]));
    }

    #[test]
    fn a_manifest_counts_only_while_its_output_is_there() {
        let listed = |key: &str, bytes| Listed {
            key: key.to_owned(),
            bytes,
        };
        let entry = |key: &str, bytes| Entry {
            key: key.to_owned(),
            bytes,
            rows: 3,
        };
        let live = Manifest {
            output: "out-1".into(),
            date: "d".into(),
            inputs: vec![entry("in-1", 10), entry("in-2", 10), entry("out-0", 50)],
            earlier: vec![entry("old-1", 7)],
        };
        let merged = Manifest {
            output: "out-0".into(),
            date: "d".into(),
            inputs: vec![entry("old-1", 7)],
            earlier: vec![],
        };
        let unwritten = Manifest {
            output: "out-2".into(),
            date: "d".into(),
            inputs: vec![entry("in-3", 10)],
            earlier: vec![],
        };
        let manifests = BTreeMap::from([
            ("m-0".to_owned(), merged),
            ("m-1".to_owned(), live),
            ("m-2".to_owned(), unwritten),
        ]);
        // A run stopped while deleting out-1's inputs; old-1 was written again since, larger.
        let listing = [
            listed("in-2", 10),
            listed("in-3", 10),
            listed("old-1", 8),
            listed("out-0", 50),
            listed("out-1", 70),
        ];
        let found = copies(&listing, &manifests);
        let found: Vec<(&str, bool)> = found
            .iter()
            .map(|c| (c.file.key.as_str(), c.same_size()))
            .collect();
        assert_eq!(found, [("in-2", true), ("old-1", false), ("out-0", true)]);

        let present = BTreeSet::from(["in-3", "out-1"]);
        assert_eq!(stale_manifests(&present, &manifests), ["m-0", "m-2"]);
    }

    #[test]
    fn output_names_depend_on_the_inputs_only() {
        let a = output_name("2026-01-05", &[("k1", 10), ("k2", 20)]);
        assert_eq!(a, output_name("2026-01-05", &[("k2", 20), ("k1", 10)]));
        assert_ne!(a, output_name("2026-01-05", &[("k1", 10), ("k2", 21)]));
        assert!(a.starts_with("compacted-2026-01-05-") && a.len() == 20 + 1 + 16);
        let key = output_key("lake/", "2026-01-05", &a);
        assert_eq!(
            manifest_key("lake/", "2026-01-05", &key),
            format!("lake/compaction/dt=2026-01-05/{a}.json")
        );
    }
}
