//! Checkpoints as one JSON file per shard in a directory, replaced atomically (write + rename).
