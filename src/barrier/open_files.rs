//! How large each shard's open files have grown: the sinks that write files post their sizes as
//! they write, and the shard's reader reads them to decide at which barrier the files close
//! (`lake.target-file-size`; `lake.max-file-age` it times itself).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::sinks::SinkKind;
use crate::model::ids::ShardId;

/// When a shard's files close: at the first barrier after either is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSizing {
    pub target_bytes: u64,
    pub max_age: Duration,
}

/// The size of each shard's open file of each sink, in bytes written or about to be.
#[derive(Debug, Default)]
pub struct OpenFileSizes {
    sizes: Mutex<HashMap<(ShardId, SinkKind), u64>>,
}

impl OpenFileSizes {
    /// `sink`'s open files of the shard have grown to `bytes` (0: closed).
    pub fn post(&self, shard_id: &ShardId, sink: SinkKind, bytes: u64) {
        let mut sizes = self.sizes.lock().expect("open file sizes lock");
        if bytes == 0 {
            sizes.remove(&(shard_id.clone(), sink));
        } else {
            sizes.insert((shard_id.clone(), sink), bytes);
        }
    }

    /// The largest of the shard's open files.
    pub fn largest(&self, shard_id: &ShardId) -> u64 {
        let sizes = self.sizes.lock().expect("open file sizes lock");
        SinkKind::ALL
            .iter()
            .filter_map(|sink| sizes.get(&(shard_id.clone(), *sink)))
            .copied()
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_open_file_of_the_shard_counts() {
        let sizes = OpenFileSizes::default();
        let (one, two): (ShardId, ShardId) = ("shard-1".into(), "shard-2".into());
        assert_eq!(sizes.largest(&one), 0);
        sizes.post(&one, SinkKind::Lake, 700);
        sizes.post(&one, SinkKind::DeadLetters, 30);
        sizes.post(&two, SinkKind::Lake, 9_000);
        assert_eq!(sizes.largest(&one), 700);
        sizes.post(&one, SinkKind::Lake, 0);
        assert_eq!(sizes.largest(&one), 30);
    }
}
