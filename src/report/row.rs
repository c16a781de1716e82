//! One row of the lake as the report reads it: every column of a tick file (the schema of
//! [`crate::model::lake::tick_schema`]) and the `dt` partition of its file, as Athena's
//! `SELECT *` shows it. Pure data: [`super::lake_reader`] fills it, [`super::summary`] and
//! [`super::series`] read it.

use std::sync::Arc;

use serde_json::Value;

use crate::model::lake::MEASURE_COLUMNS;
use crate::model::rules::{AlertKinds, Trend};

/// A lake row. Numbers a tick may lack are `None`, as the file's NULLs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub symbol: String,
    pub event_time_ms: i64,
    pub price: f64,
    pub open: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub previous_close: Option<f64>,
    pub change: Option<f64>,
    pub change_percent: Option<f64>,
    pub volume: Option<f64>,
    pub sma_short: Option<f64>,
    pub sma_long: Option<f64>,
    pub ema: Option<f64>,
    pub vwap: Option<f64>,
    pub window_high: Option<f64>,
    pub window_low: Option<f64>,
    pub volatility: Option<f64>,
    pub log_return: Option<f64>,
    pub return_zscore: Option<f64>,
    pub volume_ratio: Option<f64>,
    pub anomaly: bool,
    pub trend: Option<Trend>,
    pub shard_id: String,
    pub sequence_number: String,
    pub sub_sequence_number: i64,
    pub arrival_time_ms: i64,
    /// The kinds of alerts the tick raised and sent, and those its symbol's budget held (empty
    /// in files written before the lake had these columns).
    pub alerts: AlertKinds,
    pub alerts_held: AlertKinds,
    /// The Hive partition of the file (`YYYY-MM-DD`), a column in Athena and DuckDB too.
    pub dt: Arc<str>,
}

/// Column names of `SELECT *` over the lake table, in [`Row::values`]'s order: the lake's
/// columns, then the `dt` partition.
pub fn columns() -> Vec<&'static str> {
    ["symbol", "event_time", "price"]
        .into_iter()
        .chain(MEASURE_COLUMNS)
        .chain([
            "anomaly",
            "trend",
            "shard_id",
            "sequence_number",
            "sub_sequence_number",
            "arrival_time",
            "alerts",
            "alerts_held",
            "dt",
        ])
        .collect()
}

impl Row {
    /// `(price - previous_close)`, NULL (None) when `previous_close` is, as in SQL.
    pub fn price_change(&self) -> Option<f64> {
        self.previous_close.map(|close| self.price - close)
    }

    /// `((price - previous_close) / previous_close) * 100`, evaluated in the seed query's order
    /// so that it is the same double SQL computes; NULL when `previous_close` is.
    pub fn change_vs_close(&self) -> Option<f64> {
        self.previous_close
            .map(|close| ((self.price - close) / close) * 100.0)
    }

    /// The row's values as JSON, in [`columns`] order; times as ISO 8601 UTC with milliseconds.
    pub fn values(&self) -> Vec<Value> {
        let number = |value: Option<f64>| value.map_or(Value::Null, Value::from);
        let mut values = vec![
            Value::from(self.symbol.as_str()),
            Value::from(iso_millis(self.event_time_ms)),
            Value::from(self.price),
        ];
        values.extend(
            [
                self.open,
                self.high,
                self.low,
                self.previous_close,
                self.change,
                self.change_percent,
                self.volume,
                self.sma_short,
                self.sma_long,
                self.ema,
                self.vwap,
                self.window_high,
                self.window_low,
                self.volatility,
                self.log_return,
                self.return_zscore,
                self.volume_ratio,
            ]
            .map(number),
        );
        values.extend([
            Value::from(self.anomaly),
            self.trend.map_or(Value::Null, |t| Value::from(t.as_str())),
            Value::from(self.shard_id.as_str()),
            Value::from(self.sequence_number.as_str()),
            Value::from(self.sub_sequence_number),
            Value::from(iso_millis(self.arrival_time_ms)),
            self.alerts.to_text().map_or(Value::Null, Value::from),
            self.alerts_held.to_text().map_or(Value::Null, Value::from),
            Value::from(&*self.dt),
        ]);
        values
    }
}

/// `2026-01-05T14:30:00.123Z`.
pub fn iso_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || format!("{ms} ms"),
        |t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_the_columns() {
        let row = Row {
            symbol: "AAPL".into(),
            event_time_ms: 1_767_623_400_123,
            price: 10.5,
            previous_close: Some(10.0),
            trend: Some(Trend::Up),
            dt: "2026-01-05".into(),
            ..Row::default()
        };
        let values = row.values();
        let columns = columns();
        assert_eq!(values.len(), columns.len());
        let at = |name: &str| &values[columns.iter().position(|c| *c == name).unwrap()];
        assert_eq!(at("event_time"), "2026-01-05T14:30:00.123Z");
        assert_eq!(at("previous_close"), 10.0);
        assert_eq!(at("volume"), &Value::Null);
        assert_eq!(at("trend"), "up");
        assert_eq!(at("alerts"), &Value::Null);
        assert_eq!(at("dt"), "2026-01-05");
        assert_eq!(row.price_change(), Some(0.5));
        assert_eq!(row.change_vs_close(), Some(5.0));
    }

    #[test]
    fn null_previous_close_gives_null_changes() {
        let row = Row {
            price: 3.0,
            ..Row::default()
        };
        assert_eq!(row.price_change(), None);
        assert_eq!(row.change_vs_close(), None);
    }
}
