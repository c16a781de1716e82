//! `kinetick produce --topic` and `replay --topic`: records into a Kafka topic, key = symbol.
//!
//! A record goes to the partition Kafka's own producers would choose for its key (murmur2 of the
//! key, as Java's default partitioner), so ticks written by kinetick and by other producers of
//! the same symbol share a partition and stay in order. One request's records are produced to
//! their partitions at once, each partition's share in record batches within the broker's
//! default message size.

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::join_all;
use rskafka::chrono::Utc;
use rskafka::client::Client;
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::record::Record;

use super::batch::Outgoing;
use super::{EntryOutcome, PutError, RecordSink};
use crate::stream::kafka::connect::stream_error;

/// Bytes of one record batch: under the broker's default `message.max.bytes` (1 MiB).
const MAX_BATCH_BYTES: usize = 900 * 1024;

pub struct KafkaSink {
    topic: String,
    partitions: Vec<Arc<PartitionClient>>,
}

impl KafkaSink {
    /// A sink for every partition `topic` has now.
    pub async fn new(client: &Client, topic: &str) -> anyhow::Result<Self> {
        let topics = client.list_topics().await?;
        let count = topics
            .iter()
            .find(|t| t.name == topic)
            .map(|t| t.partitions.len())
            .ok_or_else(|| anyhow::anyhow!("Kafka topic {topic} does not exist"))?;
        let mut partitions = Vec::with_capacity(count);
        for partition in 0..count as i32 {
            partitions.push(Arc::new(
                client
                    .partition_client(topic, partition, UnknownTopicHandling::Retry)
                    .await?,
            ));
        }
        Ok(Self {
            topic: topic.to_owned(),
            partitions,
        })
    }
}

#[async_trait]
impl RecordSink for KafkaSink {
    async fn put(&self, records: &[Outgoing]) -> Result<Vec<EntryOutcome>, PutError> {
        let mut by_partition: Vec<Vec<usize>> = vec![Vec::new(); self.partitions.len()];
        for (index, record) in records.iter().enumerate() {
            let partition = partition_of(record.partition_key.as_bytes(), self.partitions.len());
            by_partition[partition].push(index);
        }
        let now = Utc::now();
        let record = |index: usize| Record {
            key: Some(records[index].partition_key.clone().into_bytes()),
            value: Some(records[index].data.to_vec()),
            headers: Default::default(),
            timestamp: now,
        };
        // Partitions at once; a partition's batches one after another, so they stay in order.
        let sends = by_partition.iter().enumerate().map(|(partition, indices)| {
            let client = self.partitions[partition].clone();
            let batches = chunks(indices, records);
            async move {
                let mut failed: Vec<(usize, PutError)> = Vec::new();
                for batch in batches {
                    let produced = match failed.is_empty() {
                        true => client
                            .produce(
                                batch.iter().map(|&i| record(i)).collect(),
                                Compression::NoCompression,
                            )
                            .await
                            .map_err(|e| {
                                let error = stream_error("Produce", None, e);
                                PutError {
                                    retryable: error.is_retryable(),
                                    message: error.to_string(),
                                }
                            }),
                        // After a failed batch the partition's later records are not sent
                        // (they would overtake it): they fail with it.
                        false => Err(failed[0].1.clone()),
                    };
                    if let Err(error) = produced {
                        failed.extend(batch.into_iter().map(|i| (i, error.clone())));
                    }
                }
                failed
            }
        });
        let mut outcomes = vec![EntryOutcome::Written; records.len()];
        for (index, error) in join_all(sends).await.into_iter().flatten() {
            if !error.retryable {
                return Err(PutError {
                    message: format!("topic {}: {}", self.topic, error.message),
                    retryable: false,
                });
            }
            outcomes[index] = EntryOutcome::Failed {
                code: error.message,
            };
        }
        Ok(outcomes)
    }
}

/// `indices` (records of one partition, in order) in runs of at most [`MAX_BATCH_BYTES`].
fn chunks(indices: &[usize], records: &[Outgoing]) -> Vec<Vec<usize>> {
    let mut chunks: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0;
    for &index in indices {
        let size = records[index].size();
        match chunks.last_mut() {
            Some(chunk) if bytes + size <= MAX_BATCH_BYTES => chunk.push(index),
            _ => {
                chunks.push(vec![index]);
                bytes = 0;
            }
        }
        bytes += size;
    }
    chunks
}

/// The partition Kafka's default partitioner gives a keyed record.
pub fn partition_of(key: &[u8], partitions: usize) -> usize {
    (murmur2(key) & 0x7fff_ffff) as usize % partitions
}

/// Kafka's murmur2 (seed 0x9747b28c), as its Java client computes it for keys.
fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes(block.try_into().expect("4 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_is_kafkas() {
        // The values Kafka's own client tests hold its murmur2 to.
        for (key, hash) in [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ] {
            assert_eq!(murmur2(key.as_bytes()), hash, "{key}");
        }
    }

    #[test]
    fn a_partitions_records_go_in_batches_within_the_message_size() {
        let record = |n: usize| Outgoing {
            partition_key: "AAPL".into(),
            data: vec![b'x'; n].into(),
        };
        let records = vec![record(500 * 1024), record(300 * 1024), record(200 * 1024)];
        assert_eq!(chunks(&[0, 1, 2], &records), vec![vec![0, 1], vec![2]]);
        assert!(chunks(&[], &records).is_empty());
        assert_eq!(partition_of(b"AAPL", 1), 0);
    }
}
