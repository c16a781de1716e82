//! The ticks table item: the attribute names and types of one row of the DynamoDB ticks table,
//! shared by the local file table and the DynamoDB writer so both hold the same shape.
//!
//! In: one enriched tick (or one-minute bar). Out: its attributes, keyed by `symbol` (partition)
//! and `timestamp` (sort), handed one by one to an [`AttributeSink`]: the file table writes them
//! straight into a JSON line, DynamoDB into a request. An item is encoded once per tick, so it is
//! never built as a value of its own first.

mod text;

use compact_str::CompactString;

use self::text::{float, integer, iso8601_millis};
use super::bar::MinuteBar;
use super::enriched::EnrichedTick;
use super::rules::Trend;
use super::tick::Position;

/// A DynamoDB attribute value, restricted to the types the ticks table uses: the attributes of
/// an item given one by one ([`Item::Attributes`]).
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    S(CompactString),
    /// A number in DynamoDB's decimal text form.
    N(CompactString),
    Bool(bool),
}

/// Receives an item's attributes in item order.
pub trait AttributeSink {
    fn string(&mut self, name: &'static str, value: &str);
    /// A string attribute given as pieces to join: a sink that writes text writes them one after
    /// another instead of joining them first (the sort key, built for every tick item).
    fn joined_string(&mut self, name: &'static str, pieces: &[&str]) {
        self.string(name, &pieces.concat());
    }
    /// `value` is a number in DynamoDB's decimal text form.
    fn number(&mut self, name: &'static str, value: &str);
    fn boolean(&mut self, name: &'static str, value: bool);
}

/// One item of the ticks table, described by what it is made of.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<'a> {
    /// The item of one enriched tick; `expires_at` is the TTL attribute (epoch seconds).
    ///
    /// `change` and `change_percent` are the recomputed values of the indicators, as in the lake.
    Tick {
        tick: &'a EnrichedTick,
        expires_at: Option<i64>,
    },
    /// The item of one symbol's one-minute bar, `kind` = `bar_1m`.
    Bar {
        symbol: &'a str,
        bar: &'a MinuteBar,
        expires_at: Option<i64>,
    },
    /// Attributes given one by one, in order.
    Attributes(Vec<(&'static str, AttrValue)>),
}

impl Item<'_> {
    /// Hands every attribute to `sink`, in item order.
    pub fn write(&self, sink: &mut impl AttributeSink) {
        match self {
            Item::Tick { tick, expires_at } => write_tick(tick, *expires_at, sink),
            Item::Bar {
                symbol,
                bar,
                expires_at,
            } => write_bar(symbol, bar, *expires_at, sink),
            Item::Attributes(attributes) => {
                for (name, value) in attributes {
                    match value {
                        AttrValue::S(text) => sink.string(name, text),
                        AttrValue::N(number) => sink.number(name, number),
                        AttrValue::Bool(value) => sink.boolean(name, *value),
                    }
                }
            }
        }
    }
}

/// Sort key of a tick: ISO 8601 UTC with milliseconds, then `#` and the stream position, so two
/// ticks in the same millisecond never share a key and time-range queries still work.
pub fn sort_key(event_time_ms: i64, position: &Position) -> String {
    let mut sub_sequence = itoa::Buffer::new();
    key_pieces(&iso8601_millis(event_time_ms), position, &mut sub_sequence).concat()
}

/// `event_time#position` in pieces, as `Position`'s `Display` writes it, without the formatting
/// machinery: it is written for every tick item.
fn key_pieces<'a>(
    event_time: &'a str,
    position: &'a Position,
    sub_sequence: &'a mut itoa::Buffer,
) -> [&'a str; 5] {
    let (dot, sub_sequence) = match position.sub_sequence {
        0 => ("", ""),
        sub => (".", sub_sequence.format(sub)),
    };
    [
        event_time,
        "#",
        position.sequence.as_str(),
        dot,
        sub_sequence,
    ]
}

fn trend_str(trend: Trend) -> &'static str {
    match trend {
        Trend::Up => "up",
        Trend::Down => "down",
    }
}

fn write_tick(tick: &EnrichedTick, expires_at: Option<i64>, sink: &mut impl AttributeSink) {
    let (t, i) = (&tick.tick, &tick.indicators);
    let event_time = iso8601_millis(t.event_time_ms);
    sink.string("symbol", &t.symbol);
    let mut sub_sequence = itoa::Buffer::new();
    let key = key_pieces(&event_time, &tick.position, &mut sub_sequence);
    sink.joined_string("timestamp", &key);
    sink.string("event_time", &event_time);
    integer(sink, "event_time_ms", t.event_time_ms);
    let numbers = [
        ("price", Some(t.price)),
        ("open", t.open),
        ("high", t.high),
        ("low", t.low),
        ("previous_close", t.previous_close),
        ("volume", t.volume),
        ("change", i.change),
        ("change_percent", i.change_percent),
        ("sma_short", i.sma_short),
        ("sma_long", i.sma_long),
        ("ema", i.ema),
        ("vwap", i.vwap),
        ("window_high", i.window_high),
        ("window_low", i.window_low),
        ("volatility", i.volatility),
        ("return_zscore", i.return_zscore),
        ("volume_ratio", i.volume_ratio),
    ];
    for (name, value) in numbers {
        if let Some(value) = value {
            float(sink, name, value);
        }
    }
    sink.boolean("anomaly", tick.anomaly);
    if let Some(trend) = tick.trend {
        sink.string("trend", trend_str(trend));
    }
    sink.string("shard_id", &tick.shard_id);
    sink.string("sequence_number", tick.position.sequence.as_str());
    integer(sink, "arrival_time_ms", tick.arrival_time_ms);
    if let Some(expires_at) = expires_at {
        integer(sink, "expires_at", expires_at);
    }
}

/// Sort key of a one-minute bar: the minute as `2026-01-02T14:30Z`. In a table that also holds
/// ticks it sorts after that minute's ticks (`2026-01-02T14:30:00.123Z#...`), since `:` < `Z`.
pub fn bar_sort_key(minute_start_ms: i64) -> CompactString {
    let mut key = iso8601_millis(minute_start_ms);
    key.truncate(16);
    key.push('Z');
    key
}

fn write_bar(
    symbol: &str,
    bar: &MinuteBar,
    expires_at: Option<i64>,
    sink: &mut impl AttributeSink,
) {
    sink.string("symbol", symbol);
    sink.string("timestamp", &bar_sort_key(bar.minute_start_ms));
    sink.string("kind", "bar_1m");
    sink.string("event_time", &iso8601_millis(bar.minute_start_ms));
    let numbers = [
        ("open", Some(bar.open)),
        ("high", Some(bar.high)),
        ("low", Some(bar.low)),
        ("close", Some(bar.close)),
        ("volume", Some(bar.volume)),
        ("vwap", bar.vwap()),
    ];
    for (name, value) in numbers {
        if let Some(value) = value {
            float(sink, name, value);
        }
    }
    integer(sink, "trades", bar.trades);
    if let Some(expires_at) = expires_at {
        integer(sink, "expires_at", expires_at);
    }
}

/// Collects an item as DynamoDB JSON (`{"symbol":{"S":"AAPL"},...}`), as `aws dynamodb scan`
/// prints it.
#[derive(Debug, Default)]
pub struct JsonItem(pub serde_json::Map<String, serde_json::Value>);

impl AttributeSink for JsonItem {
    fn string(&mut self, name: &'static str, value: &str) {
        self.0
            .insert(name.into(), serde_json::json!({ "S": value }));
    }

    fn number(&mut self, name: &'static str, value: &str) {
        self.0
            .insert(name.into(), serde_json::json!({ "N": value }));
    }

    fn boolean(&mut self, name: &'static str, value: bool) {
        self.0
            .insert(name.into(), serde_json::json!({ "BOOL": value }));
    }
}

/// DynamoDB JSON of an item.
pub fn item_to_json(item: &Item) -> serde_json::Value {
    let mut json = JsonItem::default();
    item.write(&mut json);
    serde_json::Value::Object(json.0)
}

#[cfg(test)]
pub(crate) mod tests;
