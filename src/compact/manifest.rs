//! The record a compaction keeps of each compacted file: which files it merged, and which shard
//! files' rows it holds. Written before the compacted file, so that a run that stops anywhere
//! leaves enough for the next to finish or undo it (see [`super::plan::copies`]).
//!
//! In: the inputs of one output. Out: JSON at `{prefix}compaction/dt=D/compacted-….json`, beside
//! the lake rather than in it, so Athena and the lake's readers never see it.

use serde::{Deserialize, Serialize};

/// One file a compacted file took rows from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub key: String,
    /// Its size when it was merged: a file found again under this key with this size is the
    /// same file.
    pub bytes: u64,
    pub rows: u64,
}

/// What one compacted file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The compacted file's key.
    pub output: String,
    /// The `dt` partition.
    pub date: String,
    /// The files merged into it, deleted once it is written: shard files, and earlier compacted
    /// files.
    pub inputs: Vec<Entry>,
    /// The shard files that earlier compacted files among the inputs held (from their
    /// manifests), so that one written again after both compactions is still known for a copy.
    #[serde(default)]
    pub earlier: Vec<Entry>,
}

impl Manifest {
    /// Every file whose rows the output holds: the inputs and the earlier shard files.
    pub fn held(&self) -> impl Iterator<Item = &Entry> {
        self.inputs.iter().chain(&self.earlier)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("manifests serialize")
    }

    pub fn from_json(body: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_without_earlier_files() {
        let entry = |key: &str| Entry {
            key: key.to_owned(),
            bytes: 10,
            rows: 2,
        };
        let manifest = Manifest {
            output: "ticks/dt=2026-01-05/compacted-2026-01-05-0123456789abcdef.parquet".into(),
            date: "2026-01-05".into(),
            inputs: vec![entry("ticks/dt=2026-01-05/s-1.parquet")],
            earlier: vec![entry("ticks/dt=2026-01-05/s-0.parquet")],
        };
        assert_eq!(Manifest::from_json(&manifest.to_json()).unwrap(), manifest);
        assert_eq!(manifest.held().count(), 2);
        let bare = br#"{"output": "o", "date": "d", "inputs": []}"#;
        assert!(Manifest::from_json(bare).unwrap().earlier.is_empty());
        assert!(Manifest::from_json(b"{").is_err());
    }
}
