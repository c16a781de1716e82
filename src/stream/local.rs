//! An in-process multi-shard stream, shaped like Kinesis: records are routed to shards by the MD5
//! of their partition key over evenly split hash ranges, and get increasing sequence numbers.
//! Bounded per shard: a producer waits while a shard is full.
