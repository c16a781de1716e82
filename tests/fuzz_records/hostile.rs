//! Hostile records: each a valid-looking tick damaged one way, or no tick at all, with the
//! reasons it may be dead-lettered for.

use bytes::Bytes;
use kinetick::model::kpl;
use rand::Rng;

use super::{
    Expect, Generator, MALFORMED, MAX_RECORD_BYTES, NUMERIC, OUT_OF_RANGE, T0, Unit, quoted,
};

impl Generator {
    pub(super) fn hostile(&mut self) -> Unit {
        let kinds: [fn(&mut Self) -> Unit; 16] = [
            Self::truncated,
            Self::invalid_utf8,
            Self::deep_nesting,
            Self::out_of_range,
            Self::out_of_range,
            Self::duplicate_key,
            Self::symbol_characters,
            Self::symbol_characters,
            Self::timestamp_out_of_range,
            Self::timestamp_unparseable,
            Self::wrong_type,
            Self::empty,
            Self::oversized,
            Self::missing_field,
            Self::sign,
            Self::garbage,
        ];
        let kind = self.pick(&kinds);
        kind(self)
    }

    pub(super) fn unit(
        kind: &'static str,
        data: impl Into<Bytes>,
        codes: &'static [&'static str],
    ) -> Unit {
        Unit {
            kind,
            data: data.into(),
            expect: Expect::Dead(codes),
        }
    }

    fn truncated(&mut self) -> Unit {
        let fields = self.base();
        let json = self.render(&fields);
        let cut = self.rng.random_range(0..json.len() - 1);
        Self::unit("truncated", json.as_bytes()[..cut].to_vec(), MALFORMED)
    }

    fn invalid_utf8(&mut self) -> Unit {
        let bad: [&[u8]; 7] = [
            b"\xff",
            b"\xc0\xaf",
            b"\xed\xa0\x80",
            b"\x80",
            b"\xf4\x90\x80\x80",
            b"\xe2\x82",
            b"\xf8\x88\x80\x80\x80",
        ];
        let fields = self.base();
        let mut data = self.render(&fields).into_bytes();
        let at = match self.chance(0.5) {
            // Inside the symbol's string.
            true => data
                .windows(10)
                .position(|w| w == b"\"symbol\":\"")
                .map_or(0, |at| at + 11),
            false => self.rng.random_range(0..=data.len()),
        };
        let bytes = self.pick(&bad);
        data.splice(at..at, bytes.iter().copied());
        Self::unit("invalid_utf8", data, MALFORMED)
    }

    /// Nesting far past serde_json's recursion limit (128). Values it skips are skipped without
    /// recursing, so depth alone is no reason to refuse a record (see `tick_fields`).
    fn deep_nesting(&mut self) -> Unit {
        let depth = self.rng.random_range(200..5_000);
        let array = self.chance(0.5);
        let (open, close) = if array { ("[", "]") } else { ("{\"a\":", "}") };
        let nested = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        let (data, codes): (String, &'static [&'static str]) = match self.rng.random_range(0..4) {
            0 if array => (nested, &["not_an_object"]),
            0 => (nested, &["missing_field"]),
            1 => (open.repeat(depth), MALFORMED),
            _ => {
                let field = self.pick(&["symbol", "price", "timestamp", "volume"]);
                (self.with(field, &nested), &["wrong_type"])
            }
        };
        let codes = if data.len() > MAX_RECORD_BYTES {
            &["oversized"][..]
        } else {
            codes
        };
        Self::unit("deep_nesting", data, codes)
    }

    fn out_of_range(&mut self) -> Unit {
        let field = self.pick(&NUMERIC);
        let edges: &[&str] = match field {
            "volume" => &["1.000001e15", "9.99e-10", "1e16"],
            "change" => &["1.0000001e12", "-9e-26", "-1e13"],
            "change_percent" => &["1.0000001e23", "9e-36", "-1e24"],
            _ => &["1.0000001e12", "9.99e-10", "1e-10", "1e13"],
        };
        let long_digits = format!("1{}", "0".repeat(self.rng.random_range(30..2_000)));
        let long_fraction = format!("0.{}1", "0".repeat(self.rng.random_range(40..2_000)));
        let mut value = match self.rng.random_range(0..14) {
            0 => "1e200".to_owned(),
            1 => "1e-200".to_owned(),
            2 => "5e-324".to_owned(),
            3 => "2.2250738585072014e-308".to_owned(),
            4 => "1.7976931348623157e308".to_owned(),
            5 => "1e400".to_owned(),
            6 => "1e-400".to_owned(),
            7 => "1e99999999999999999999".to_owned(),
            8 => "7e-99999999999999999999".to_owned(),
            9 => long_digits,
            10 => long_fraction,
            11 => "123456789e99999999999999999999".to_owned(),
            _ => self.pick(edges).to_owned(),
        };
        if field.starts_with("change") && self.chance(0.3) && !value.starts_with('-') {
            value.insert(0, '-');
        }
        if self.chance(0.3) {
            value = quoted(&value);
        }
        let data = self.with(field, &value);
        let codes: &'static [&'static str] = if data.len() > MAX_RECORD_BYTES {
            &["oversized"]
        } else {
            OUT_OF_RANGE
        };
        Self::unit("out_of_range", data, codes)
    }

    fn duplicate_key(&mut self) -> Unit {
        let mut fields = self.base();
        // Known fields only: others may repeat.
        let known: Vec<String> = fields
            .iter()
            .map(|(key, _)| key.clone())
            .filter(|key| !["exchange", "meta"].contains(&key.as_str()))
            .collect();
        let key = self.pick(&known.iter().collect::<Vec<_>>()).clone();
        let value = match key.as_str() {
            "symbol" => quoted("MSFT"),
            "timestamp" => T0.to_string(),
            _ => "1.5".into(),
        };
        // The same key, or the same name written with an escape.
        let key = if self.chance(0.3) && !key.contains('\\') {
            format!("\\u{:04x}{}", key.as_bytes()[0], &key[1..])
        } else {
            key
        };
        let at = self.rng.random_range(0..=fields.len());
        fields.insert(at, (key, value));
        let data = self.render(&fields);
        Self::unit("duplicate_key", data, &["duplicate_field"])
    }

    fn symbol_characters(&mut self) -> Unit {
        let sneaky: [(&str, &'static [&'static str]); 30] = [
            ("\\u0000", &["invalid_symbol"]),
            ("\\u001f", &["invalid_symbol"]),
            ("\\u007f", &["invalid_symbol"]),
            ("\u{7f}", &["invalid_symbol"]),
            ("\\u0085", &["invalid_symbol"]),
            ("\\t", &["invalid_symbol"]),
            (" ", &["invalid_symbol"]),
            ("\u{a0}", &["invalid_symbol"]),
            ("\u{3000}", &["invalid_symbol"]),
            ("\u{2028}", &["invalid_symbol"]),
            ("\u{202e}", &["invalid_symbol"]),
            ("\\u202e", &["invalid_symbol"]),
            ("\u{202a}", &["invalid_symbol"]),
            ("\u{202d}", &["invalid_symbol"]),
            ("\u{2066}", &["invalid_symbol"]),
            ("\u{2069}", &["invalid_symbol"]),
            ("\u{200e}", &["invalid_symbol"]),
            ("\u{200f}", &["invalid_symbol"]),
            ("\u{61c}", &["invalid_symbol"]),
            ("\u{200b}", &["invalid_symbol"]),
            ("\\u200b", &["invalid_symbol"]),
            ("\u{200c}", &["invalid_symbol"]),
            ("\u{200d}", &["invalid_symbol"]),
            ("\u{2060}", &["invalid_symbol"]),
            ("\u{feff}", &["invalid_symbol"]),
            ("\u{ad}", &["invalid_symbol"]),
            ("\u{fe0f}", &["invalid_symbol"]),
            ("\u{e0041}", &["invalid_symbol"]),
            ("\\ud800", MALFORMED),
            ("\\udc00x", MALFORMED),
        ];
        let whole: [(&str, &'static [&'static str]); 7] = [
            ("\"\"", &["invalid_symbol"]),
            ("\"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456\"", &["invalid_symbol"]),
            ("42", &["wrong_type"]),
            ("true", &["wrong_type"]),
            ("[\"AAPL\"]", &["wrong_type"]),
            ("{\"s\":\"AAPL\"}", &["wrong_type"]),
            ("null", &["missing_field"]),
        ];
        let (value, codes) = if self.chance(0.85) {
            let (c, codes) = self.pick(&sneaky);
            let symbol = self.any_key();
            let at = self.pick(&[0, 2, symbol.len()]).min(symbol.len());
            (format!("\"{}{c}{}\"", &symbol[..at], &symbol[at..]), codes)
        } else {
            let (value, codes) = self.pick(&whole);
            (value.to_owned(), codes)
        };
        let data = self.with("symbol", &value);
        Self::unit("symbol_characters", data, codes)
    }

    fn timestamp_out_of_range(&mut self) -> Unit {
        let value = self.pick(&[
            "\"1989-12-31T23:59:59.999Z\"",
            "\"2100-01-01T00:00:00.001Z\"",
            "1767364200",
            "\"1767364200\"",
            "-1",
            "0",
            "1767364200123000",
            "631151999999",
            "4102444800001",
            "\"1970-01-01T00:00:00Z\"",
            "\"9999-12-31T23:59:59.999Z\"",
            "\"0001-01-01T00:00:00+00:00\"",
        ]);
        let data = self.with("timestamp", value);
        Self::unit("timestamp_out_of_range", data, &["timestamp_out_of_range"])
    }

    fn timestamp_unparseable(&mut self) -> Unit {
        let (value, codes): (&str, &'static [&'static str]) = self.pick(&[
            ("\"2026-01-02\"", &["timestamp_unparseable"]),
            ("\"2026/01/02 14:30:00\"", &["timestamp_unparseable"]),
            ("\"yesterday\"", &["timestamp_unparseable"]),
            ("\"2026-01-02T14:30:00\"", &["timestamp_unparseable"]),
            ("\"2026-13-01T00:00:00Z\"", &["timestamp_unparseable"]),
            ("\"2026-02-30T00:00:00Z\"", &["timestamp_unparseable"]),
            ("1767364200123.5", &["timestamp_unparseable"]),
            ("\"1767364200123 \"", &["timestamp_unparseable"]),
            ("\"99999999999999999999\"", &["timestamp_unparseable"]),
            ("99999999999999999999", &["timestamp_unparseable"]),
            ("\"\"", &["timestamp_unparseable"]),
            ("1e400", &["timestamp_unparseable"]),
            ("\"-1767364200123\"", &["timestamp_unparseable"]),
            ("\"2026-01-02T14:30:00.123ZZ\"", &["timestamp_unparseable"]),
            ("\"Fri, 02 Jan 2026 14:30:00 GMT\"", &["timestamp_unparseable"]),
            ("\"\u{661}\u{667}\u{666}\u{667}\u{663}\u{666}\u{664}\u{662}\u{660}\u{660}\u{661}\u{662}\u{663}\"", &["timestamp_unparseable"]),
            ("\"2026-01-02T14:30:00.123Z\u{202e}\"", &["timestamp_unparseable"]),
            ("true", &["wrong_type"]),
            ("[1767364200123]", &["wrong_type"]),
            ("{\"ms\":1767364200123}", &["wrong_type"]),
        ]);
        let data = self.with("timestamp", value);
        Self::unit("timestamp_unparseable", data, codes)
    }

    fn wrong_type(&mut self) -> Unit {
        let field = self.pick(&NUMERIC);
        let (value, codes): (&str, &'static [&'static str]) = self.pick(&[
            ("true", &["wrong_type"]),
            ("false", &["wrong_type"]),
            ("[1]", &["wrong_type"]),
            ("{\"v\":1}", &["wrong_type"]),
            ("\"abc\"", &["wrong_type"]),
            ("\"\"", &["wrong_type"]),
            ("\" 1\"", &["wrong_type"]),
            ("\"1,000\"", &["wrong_type"]),
            ("\"0x10\"", &["wrong_type"]),
            ("\"NaN\"", &["non_finite"]),
            ("\"inf\"", &["non_finite"]),
            ("\"-infinity\"", &["non_finite"]),
            ("NaN", MALFORMED),
            ("Infinity", MALFORMED),
            ("01", MALFORMED),
            ("1.", MALFORMED),
            ("+1", MALFORMED),
            ("0x10", MALFORMED),
        ]);
        let data = self.with(field, value);
        Self::unit("wrong_type", data, codes)
    }

    fn empty(&mut self) -> Unit {
        let (data, codes): (&str, &'static [&'static str]) = self.pick(&[
            ("", MALFORMED),
            ("   ", MALFORMED),
            ("\n", MALFORMED),
            ("{", MALFORMED),
            ("}", MALFORMED),
            ("{}", &["missing_field"]),
            ("{\"\":\"\"}", &["missing_field"]),
            ("null", &["not_an_object"]),
            ("[]", &["not_an_object"]),
            ("\"\"", &["not_an_object"]),
            ("0", &["not_an_object"]),
        ]);
        Self::unit("empty", data.as_bytes().to_vec(), codes)
    }

    fn oversized(&mut self) -> Unit {
        let most = if self.chance(0.1) {
            100_000
        } else {
            MAX_RECORD_BYTES + 2_000
        };
        let padding = "x".repeat(self.rng.random_range(MAX_RECORD_BYTES + 1..most));
        let data = if self.chance(0.8) {
            self.with("padding", &quoted(&padding))
        } else {
            padding
        };
        Self::unit("oversized", data, &["oversized"])
    }

    fn missing_field(&mut self) -> Unit {
        let field = self.pick(&["symbol", "price", "timestamp"]);
        let mut fields = self.base();
        fields.retain(|(key, _)| key != field && !(field == "price" && key.starts_with("pri")));
        if self.chance(0.3) {
            fields.push((field.into(), "null".into()));
        }
        let data = self.render(&fields);
        Self::unit("missing_field", data, &["missing_field"])
    }

    fn sign(&mut self) -> Unit {
        let (field, value, code) = self.pick(&[
            ("price", "0", "non_positive"),
            ("price", "-0", "non_positive"),
            ("price", "-1.5", "non_positive"),
            ("open", "\"-2\"", "non_positive"),
            ("previous_close", "-0.0", "non_positive"),
            ("volume", "-1", "negative_volume"),
            ("volume", "-1e-5", "negative_volume"),
        ]);
        let data = self.with(field, value);
        let codes: &'static [&'static str] = match code {
            "non_positive" => &["non_positive"],
            _ => &["negative_volume"],
        };
        Self::unit("sign", data, codes)
    }

    fn garbage(&mut self) -> Unit {
        let len = self.rng.random_range(0..300);
        let mut data: Vec<u8> = (0..len).map(|_| self.rng.random()).collect();
        if kpl::MAGIC.iter().zip(&data).all(|(a, b)| a == b) && data.len() >= 4 {
            data[0] = b'x';
        }
        if self.chance(0.5) {
            let prefix = br#"{"symbol":"AAPL","price":"#;
            data.splice(0..0, prefix.iter().copied());
        }
        Self::unit(
            "garbage",
            data,
            &["malformed_json", "not_an_object", "missing_field"],
        )
    }
}
