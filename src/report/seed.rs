//! The answers to the four queries the systems kinetick replaces ran in Athena, computed over the
//! report's rows with SQL's rules: arithmetic on a NULL is NULL, a NULL comparison filters the row
//! out, `AVG` skips NULLs (and is NULL over none), `ORDER BY ... DESC` puts NULLs last.
//!
//! In: lake rows, one at a time ([`SeedQueries::add`]), in any order. Out: [`SeedAnswers`], each
//! with its SQL, columns and rows (what `summary.json` holds and `check_report.py` compares with
//! DuckDB). Memory: bounded for the first three; the fourth keeps every matching row.
//!
//! Where SQL leaves the order open, the report chooses one and says so: `LIMIT` without
//! `ORDER BY` is any rows, so the first rows are the earliest by event time, symbol and stream
//! position; ties of the top price changes go by symbol, price and previous close (rows equal in
//! all of these are identical in the answer); average volumes are by symbol; moves over 5 % by
//! event time, then symbol.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::row::{Row, columns};

/// Rows of `SELECT * FROM t LIMIT 10`.
pub const FIRST_ROWS: usize = 10;
/// Rows of the top price changes.
pub const TOP_CHANGES: usize = 5;
/// `|change %|` above which a row is a big move.
pub const MOVE_PERCENT: f64 = 5.0;

pub const FIRST_ROWS_SQL: &str = "SELECT * FROM t LIMIT 10";
pub const TOP_CHANGES_SQL: &str = "SELECT symbol, price, previous_close, (price - previous_close) AS price_change FROM t ORDER BY price_change DESC LIMIT 5";
pub const AVG_VOLUME_SQL: &str = "SELECT symbol, AVG(volume) AS avg_volume FROM t GROUP BY symbol";
pub const BIG_MOVES_SQL: &str = "SELECT symbol, price, previous_close, ROUND(((price - previous_close) / previous_close) * 100, 2) AS change_percent FROM t WHERE ABS(((price - previous_close) / previous_close) * 100) > 5";

/// One query's answer as a table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    pub sql: &'static str,
    /// The order the report chose where the SQL leaves it open.
    pub order: &'static str,
    pub columns: Vec<&'static str>,
    /// Rows of the answer (all of them).
    pub count: usize,
    pub rows: Vec<Vec<Value>>,
}

/// The four answers, as `summary.json` names them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeedAnswers {
    pub first_rows: Answer,
    pub top_price_changes: Answer,
    pub avg_volume: Answer,
    pub moves_over_5_percent: Answer,
}

/// A row of the price-change query: `(symbol, price, previous_close)`, and its change.
#[derive(Debug, Clone, PartialEq)]
struct Change {
    symbol: String,
    price: f64,
    previous_close: Option<f64>,
    change: Option<f64>,
}

impl Change {
    /// `ORDER BY price_change DESC` (NULLs last), then the report's tie-break.
    fn order(&self, other: &Self) -> Ordering {
        match (self.change, other.change) {
            (Some(a), Some(b)) => b.total_cmp(&a),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
        .then_with(|| self.symbol.cmp(&other.symbol))
        .then_with(|| self.price.total_cmp(&other.price))
        .then_with(|| {
            let close = |c: &Self| c.previous_close.unwrap_or(f64::NEG_INFINITY);
            close(self).total_cmp(&close(other))
        })
    }
}

/// A row of the big-moves query, with its event time for the report's order.
#[derive(Debug, Clone, PartialEq)]
struct Move {
    event_time_ms: i64,
    symbol: String,
    price: f64,
    previous_close: f64,
    rounded: f64,
}

/// The four queries, fed one row at a time.
#[derive(Debug, Default)]
pub struct SeedQueries {
    /// The earliest rows so far, in order; at most [`FIRST_ROWS`].
    first: Vec<Row>,
    /// The best price changes so far, in order; at most [`TOP_CHANGES`].
    top: Vec<Change>,
    /// `(sum, count)` of the non-NULL volumes of each symbol (a symbol with none is still a group).
    volumes: BTreeMap<String, (f64, u64)>,
    moves: Vec<Move>,
}

/// The report's order of `SELECT *`: event time, symbol, then stream position.
fn first_order(a: &Row, b: &Row) -> Ordering {
    a.event_time_ms
        .cmp(&b.event_time_ms)
        .then_with(|| a.symbol.cmp(&b.symbol))
        .then_with(|| a.shard_id.cmp(&b.shard_id))
        .then_with(|| a.sequence_number.cmp(&b.sequence_number))
        .then_with(|| a.sub_sequence_number.cmp(&b.sub_sequence_number))
}

/// Keeps `item` in `best` (sorted by `order`) if it is among the first `limit`.
fn keep_best<T>(best: &mut Vec<T>, item: T, limit: usize, order: impl Fn(&T, &T) -> Ordering) {
    if best.len() == limit
        && best
            .last()
            .is_none_or(|last| order(&item, last) != Ordering::Less)
    {
        return;
    }
    let at = best.partition_point(|kept| order(kept, &item) != Ordering::Greater);
    best.insert(at, item);
    best.truncate(limit);
}

/// SQL's `ROUND(x, 2)` on a double as DuckDB computes it: scaled, rounded half away from zero,
/// scaled back.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl SeedQueries {
    pub fn add(&mut self, row: &Row) {
        keep_best(&mut self.first, row.clone(), FIRST_ROWS, first_order);
        let change = Change {
            symbol: row.symbol.clone(),
            price: row.price,
            previous_close: row.previous_close,
            change: row.price_change(),
        };
        keep_best(&mut self.top, change, TOP_CHANGES, Change::order);

        let group = match self.volumes.get_mut(row.symbol.as_str()) {
            Some(group) => group,
            None => self.volumes.entry(row.symbol.clone()).or_default(),
        };
        if let Some(volume) = row.volume {
            group.0 += volume;
            group.1 += 1;
        }

        if let (Some(close), Some(percent)) = (row.previous_close, row.change_vs_close())
            && percent.abs() > MOVE_PERCENT
        {
            self.moves.push(Move {
                event_time_ms: row.event_time_ms,
                symbol: row.symbol.clone(),
                price: row.price,
                previous_close: close,
                rounded: round2(percent),
            });
        }
    }

    pub fn finish(mut self) -> SeedAnswers {
        let number = |value: Option<f64>| value.map_or(Value::Null, Value::from);
        let first_rows: Vec<Vec<Value>> = self.first.iter().map(Row::values).collect();
        let top: Vec<Vec<Value>> = self
            .top
            .iter()
            .map(|c| {
                vec![
                    Value::from(c.symbol.as_str()),
                    Value::from(c.price),
                    number(c.previous_close),
                    number(c.change),
                ]
            })
            .collect();
        let averages: Vec<Vec<Value>> = self
            .volumes
            .iter()
            .map(|(symbol, &(sum, count))| {
                let average = (count > 0).then(|| sum / count as f64);
                vec![Value::from(symbol.as_str()), number(average)]
            })
            .collect();
        self.moves
            .sort_by(|a, b| (a.event_time_ms, &a.symbol).cmp(&(b.event_time_ms, &b.symbol)));
        let moves: Vec<Vec<Value>> = self
            .moves
            .iter()
            .map(|m| {
                vec![
                    Value::from(m.symbol.as_str()),
                    Value::from(m.price),
                    Value::from(m.previous_close),
                    Value::from(m.rounded),
                ]
            })
            .collect();
        let answer = |sql, order, columns: &[&'static str], rows: Vec<Vec<Value>>| Answer {
            sql,
            order,
            columns: columns.to_vec(),
            count: rows.len(),
            rows,
        };
        SeedAnswers {
            first_rows: answer(
                FIRST_ROWS_SQL,
                "LIMIT without ORDER BY is any 10 rows; the report shows the first 10 by \
                 event_time, symbol (then shard_id, sequence_number, sub_sequence_number)",
                &columns(),
                first_rows,
            ),
            top_price_changes: answer(
                TOP_CHANGES_SQL,
                "ties by symbol, price, previous_close",
                &["symbol", "price", "previous_close", "price_change"],
                top,
            ),
            avg_volume: answer(
                AVG_VOLUME_SQL,
                "every symbol, by symbol",
                &["symbol", "avg_volume"],
                averages,
            ),
            moves_over_5_percent: answer(
                BIG_MOVES_SQL,
                "by event_time, then symbol",
                &["symbol", "price", "previous_close", "change_percent"],
                moves,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row(symbol: &str, time: i64, price: f64, close: Option<f64>, volume: Option<f64>) -> Row {
        Row {
            symbol: symbol.into(),
            event_time_ms: time,
            price,
            previous_close: close,
            volume,
            shard_id: "shard-1".into(),
            sequence_number: format!("{time:05}"),
            ..Row::default()
        }
    }

    fn answers(rows: &[Row]) -> SeedAnswers {
        let mut queries = SeedQueries::default();
        for row in rows {
            queries.add(row);
        }
        queries.finish()
    }

    #[test]
    fn first_rows_are_the_earliest_ten_by_time_then_symbol() {
        // Read newest first, two symbols per millisecond.
        let rows: Vec<Row> = (0..30)
            .rev()
            .flat_map(|t| [row("B", t, 1.0, None, None), row("A", t, 1.0, None, None)])
            .collect();
        let first = answers(&rows).first_rows;
        assert_eq!(first.count, 10);
        let keys: Vec<(Value, Value)> = first
            .rows
            .iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect();
        let time = |ms| Value::from(super::super::row::iso_millis(ms));
        assert_eq!(keys[0], (json!("A"), time(0)));
        assert_eq!(keys[1], (json!("B"), time(0)));
        assert_eq!(keys[9], (json!("B"), time(4)));
        assert_eq!(first.columns.len(), first.rows[0].len());
    }

    #[test]
    fn top_price_changes_sort_descending_and_skip_nulls_until_needed() {
        let rows = [
            row("A", 1, 110.0, Some(100.0), None), // +10
            row("B", 2, 50.0, None, None),         // NULL
            row("C", 3, 95.0, Some(100.0), None),  // -5
            row("D", 4, 130.0, Some(100.0), None), // +30
            row("E", 5, 101.0, Some(100.0), None), // +1
        ];
        let top = answers(&rows).top_price_changes;
        assert_eq!(
            top.rows,
            [
                vec![json!("D"), json!(130.0), json!(100.0), json!(30.0)],
                vec![json!("A"), json!(110.0), json!(100.0), json!(10.0)],
                vec![json!("E"), json!(101.0), json!(100.0), json!(1.0)],
                vec![json!("C"), json!(95.0), json!(100.0), json!(-5.0)],
                // Only four rows have a change: the NULL comes last, as in SQL.
                vec![json!("B"), json!(50.0), Value::Null, Value::Null],
            ]
        );
    }

    #[test]
    fn top_price_changes_keep_five_with_ties_by_symbol() {
        let rows: Vec<Row> = ["F", "E", "D", "C", "B", "A"]
            .iter()
            .enumerate()
            .map(|(i, s)| row(s, i as i64, 101.0, Some(100.0), None))
            .chain([row("Z", 9, 100.5, Some(100.0), None)])
            .collect();
        let top = answers(&rows).top_price_changes;
        let symbols: Vec<&Value> = top.rows.iter().map(|r| &r[0]).collect();
        assert_eq!(symbols, ["A", "B", "C", "D", "E"]);
    }

    #[test]
    fn average_volume_ignores_nulls_and_keeps_a_symbol_without_any() {
        let rows = [
            row("B", 1, 1.0, None, Some(10.0)),
            row("A", 2, 1.0, None, Some(4.0)),
            row("A", 3, 1.0, None, None),
            row("A", 4, 1.0, None, Some(8.0)),
            row("C", 5, 1.0, None, None),
        ];
        let average = answers(&rows).avg_volume;
        assert_eq!(
            average.rows,
            [
                vec![json!("A"), json!(6.0)],
                vec![json!("B"), json!(10.0)],
                vec![json!("C"), Value::Null],
            ]
        );
    }

    #[test]
    fn big_moves_are_over_five_percent_either_way_rounded_to_cents() {
        let rows = [
            row("A", 3, 105.0, Some(100.0), None),  // exactly 5: not over
            row("B", 2, 94.0, Some(100.0), None),   // -6
            row("C", 1, 110.0, None, None),         // NULL close: filtered out
            row("D", 4, 1.0754, Some(1.0), None),   // 7.54
            row("E", 0, 101.0, Some(100.0), None),  // 1
            row("F", 5, 10.0, Some(10.5321), None), // -5.0512...
        ];
        let moves = answers(&rows).moves_over_5_percent;
        assert_eq!(moves.count, 3);
        let got: Vec<(Value, Value)> = moves
            .rows
            .iter()
            .map(|r| (r[0].clone(), r[3].clone()))
            .collect();
        assert_eq!(
            got,
            [
                (json!("B"), json!(-6.0)),
                (json!("D"), json!(7.54)),
                (json!("F"), json!(-5.05)),
            ]
        );
    }

    #[test]
    fn round2_rounds_half_away_from_zero_like_duckdb() {
        assert_eq!(round2(1.005_f64 * 1.0), 1.0); // 1.005 is 1.00499999... as a double
        assert_eq!(round2(2.675), 2.68);
        assert_eq!(round2(-7.125), -7.13);
        assert_eq!(round2(0.0), 0.0);
    }
}
