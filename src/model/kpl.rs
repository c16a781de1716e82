//! De-aggregation of KPL records: one Kinesis record that packs many user records (the Kinesis
//! Producer Library's format: magic bytes, a protobuf `AggregatedRecord`, an MD5 of the protobuf).
//!
//! In: the data of one Kinesis record. Out: its user records with their partition keys and
//! sub-sequence numbers, or the record itself when it is not aggregated. An aggregated record
//! whose checksum or protobuf is broken is returned whole, so it is dead-lettered, not lost.

use md5::{Digest, Md5};
use prost::Message;

/// Every KPL-aggregated record starts with these bytes.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
const DIGEST_LEN: usize = 16;

#[derive(Clone, PartialEq, prost::Message)]
pub struct AggregatedRecord {
    #[prost(string, repeated, tag = "1")]
    pub partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub explicit_hash_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    pub records: Vec<UserRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UserRecord {
    #[prost(uint64, tag = "1")]
    pub partition_key_index: u64,
    #[prost(uint64, optional, tag = "2")]
    pub explicit_hash_key_index: Option<u64>,
    #[prost(bytes = "bytes", tag = "3")]
    pub data: bytes::Bytes,
}

/// One user record out of a Kinesis record.
#[derive(Debug, Clone, PartialEq)]
pub struct Deaggregated {
    /// `None` means the Kinesis record's own partition key.
    pub partition_key: Option<String>,
    pub sub_sequence: u32,
    pub data: bytes::Bytes,
}

/// Splits a Kinesis record into its user records (one, sub-sequence 0, when not aggregated).
pub fn deaggregate(data: &bytes::Bytes) -> Vec<Deaggregated> {
    let whole = || {
        vec![Deaggregated {
            partition_key: None,
            sub_sequence: 0,
            data: data.clone(),
        }]
    };
    if data.len() < MAGIC.len() + DIGEST_LEN || data[..MAGIC.len()] != MAGIC {
        return whole();
    }
    let (payload, digest) = data[MAGIC.len()..].split_at(data.len() - MAGIC.len() - DIGEST_LEN);
    if Md5::digest(payload).as_slice() != digest {
        return whole();
    }
    let Ok(aggregated) = AggregatedRecord::decode(data.slice(MAGIC.len()..data.len() - DIGEST_LEN))
    else {
        return whole();
    };
    aggregated
        .records
        .into_iter()
        .enumerate()
        .map(|(index, record)| Deaggregated {
            partition_key: aggregated
                .partition_key_table
                .get(record.partition_key_index as usize)
                .cloned(),
            sub_sequence: index as u32,
            data: record.data,
        })
        .collect()
}

/// Packs user records the way the KPL does (used by tests and producers).
pub fn aggregate(records: &[(&str, &[u8])]) -> bytes::Bytes {
    let mut keys: Vec<String> = Vec::new();
    let mut user_records = Vec::with_capacity(records.len());
    for (key, data) in records {
        let index = match keys.iter().position(|k| k == key) {
            Some(index) => index,
            None => {
                keys.push((*key).to_owned());
                keys.len() - 1
            }
        };
        user_records.push(UserRecord {
            partition_key_index: index as u64,
            explicit_hash_key_index: None,
            data: bytes::Bytes::copy_from_slice(data),
        });
    }
    let payload = AggregatedRecord {
        partition_key_table: keys,
        explicit_hash_key_table: Vec::new(),
        records: user_records,
    }
    .encode_to_vec();
    let mut out = Vec::with_capacity(MAGIC.len() + payload.len() + DIGEST_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&payload);
    out.extend_from_slice(&Md5::digest(&payload));
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_records_split_with_keys_and_sub_sequences() {
        let packed = aggregate(&[
            ("AAPL", b"{\"a\":1}"),
            ("MSFT", b"{\"b\":2}"),
            ("AAPL", b"{\"c\":3}"),
        ]);
        let records = deaggregate(&packed);
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].partition_key.as_deref(), Some("AAPL"));
        assert_eq!(records[1].partition_key.as_deref(), Some("MSFT"));
        assert_eq!(records[2].sub_sequence, 2);
        assert_eq!(&records[2].data[..], b"{\"c\":3}");
    }

    #[test]
    fn plain_and_corrupt_records_come_back_whole() {
        let plain = bytes::Bytes::from_static(b"{\"symbol\":\"AAPL\"}");
        assert_eq!(
            deaggregate(&plain),
            vec![Deaggregated {
                partition_key: None,
                sub_sequence: 0,
                data: plain.clone()
            }]
        );

        let mut corrupt = aggregate(&[("AAPL", b"x")]).to_vec();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xFF;
        let corrupt = bytes::Bytes::from(corrupt);
        assert_eq!(
            deaggregate(&corrupt)[0].data,
            corrupt,
            "a bad checksum keeps the record whole"
        );
    }
}
