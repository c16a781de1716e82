//! The snapshot form of a symbol's windows, and the checks that a snapshot read back (from
//! outside the process) must pass before it becomes a window again.
//!
//! The event-time window is written as columns, times as deltas, floats bit-exact; counts and
//! extremes are not stored but rebuilt from the entries.

use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Deserializer, Serialize, de};

use super::ring::PriceRing;
use super::span::{Entry, SpanWindow};
use super::sum::Sum;
use super::{SymbolWindows, WindowConfig};
use crate::model::exact_float::{self as exact, Exact, FloatValues};

/// Serializes the window as columns, times as deltas, to keep checkpoints small.
impl Serialize for SpanWindow {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entries = &self.entries;
        let mut state = serializer.serialize_struct("SpanWindow", 13)?;
        state.serialize_field("ticks", &self.ticks)?;
        state.serialize_field("end", &self.end)?;
        state.serialize_field(
            "time",
            &Column(|| {
                let mut previous = 0i64;
                entries.iter().map(move |e| {
                    let delta = e.time.wrapping_sub(previous);
                    previous = e.time;
                    delta
                })
            }),
        )?;
        state.serialize_field(
            "price",
            &exact::FloatColumn(|| entries.iter().map(|e| Some(e.price))),
        )?;
        state.serialize_field(
            "volume",
            &exact::FloatColumn(|| entries.iter().map(Entry::volume)),
        )?;
        state.serialize_field(
            "return",
            &exact::FloatColumn(|| entries.iter().map(Entry::log_return)),
        )?;
        state.serialize_field("price-volume", &self.price_volume)?;
        state.serialize_field("volume-sum", &self.volume)?;
        state.serialize_field("return-sum", &self.returns)?;
        state.serialize_field("squared-return-sum", &self.squared_returns)?;
        state.serialize_field("last-return", &self.last_return.map(Exact))?;
        state.serialize_field("run", &self.run)?;
        state.serialize_field("evicted", &self.evicted)?;
        state.end()
    }
}

/// A sequence serialized straight from an iterator, without collecting it first.
struct Column<F>(F);

impl<F, I> Serialize for Column<F>
where
    F: Fn() -> I,
    I: IntoIterator,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq((self.0)())
    }
}

/// A snapshot is read from outside the process: reject one that would break an invariant.
#[derive(Debug, thiserror::Error)]
#[error("invalid window snapshot: {0}")]
pub(super) struct InvalidSnapshot(&'static str);

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct SpanRepr {
    ticks: u64,
    end: Option<i64>,
    time: Vec<i64>,
    price: FloatValues,
    volume: FloatValues,
    #[serde(rename = "return")]
    log_return: FloatValues,
    price_volume: Sum,
    volume_sum: Sum,
    return_sum: Sum,
    squared_return_sum: Sum,
    last_return: Option<Exact>,
    run: usize,
    evicted: usize,
}

/// Reads the columns back and checks them, as `#[serde(try_from = "SpanRepr")]` would.
impl<'de> Deserialize<'de> for SpanWindow {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::try_from(SpanRepr::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

impl TryFrom<SpanRepr> for SpanWindow {
    type Error = InvalidSnapshot;

    fn try_from(repr: SpanRepr) -> Result<Self, InvalidSnapshot> {
        let len = repr.time.len();
        let (price, volume, log_return) = (repr.price.0, repr.volume.0, repr.log_return.0);
        if price.len() != len || volume.len() != len || log_return.len() != len {
            return Err(InvalidSnapshot("columns differ in length"));
        }
        if repr.ticks < len as u64 || repr.ticks > u64::MAX / 2 {
            return Err(InvalidSnapshot("tick count out of range"));
        }
        let mut window = SpanWindow {
            ticks: repr.ticks - len as u64,
            end: repr.end,
            ..SpanWindow::default()
        };
        let mut time = 0i64;
        for (i, (((delta, price), volume), log_return)) in repr
            .time
            .into_iter()
            .zip(price)
            .zip(volume)
            .zip(log_return)
            .enumerate()
        {
            let previous = time;
            time = time.wrapping_add(delta);
            if (i > 0 && time < previous) || repr.end.is_none_or(|end| time > end) {
                return Err(InvalidSnapshot("entry times out of order"));
            }
            let Some(price) = price else {
                return Err(InvalidSnapshot("an entry lacks its price"));
            };
            if volume.is_some_and(|v| !(v.is_finite() && v >= 0.0))
                || log_return.is_some_and(|r| !r.is_finite())
            {
                return Err(InvalidSnapshot("volume or return out of range"));
            }
            window.add(Entry::new(time, price, volume, log_return));
        }
        // `add` rebuilt the counts and extremes; the sums and the run are taken as they were.
        window.price_volume = repr.price_volume;
        window.volume = repr.volume_sum;
        window.returns = repr.return_sum;
        window.squared_returns = repr.squared_return_sum;
        window.last_return = repr.last_return.map(|r| r.0);
        window.run = repr.run;
        window.evicted = repr.evicted;
        Ok(window)
    }
}

#[derive(Deserialize)]
pub(super) struct WindowsRepr {
    config: WindowConfig,
    ring: PriceRing,
    #[serde(with = "exact::option")]
    ema: Option<f64>,
    #[serde(with = "exact::option")]
    prev_price: Option<f64>,
    span: SpanWindow,
}

impl TryFrom<WindowsRepr> for SymbolWindows {
    type Error = InvalidSnapshot;

    fn try_from(repr: WindowsRepr) -> Result<Self, InvalidSnapshot> {
        let cap = repr.config.sma_short.max(repr.config.sma_long);
        let ring = &repr.ring;
        let consistent = if cap == 0 {
            ring.buf.is_empty() && ring.pos == 0
        } else {
            ring.buf.len() <= cap
                && ring.pos < cap
                && (ring.buf.len() == cap || ring.pos == ring.buf.len())
        };
        if !consistent {
            return Err(InvalidSnapshot("price ring does not fit the window config"));
        }
        Ok(Self {
            config: repr.config,
            ring: repr.ring,
            ema: repr.ema,
            prev_price: repr.prev_price,
            span: repr.span,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::window::tests::tick;

    #[test]
    fn snapshot_is_compact_and_exact() {
        let mut w = SymbolWindows::new(WindowConfig::default());
        for i in 0..100 {
            w.update(&tick(
                1_700_000_000_000 + i * 250,
                190.0 + (i % 7) as f64 * 0.01,
                Some(100.0),
            ));
        }
        let json = serde_json::to_string(&w).unwrap();
        assert!(json.contains(r#""time":[1700000000000,250,250"#), "{json}");
        assert!(json.len() < 100 * 50, "{} bytes: {json}", json.len());
        let restored: SymbolWindows = serde_json::from_str(&json).unwrap();
        assert_eq!(restored, w);
    }

    #[test]
    fn corrupt_snapshot_is_rejected() {
        let w = SymbolWindows::new(WindowConfig::default());
        let mut value = serde_json::to_value(&w).unwrap();
        value["ring"]["pos"] = 7.into();
        assert!(serde_json::from_value::<SymbolWindows>(value).is_err());
    }
}
