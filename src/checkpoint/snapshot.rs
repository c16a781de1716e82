//! How a shard snapshot is stored: CBOR (RFC 8949), floats as their exact binary value.
//!
//! A snapshot at 1,000 symbols is megabytes and is written at every checkpoint, so its encoding
//! is on the hot path: CBOR writes a float as its eight bytes where JSON needs the shortest
//! round-trip decimal of each, and a window's float columns go as one byte string each
//! (`FloatColumn` in `model::exact_float`). Snapshots written as JSON by earlier versions still
//! load (a CBOR snapshot, a map, never starts with `{`).
//!
//! cbor4ii rather than ciborium: it writes every float in its eight bytes without searching for
//! a shorter exact width, and reads both forms, so earlier snapshots still load (`cargo bench
//! --bench sink_encoding -- checkpoint_snapshot` measures it).

use base64_simd::STANDARD as BASE64;

use super::ShardSnapshot;

/// Most bytes one symbol adds to a snapshot besides its SMA prices and window ticks: its name
/// (at most 32 bytes), a partition key other than the symbol (at most 256), the window sizes and
/// running sums, its rule memory (a cooldown per rule) and its open one-minute bars (bars mode).
pub const SYMBOL_BYTES: usize = 2_048;
/// Most bytes each price in a symbol's SMA ring adds (as many prices as the larger of
/// `windows.sma-short` and `windows.sma-long`).
pub const SMA_PRICE_BYTES: usize = 9;
/// Most bytes each tick in a symbol's event-time window adds (the ticks of `windows.span`, at
/// most `windows.max-span-ticks`): its time, price, volume and return.
pub const WINDOW_TICK_BYTES: usize = 33;

/// An upper bound of the encoded size of a snapshot of `symbols` symbols, each with at most
/// `sma_prices` prices in its SMA ring and `window_ticks` ticks in its event-time window. A
/// shard's snapshot holds at most `symbols.max-per-shard` symbols, which bounds its checkpoint.
pub fn max_encoded_len(symbols: usize, sma_prices: usize, window_ticks: usize) -> usize {
    let symbol = SYMBOL_BYTES + SMA_PRICE_BYTES * sma_prices + WINDOW_TICK_BYTES * window_ticks;
    // The map's header: a CBOR length takes at most 9 bytes.
    9 + symbols * symbol
}

/// The snapshot as CBOR bytes.
pub fn encode(snapshot: &ShardSnapshot) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_into(snapshot, &mut bytes);
    bytes
}

/// [`encode`] into `bytes` (cleared first), whose buffer a caller can keep for the next one: a
/// snapshot at 1,000 symbols is megabytes.
pub fn encode_into(snapshot: &ShardSnapshot, bytes: &mut Vec<u8>) {
    bytes.clear();
    *bytes = cbor4ii::serde::to_vec(std::mem::take(bytes), snapshot)
        .expect("a snapshot encodes into memory");
}

/// A snapshot from [`encode`]'s bytes, or from the JSON of earlier versions.
pub fn decode(bytes: &[u8]) -> Result<ShardSnapshot, String> {
    if bytes.first() == Some(&b'{') {
        return serde_json::from_slice(bytes).map_err(|e| format!("snapshot is not valid: {e}"));
    }
    cbor4ii::serde::from_slice(bytes).map_err(|e| format!("snapshot is not valid CBOR: {e}"))
}

/// `#[serde(with = "snapshot::text")]`: the snapshot in a text format (the file store's JSON) as
/// a base64 string of its CBOR. A JSON object (earlier versions) is read too.
pub mod text {
    use std::fmt;

    use serde::de::{self, Deserializer, MapAccess, Visitor};
    use serde::{Deserialize, Serializer};

    use super::*;

    pub fn serialize<S: Serializer>(
        snapshot: &ShardSnapshot,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64.encode_to_string(encode(snapshot)))
    }

    /// Appends the JSON string `serialize` writes through serde_json for the snapshot whose
    /// CBOR is `bytes`, without serde_json: the base64 goes straight into `out`, where serde_json
    /// would copy it once more and look at every byte for escapes (it has none).
    pub fn append_json(bytes: &[u8], out: &mut Vec<u8>) {
        out.reserve(BASE64.encoded_length(bytes.len()) + 2);
        out.push(b'"');
        BASE64.encode_append(bytes, out);
        out.push(b'"');
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<ShardSnapshot, D::Error> {
        struct SnapshotVisitor;

        impl<'de> Visitor<'de> for SnapshotVisitor {
            type Value = ShardSnapshot;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a base64 CBOR snapshot, or a snapshot object")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ShardSnapshot, E> {
                let bytes = BASE64.decode_to_vec(v).map_err(E::custom)?;
                decode(&bytes).map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ShardSnapshot, A::Error> {
                ShardSnapshot::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }

        deserializer.deserialize_any(SnapshotVisitor)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::rules::RuleSet;
    use crate::model::state::SymbolState;
    use crate::model::tick::{Position, SequenceNumber};
    use crate::model::window::WindowConfig;
    use crate::model::window::tests::tick;

    /// Two symbols with a few ticks each, prices whose decimals are not exact binary fractions.
    pub(crate) fn snapshot() -> ShardSnapshot {
        let shard: Arc<str> = Arc::from("shardId-000000000000");
        let rules = RuleSet::default();
        let mut snapshot = ShardSnapshot::new();
        for (s, symbol) in ["AAPL", "MSFT"].into_iter().enumerate() {
            let mut state = SymbolState::new(WindowConfig::default());
            for i in 0..40 {
                let price = 100.1 + s as f64 + i as f64 * 0.37;
                let tick = tick(i * 997, price, Some(10.0 + i as f64));
                let position = Position::new(SequenceNumber::new(format!("{}", 100 + i)), 0);
                state.process(tick, &shard, position, 0, &rules, &mut Vec::new());
            }
            snapshot.insert(symbol.into(), state);
        }
        snapshot
    }

    #[test]
    fn cbor_round_trips_bit_for_bit() {
        let snapshot = snapshot();
        let bytes = encode(&snapshot);
        assert_ne!(bytes.first(), Some(&b'{'));
        assert_eq!(decode(&bytes).unwrap(), snapshot);
    }

    /// Earlier versions wrote snapshots with ciborium, floats in their shortest exact width.
    #[test]
    fn cbor_snapshots_of_earlier_versions_load() {
        let snapshot = snapshot();
        let mut earlier = Vec::new();
        ciborium::into_writer(&snapshot, &mut earlier).unwrap();
        assert_ne!(
            earlier,
            encode(&snapshot),
            "ciborium shrinks floats that fit"
        );
        assert_eq!(decode(&earlier).unwrap(), snapshot);
    }

    #[test]
    fn cbor_is_smaller_than_json() {
        let snapshot = snapshot();
        let json = serde_json::to_vec(&snapshot).unwrap();
        assert!(encode(&snapshot).len() < json.len());
    }

    #[test]
    fn json_snapshots_of_earlier_versions_load() {
        let snapshot = snapshot();
        let json = serde_json::to_vec(&snapshot).unwrap();
        assert_eq!(decode(&json).unwrap(), snapshot);
    }

    /// Float columns are byte strings since they were packed; earlier versions wrote arrays of
    /// floats (and nulls), which still load.
    #[test]
    fn cbor_snapshots_with_float_arrays_load() {
        fn unpack(value: &mut ciborium::Value, columns: &mut usize) {
            match value {
                ciborium::Value::Bytes(bytes) => {
                    *columns += 1;
                    let floats = bytes
                        .chunks_exact(8)
                        .map(|chunk| f64::from_le_bytes(chunk.try_into().unwrap()))
                        .map(|x| match x.is_nan() {
                            true => ciborium::Value::Null,
                            false => ciborium::Value::Float(x),
                        });
                    *value = ciborium::Value::Array(floats.collect());
                }
                ciborium::Value::Array(items) => items.iter_mut().for_each(|v| unpack(v, columns)),
                ciborium::Value::Map(entries) => {
                    entries.iter_mut().for_each(|(_, v)| unpack(v, columns))
                }
                _ => {}
            }
        }
        let snapshot = snapshot();
        let mut value: ciborium::Value = ciborium::from_reader(&encode(&snapshot)[..]).unwrap();
        let mut columns = 0;
        unpack(&mut value, &mut columns);
        assert_eq!(
            columns,
            2 * 3,
            "price, volume and return columns of two symbols"
        );
        let mut earlier = Vec::new();
        ciborium::into_writer(&value, &mut earlier).unwrap();
        assert_eq!(decode(&earlier).unwrap(), snapshot);
    }

    #[test]
    fn a_packed_column_without_a_price_or_of_torn_floats_is_an_error() {
        let bytes = encode(&snapshot());
        let packed = (100.1f64).to_le_bytes();
        let at = bytes
            .windows(8)
            .position(|w| w == packed)
            .expect("the first price, packed");
        let mut gap = bytes.clone();
        gap[at..at + 8].copy_from_slice(&f64::NAN.to_le_bytes());
        let err = decode(&gap).unwrap_err();
        assert!(err.contains("lacks its price"), "{err}");
        // The byte string's length is in the header just before the first price.
        let mut torn = bytes.clone();
        torn[at - 1] -= 1;
        let err = decode(&torn).unwrap_err();
        assert!(err.contains("multiple of 8"), "{err}");
    }

    #[test]
    fn damaged_bytes_are_an_error() {
        let bytes = encode(&snapshot());
        let err = decode(&bytes[..bytes.len() / 2]).unwrap_err();
        assert!(err.contains("not valid CBOR"), "{err}");
        assert!(decode(b"{\"AAPL\":").is_err());
    }

    proptest::proptest! {
        /// A symbol's state stays within [`max_encoded_len`] whatever its windows hold, with
        /// everything optional present: a long name, a partition key of the most bytes Kinesis
        /// takes, open bars, and a cooldown of every rule.
        #[test]
        fn a_symbol_stays_within_the_bound(
            config in crate::model::window::tests::configs(),
            ticks in crate::model::window::tests::ticks(),
        ) {
            let shard: Arc<str> = Arc::from("shardId-000000000000");
            let rules = RuleSet {
                price_above: Some(50.0),
                price_below: Some(150.0),
                change_percent: Some(0.0),
                return_zscore: Some(0.0),
                return_zscore_min_move: 0.0,
                volume_spike: Some(0.0),
                trend_crossover: true,
                trend_bar: std::time::Duration::from_millis(10),
                trend_short_bars: 2,
                trend_long_bars: 4,
                trend_band_percent: 0.1,
                cooldown: std::time::Duration::from_secs(1),
                max_alerts_per_hour: Some(3),
            };
            let mut state = SymbolState::new(config);
            state.partition_key = Some("k".repeat(256).into());
            for (i, mut tick) in ticks.iter().cloned().enumerate() {
                tick.previous_close = Some(1.0);
                let _ = state.bars.update(&tick);
                let position = Position::new(SequenceNumber::new(format!("{}", 100 + i)), 0);
                state.process(tick, &shard, position, 0, &rules, &mut Vec::new());
            }
            let mut snapshot = ShardSnapshot::new();
            snapshot.insert("S".repeat(32).into(), state);
            let n = ticks.len();
            let bytes = encode(&snapshot).len();
            proptest::prop_assert!(bytes <= max_encoded_len(1, n, n), "{} bytes, {} ticks", bytes, n);
        }
    }

    #[test]
    fn the_bound_is_the_symbols_times_their_most() {
        let one = max_encoded_len(1, 20, 100);
        assert_eq!(one, 9 + 2_048 + 9 * 20 + 33 * 100);
        assert_eq!(max_encoded_len(10_000, 20, 100), 9 + 10_000 * (one - 9));
        // Two symbols of 40 ticks each.
        let two = encode(&snapshot()).len();
        assert!(two <= max_encoded_len(2, 40, 40), "{two}");
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Holder {
        #[serde(with = "text")]
        snapshot: ShardSnapshot,
    }

    #[test]
    fn text_form_is_base64_and_reads_the_object_form_too() {
        let holder = Holder {
            snapshot: snapshot(),
        };
        let json = serde_json::to_value(&holder).unwrap();
        assert!(json["snapshot"].is_string());
        assert_eq!(serde_json::from_value::<Holder>(json).unwrap(), holder);

        let object =
            serde_json::json!({ "snapshot": serde_json::to_value(&holder.snapshot).unwrap() });
        assert_eq!(serde_json::from_value::<Holder>(object).unwrap(), holder);
    }
}
