//! Sizes in bytes as people write them (`128MB`, `64 MiB`, `4096`), for settings and options.

use serde::{Deserialize, Deserializer, Serializer};

/// A size as the settings and `--target-size` take it: bytes, or a number with `KB`, `MB`, `GB` (powers of
/// 1000) or `KiB`, `MiB`, `GiB` (powers of 1024), in any case, spaces allowed.
pub fn parse(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_bytes: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (KB, MB, GB, KiB, MiB, GiB)"
            ));
        }
    };
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 128MB"))?;
    let bytes = (number * unit_bytes).round();
    if !(1.0..=1e15).contains(&bytes) {
        return Err(format!("{text:?}: a size from 1 byte to 1 PB"));
    }
    Ok(bytes as u64)
}

/// A size setting: a string such as `"128MB"`, or a number of bytes.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Size::deserialize(deserializer)? {
        Size::Bytes(bytes) => Ok(bytes),
        Size::Text(text) => parse(&text).map_err(serde::de::Error::custom),
    }
}

pub fn serialize<S: Serializer>(bytes: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(*bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse("128MB"), Ok(128_000_000));
        assert_eq!(parse("128 MiB"), Ok(128 << 20));
        assert_eq!(parse("1.5gb"), Ok(1_500_000_000));
        assert_eq!(parse("4096"), Ok(4096));
        assert_eq!(parse("64KiB"), Ok(65_536));
        for bad in ["", "MB", "12 parsecs", "0", "-1MB", "1.2.3MB"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
