//! Items the table refuses on their own (a DynamoDB `ValidationException`): found by halving
//! the refused call until each refused item stands alone, then kept as dead letters with the
//! reason, so one bad item neither stops the stream nor is lost.
//!
//! Out: the refused items' dead letters, named by the item's shard and position (a bar's by its
//! symbol and minute), so writing one again (a replay) replaces it with the same line.

use std::ops::Range;

use super::{TableError, TicksTable};
use crate::model::dead_letter::DeadLetter;
use crate::model::digest::hex_md5;
use crate::model::item::{Item, item_to_json};
use crate::retry::{Reporting, Stopped, persistently};

/// The reason code of an item the table refused.
pub const REFUSED_BY_TABLE: &str = "refused_by_table";

/// Writes `items` until each is written or refused on its own; returns the refused ones with
/// the table's reason. A call whose every item is refused alone is no item's fault (a table
/// whose key schema does not match, say): it is tried again, slowly, as a refusal of the table.
pub async fn write_finding_refused<'a>(
    table: &dyn TicksTable,
    items: &'a [Item<'a>],
    report: Reporting<'_>,
) -> Vec<(&'a Item<'a>, TableError)> {
    loop {
        let refused = write_halving(table, items, report).await;
        if refused.len() < items.len() || items.len() == 1 {
            return refused;
        }
        let (_, error) = &refused[0];
        report.health.failing(report.concern, error, true);
        tracing::error!(%error, items = items.len(),
            "The table refuses every item; trying again until it is fixed.");
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
}

async fn write_halving<'a>(
    table: &dyn TicksTable,
    items: &'a [Item<'a>],
    report: Reporting<'_>,
) -> Vec<(&'a Item<'a>, TableError)> {
    // Parts still to write, last first.
    let mut pending: Vec<Range<usize>> = Vec::new();
    pending.push(0..items.len());
    let mut refused = Vec::new();
    while let Some(range) = pending.pop() {
        let part = &items[range.clone()];
        let written = persistently(
            report,
            TableError::failure,
            || true,
            || table.put_items(part),
        );
        match written.await {
            Ok(()) => {}
            Err(Stopped::Rejected(error)) if part.len() == 1 => refused.push((&part[0], error)),
            Err(_) => {
                let middle = range.start + range.len() / 2;
                pending.push(middle..range.end);
                pending.push(range.start..middle);
            }
        }
    }
    refused
}

/// The dead letter of an item the table refused, and the name of its object.
pub fn dead_letter(item: &Item, error: &TableError) -> (DeadLetter, String) {
    let data = bytes::Bytes::from(item_to_json(item).to_string());
    let reason = error.to_string();
    let letter = match item {
        Item::Tick { tick, .. } => DeadLetter {
            shard_id: tick.shard_id.clone(),
            position: tick.position.clone(),
            partition_key: tick.tick.symbol.as_str().into(),
            arrival_time_ms: tick.arrival_time_ms,
            reason_code: REFUSED_BY_TABLE,
            reason,
            data,
        },
        Item::Bar { symbol, bar, .. } => DeadLetter {
            shard_id: "bars".into(),
            position: crate::model::tick::Position::before_any(),
            partition_key: (*symbol).into(),
            arrival_time_ms: bar.minute_start_ms,
            reason_code: REFUSED_BY_TABLE,
            reason,
            data,
        },
        Item::Attributes(_) => DeadLetter {
            shard_id: "items".into(),
            position: crate::model::tick::Position::before_any(),
            partition_key: "".into(),
            arrival_time_ms: 0,
            reason_code: REFUSED_BY_TABLE,
            reason,
            data,
        },
    };
    let name = match item {
        Item::Tick { tick, .. } => format!("{}-{}", tick.shard_id, tick.position),
        Item::Bar { symbol, bar, .. } => {
            format!("bar-{}-{}", bar.minute_start_ms, hex_md5(symbol.as_bytes()))
        }
        Item::Attributes(_) => format!("item-{}", hex_md5(&letter.data)),
    };
    (letter, name)
}
