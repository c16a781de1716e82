//! Step 5 of a barrier, its publication: the committed position of each shard, for sinks that
//! must not run ahead of the checkpoint (the object batcher writes a shard's next files only once
//! its previous ones are committed).

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

use crate::model::ids::ShardId;
use crate::model::tick::Position;

/// The committed position of each shard, for sinks that must not run ahead of the checkpoint,
/// and which generation (lease counter) of the shard is being read here, so that a wait of a
/// reader that lost its lease gives up instead of blocking its sink.
#[derive(Debug, Default)]
pub struct CommittedPositions {
    shards: Mutex<HashMap<ShardId, watch::Sender<ShardCommit>>>,
}

#[derive(Debug, Clone, Default)]
struct ShardCommit {
    position: Option<Position>,
    /// The generation of the shard's live reader, if one is reading it in this process.
    live: Option<u64>,
}

impl CommittedPositions {
    fn sender(&self, shard_id: &ShardId) -> watch::Sender<ShardCommit> {
        let mut shards = self.shards.lock().expect("committed positions lock");
        shards
            .entry(shard_id.clone())
            .or_insert_with(|| watch::channel(ShardCommit::default()).0)
            .clone()
    }

    /// A reader of `generation` starts on the shard.
    pub fn begin(&self, shard_id: &ShardId, generation: u64) {
        self.sender(shard_id)
            .send_modify(|commit| commit.live = Some(generation));
    }

    /// The reader of `generation` is gone: waits on its behalf give up.
    pub fn retire(&self, shard_id: &ShardId, generation: u64) {
        self.sender(shard_id).send_if_modified(|commit| {
            let live = commit.live == Some(generation);
            if live {
                commit.live = None;
            }
            live
        });
    }

    pub fn publish(&self, shard_id: &ShardId, position: &Position) {
        self.sender(shard_id).send_if_modified(|commit| {
            let newer = commit.position.as_ref().is_none_or(|c| c < position);
            if newer {
                commit.position = Some(position.clone());
            }
            newer
        });
    }

    pub fn get(&self, shard_id: &ShardId) -> Option<Position> {
        self.sender(shard_id).borrow().position.clone()
    }

    /// Waits until the shard's committed position is at least `position` (true), or until the
    /// reader of `generation` is no longer the shard's live reader (false).
    pub async fn wait_at_least(
        &self,
        shard_id: &ShardId,
        position: &Position,
        generation: u64,
    ) -> bool {
        let mut receiver = self.sender(shard_id).subscribe();
        // The sender lives in the map for the life of the process, so this cannot fail.
        let commit = receiver
            .wait_for(|c| {
                c.position.as_ref().is_some_and(|c| c >= position) || c.live != Some(generation)
            })
            .await
            .map(|commit| commit.clone())
            .unwrap_or_default();
        commit.position.is_some_and(|c| &c >= position)
    }
}
