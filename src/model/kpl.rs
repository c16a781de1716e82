//! De-aggregation of KPL records: one Kinesis record that packs many user records (the Kinesis
//! Producer Library's format: magic bytes, a protobuf `AggregatedRecord`, an MD5 of the protobuf).
//!
//! In: the data of one Kinesis record. Out: its user records with their partition keys and
//! sub-sequence numbers, or the record itself when it is not aggregated.
//!
//! An aggregate that cannot be split, whatever is wrong with it (checksum, protobuf, no user
//! records, a key index past its table), is returned whole by [`deaggregate`]: it then reaches
//! the decoder, which recognises the magic bytes and dead-letters it as one record, naming the
//! problem that [`try_deaggregate`] finds. So a damaged aggregate is neither lost nor split into
//! records whose keys or data could not be trusted.

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

/// Why a record that starts with [`MAGIC`] cannot be split into its user records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggregateError {
    /// Too short to hold the magic bytes and the MD5 trailer.
    #[error("{len} bytes, too short for the magic bytes and the MD5 trailer")]
    Truncated { len: usize },
    /// The MD5 trailer is not the digest of the protobuf: bytes were lost or changed.
    #[error("the MD5 trailer does not match the protobuf")]
    Checksum,
    /// The checksum holds, but the protobuf is not an `AggregatedRecord`; prost's message.
    #[error("the protobuf does not decode: {message}")]
    Protobuf { message: String },
    /// The KPL never writes an aggregate without user records; one would vanish unseen.
    #[error("it holds no user records")]
    Empty,
    /// A user record names a partition key the table does not have (`record` counts from 0).
    #[error("user record {record} names partition key {index} of a table of {len}")]
    PartitionKeyIndex {
        record: usize,
        index: u64,
        len: usize,
    },
    /// A user record names an explicit hash key the table does not have.
    #[error("user record {record} names explicit hash key {index} of a table of {len}")]
    ExplicitHashKeyIndex {
        record: usize,
        index: u64,
        len: usize,
    },
}

/// Whether `data` claims to be a KPL aggregate (starts with [`MAGIC`]); no JSON record does, as
/// the magic bytes are not UTF-8.
pub fn is_aggregated(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// Splits an aggregated record into its user records: `Ok(None)` when `data` is not aggregated,
/// an error when it claims to be ([`is_aggregated`]) but cannot be split.
pub fn try_deaggregate(data: &bytes::Bytes) -> Result<Option<Vec<Deaggregated>>, AggregateError> {
    if !is_aggregated(data) {
        return Ok(None);
    }
    if data.len() < MAGIC.len() + DIGEST_LEN {
        return Err(AggregateError::Truncated { len: data.len() });
    }
    let payload = data.slice(MAGIC.len()..data.len() - DIGEST_LEN);
    if Md5::digest(&payload).as_slice() != &data[data.len() - DIGEST_LEN..] {
        return Err(AggregateError::Checksum);
    }
    let aggregated =
        AggregatedRecord::decode(payload).map_err(|error| AggregateError::Protobuf {
            message: error.to_string(),
        })?;
    if aggregated.records.is_empty() {
        return Err(AggregateError::Empty);
    }
    let (keys, hash_keys) = (
        &aggregated.partition_key_table,
        &aggregated.explicit_hash_key_table,
    );
    for (record, user) in aggregated.records.iter().enumerate() {
        let index = user.partition_key_index;
        if index >= keys.len() as u64 {
            let len = keys.len();
            return Err(AggregateError::PartitionKeyIndex { record, index, len });
        }
        if let Some(index) = user.explicit_hash_key_index
            && index >= hash_keys.len() as u64
        {
            let len = hash_keys.len();
            return Err(AggregateError::ExplicitHashKeyIndex { record, index, len });
        }
    }
    let records = aggregated
        .records
        .into_iter()
        .enumerate()
        .map(|(index, record)| Deaggregated {
            partition_key: Some(keys[record.partition_key_index as usize].clone()),
            sub_sequence: index as u32,
            data: record.data,
        })
        .collect();
    Ok(Some(records))
}

/// Splits a Kinesis record into its user records: one, sub-sequence 0, when it is not aggregated
/// or when [`try_deaggregate`] finds it damaged (the decoder then dead-letters it whole).
pub fn deaggregate(data: &bytes::Bytes) -> Vec<Deaggregated> {
    match try_deaggregate(data) {
        Ok(Some(records)) => records,
        Ok(None) | Err(_) => vec![Deaggregated {
            partition_key: None,
            sub_sequence: 0,
            data: data.clone(),
        }],
    }
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
    seal(&payload)
}

/// Frames a protobuf payload as the KPL does: the magic bytes, the payload, its MD5. Tests use it
/// to build aggregates whose checksum holds around a payload that is not a valid aggregate.
pub fn seal(payload: &[u8]) -> bytes::Bytes {
    let mut out = Vec::with_capacity(MAGIC.len() + payload.len() + DIGEST_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(payload);
    out.extend_from_slice(&Md5::digest(payload));
    out.into()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn record(partition_key_index: u64, explicit_hash_key_index: Option<u64>) -> UserRecord {
        UserRecord {
            partition_key_index,
            explicit_hash_key_index,
            data: bytes::Bytes::from_static(b"{}"),
        }
    }

    fn sealed(aggregated: AggregatedRecord) -> bytes::Bytes {
        seal(&aggregated.encode_to_vec())
    }

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
        assert_eq!(try_deaggregate(&plain), Ok(None));
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
        assert_eq!(try_deaggregate(&corrupt), Err(AggregateError::Checksum));
        assert_eq!(
            deaggregate(&corrupt)[0].data,
            corrupt,
            "a bad checksum keeps the record whole"
        );
    }

    #[test]
    fn every_kind_of_damage_is_named() {
        let keys = vec!["AAPL".to_owned()];
        let cases = [
            (
                bytes::Bytes::copy_from_slice(&MAGIC),
                AggregateError::Truncated { len: 4 },
            ),
            (
                seal(&[0x1a, 0x05, 0x0a]),
                AggregateError::Protobuf {
                    message: String::new(),
                },
            ),
            // Field 1 with the wire type of a varint where a string belongs.
            (
                seal(&[0x08, 0x01]),
                AggregateError::Protobuf {
                    message: String::new(),
                },
            ),
            // A length far past the end.
            (
                seal(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
                AggregateError::Protobuf {
                    message: String::new(),
                },
            ),
            (
                sealed(AggregatedRecord {
                    partition_key_table: keys.clone(),
                    explicit_hash_key_table: Vec::new(),
                    records: Vec::new(),
                }),
                AggregateError::Empty,
            ),
            (seal(&[]), AggregateError::Empty),
            (
                sealed(AggregatedRecord {
                    partition_key_table: keys.clone(),
                    explicit_hash_key_table: Vec::new(),
                    records: vec![record(0, None), record(1, None)],
                }),
                AggregateError::PartitionKeyIndex {
                    record: 1,
                    index: 1,
                    len: 1,
                },
            ),
            (
                sealed(AggregatedRecord {
                    partition_key_table: keys,
                    explicit_hash_key_table: Vec::new(),
                    records: vec![record(0, Some(0))],
                }),
                AggregateError::ExplicitHashKeyIndex {
                    record: 0,
                    index: 0,
                    len: 0,
                },
            ),
        ];
        for (data, expected) in cases {
            let found = try_deaggregate(&data).expect_err("damaged");
            match (&found, &expected) {
                (AggregateError::Protobuf { message }, AggregateError::Protobuf { .. }) => {
                    assert!(!message.is_empty());
                }
                _ => assert_eq!(found, expected),
            }
            assert_eq!(deaggregate(&data)[0].data, data, "{found}");
        }
    }

    proptest! {
        /// Whatever is damaged, the result is either every user record with a key from the table,
        /// or an error: never a panic, and never an aggregate that vanishes.
        #[test]
        fn damaged_aggregates_split_whole_or_not_at_all(
            records in proptest::collection::vec(("[A-C]", proptest::collection::vec(any::<u8>(), 0..8)), 1..5),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
            cut in any::<prop::sample::Index>(),
            reseal: bool,
        ) {
            let records: Vec<(&str, &[u8])> =
                records.iter().map(|(k, d)| (k.as_str(), d.as_slice())).collect();
            let packed = aggregate(&records);
            let mut payload = packed[MAGIC.len()..packed.len() - DIGEST_LEN].to_vec();
            let mut data = packed.to_vec();
            for (at, byte) in flips {
                if reseal && !payload.is_empty() {
                    let at = at.index(payload.len());
                    payload[at] = byte;
                } else {
                    let at = at.index(data.len());
                    data[at] = byte;
                }
            }
            let mut data = if reseal { seal(&payload).to_vec() } else { data };
            data.truncate(cut.index(data.len() + 1).max(1));
            let data = bytes::Bytes::from(data);
            match try_deaggregate(&data) {
                Ok(Some(split)) => {
                    prop_assert!(!split.is_empty());
                    for (i, user) in split.iter().enumerate() {
                        prop_assert_eq!(user.sub_sequence as usize, i);
                        prop_assert!(user.partition_key.is_some());
                    }
                    prop_assert_eq!(deaggregate(&data), split);
                }
                Ok(None) => prop_assert!(!is_aggregated(&data)),
                Err(_) => prop_assert_eq!(deaggregate(&data).len(), 1),
            }
        }
    }
}
