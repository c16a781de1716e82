//! KPL aggregates: intact ones, whose user records mix ticks, hostile records and nested
//! aggregates, and ones damaged in every part, which must each end as one dead letter.

use bytes::Bytes;
use kinetick::model::kpl::{self, AggregatedRecord, UserRecord};
use prost::Message;
use rand::Rng;

use super::{DAMAGED, Generator, MALFORMED, MAX_RECORD_BYTES, Put, SYMBOLS};

impl Generator {
    pub(super) fn aggregate(&mut self) -> Put {
        match self.rng.random_range(0..16) {
            0..5 => self.intact(false),
            5 | 6 => self.intact(true),
            kind => {
                let key = self.any_key();
                let (kind, data, codes) = self.damaged(kind);
                Put {
                    key,
                    data: data.clone(),
                    units: vec![Self::unit(kind, data, codes)],
                }
            }
        }
    }

    /// An aggregate that splits: ticks of one symbol keyed by it, hostile records, aggregates
    /// nested where a user record belongs, and `unknown` protobuf fields the reader skips.
    fn intact(&mut self, unknown: bool) -> Put {
        let s = self.rng.random_range(0..SYMBOLS.len());
        let mut keys: Vec<String> = Vec::new();
        let mut records = Vec::new();
        let mut units = Vec::new();
        let explicit = self.chance(0.3);
        for _ in 0..self.rng.random_range(1..=12) {
            let (key, unit) = match self.rng.random_range(0..10) {
                0..6 => self.valid_tick(Some(s)),
                6..9 => {
                    let unit = self.hostile();
                    (self.any_key(), unit)
                }
                _ => {
                    let (kind, data, codes) = match self.rng.random_range(0..3) {
                        0 => {
                            let inner = self.inner_records();
                            let pairs: Vec<(&str, &[u8])> = inner
                                .iter()
                                .map(|(k, d)| (k.as_str(), d.as_slice()))
                                .collect();
                            (
                                "nested_intact",
                                kpl::aggregate(&pairs),
                                &["nested_aggregate"][..],
                            )
                        }
                        _ => {
                            let kind = self.rng.random_range(7..16);
                            self.damaged(kind)
                        }
                    };
                    (self.any_key(), Self::unit(kind, data, codes))
                }
            };
            let index = match keys.iter().position(|k| *k == key) {
                Some(index) => index,
                None => {
                    keys.push(key);
                    keys.len() - 1
                }
            };
            records.push(UserRecord {
                partition_key_index: index as u64,
                explicit_hash_key_index: explicit.then_some(0),
                data: unit.data.clone(),
            });
            units.push(unit);
        }
        let hash_keys = if explicit {
            vec!["170141183460469231731687303715884105728".to_owned()]
        } else {
            Vec::new()
        };
        let mut payload = AggregatedRecord {
            partition_key_table: keys,
            explicit_hash_key_table: hash_keys,
            records,
        }
        .encode_to_vec();
        if unknown {
            // Field 15 as a varint, field 16 as bytes: not the KPL's, skipped by readers.
            let extra: &[u8] = &[0x78, 0x2a, 0x82, 0x01, 0x03, b'a', b'b', b'c'];
            let at = if self.chance(0.5) { 0 } else { payload.len() };
            payload.splice(at..at, extra.iter().copied());
        }
        Put {
            key: SYMBOLS[s].to_owned(),
            data: kpl::seal(&payload),
            units,
        }
    }

    /// A few valid-looking records with their keys, for an aggregate that will not be split.
    fn inner_records(&mut self) -> Vec<(String, Vec<u8>)> {
        (0..self.rng.random_range(1..5))
            .map(|_| {
                let fields = self.base();
                (self.any_key(), self.render(&fields).into_bytes())
            })
            .collect()
    }

    /// An aggregate damaged one way (`kind` 7 to 15), with its kind and expected reasons.
    fn damaged(&mut self, kind: u32) -> (&'static str, Bytes, &'static [&'static str]) {
        let inner = self.inner_records();
        let pairs: Vec<(&str, &[u8])> = inner
            .iter()
            .map(|(k, d)| (k.as_str(), d.as_slice()))
            .collect();
        let packed = kpl::aggregate(&pairs).to_vec();
        let payload = packed[4..packed.len() - 16].to_vec();
        let record = |index: u64, hash: Option<u64>| UserRecord {
            partition_key_index: index,
            explicit_hash_key_index: hash,
            data: Bytes::copy_from_slice(pairs[0].1),
        };
        let keys = vec!["AAPL".to_owned()];
        match kind {
            7 => {
                let mut data = packed;
                let at = self.rng.random_range(0..4);
                data[at] ^= self.rng.random_range(1..=255_u8);
                // No longer an aggregate: just bytes, refused for their size first.
                let codes = if data.len() > MAX_RECORD_BYTES {
                    &["oversized"][..]
                } else {
                    MALFORMED
                };
                ("kpl_bad_magic", data.into(), codes)
            }
            8 => {
                let mut data = packed;
                let at = self.rng.random_range(4..data.len());
                data[at] ^= self.rng.random_range(1..=255_u8);
                ("kpl_bad_checksum", data.into(), DAMAGED)
            }
            9 => {
                let mut data = packed;
                data.truncate(self.rng.random_range(4..data.len()));
                ("kpl_truncated", data.into(), DAMAGED)
            }
            10 => {
                // Cut inside the last user record's data: its length runs past the end.
                let cut = self.rng.random_range(1..=pairs.last().unwrap().1.len());
                let data = kpl::seal(&payload[..payload.len() - cut]);
                ("kpl_truncated_protobuf", data, DAMAGED)
            }
            11 => {
                let index = self.pick(&[1, 2, 1_000, u64::MAX]);
                let aggregated = AggregatedRecord {
                    partition_key_table: keys,
                    explicit_hash_key_table: Vec::new(),
                    records: vec![record(0, None), record(index, None)],
                };
                (
                    "kpl_key_index",
                    kpl::seal(&aggregated.encode_to_vec()),
                    DAMAGED,
                )
            }
            12 => {
                let aggregated = AggregatedRecord {
                    partition_key_table: keys,
                    explicit_hash_key_table: vec!["1".into()],
                    records: vec![record(0, Some(self.pick(&[1, 7, u64::MAX])))],
                };
                (
                    "kpl_hash_key_index",
                    kpl::seal(&aggregated.encode_to_vec()),
                    DAMAGED,
                )
            }
            13 => {
                let wrong: &[u8] = self.pick(&[
                    &[0x08, 0x01][..],
                    &[0x1d, 0, 0, 0, 0],
                    &[0x11, 1, 2, 3, 4, 5, 6, 7, 8],
                    &[0x0f],
                    &[0x00],
                ]);
                let mut bytes = wrong.to_vec();
                bytes.extend_from_slice(&payload);
                ("kpl_wire_type", kpl::seal(&bytes), DAMAGED)
            }
            14 => {
                let huge: &[u8] = self.pick(&[
                    &[0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3][..],
                    &[
                        0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                    ],
                    &[
                        0x1a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                    ],
                ]);
                let mut bytes = payload;
                bytes.extend_from_slice(huge);
                ("kpl_huge_length", kpl::seal(&bytes), DAMAGED)
            }
            _ => match self.rng.random_range(0..3) {
                0 => {
                    let aggregated = AggregatedRecord {
                        partition_key_table: keys,
                        explicit_hash_key_table: Vec::new(),
                        records: Vec::new(),
                    };
                    (
                        "kpl_no_records",
                        kpl::seal(&aggregated.encode_to_vec()),
                        DAMAGED,
                    )
                }
                1 => ("kpl_no_records", kpl::seal(&[]), DAMAGED),
                _ => {
                    let mut data = kpl::MAGIC.to_vec();
                    let extra = self.rng.random_range(0..16);
                    data.extend((0..extra).map(|_| self.rng.random::<u8>()));
                    ("kpl_magic_only", data.into(), DAMAGED)
                }
            },
        }
    }
}
