//! One read, decoded and validated: each kept symbol's ticks in one group, for its aggregator,
//! and the records that are not ticks, or whose symbol the shard keeps no state for, as dead
//! letters with their reason.
//!
//! Which symbols are kept is decided per record, in stream order, by the shard's
//! [`SymbolTable`]; the lookup that finds a tick's group is the table's, so the check costs
//! nothing more per record.

use crate::actors::symbol_aggregator::PendingTick;
use crate::model::dead_letter::DeadLetter;
use crate::model::decode::{DecodeLimits, decode_tick};
use crate::model::ids::ShardId;
use crate::model::symbol_table::{Admission, SYMBOL_LIMIT, SymbolTable};
use crate::model::tick::Symbol;
use crate::stream::Record;

/// A kept symbol's aggregator (`A`: its address), and the group its ticks joined in the latest
/// read that had any.
#[derive(Debug)]
pub(super) struct Kept<A> {
    pub aggregator: A,
    /// The read of the group, numbered by the reader; 0 is before any.
    read: u64,
    group: u32,
}

impl<A> Kept<A> {
    pub fn new(aggregator: A) -> Self {
        Self {
            aggregator,
            read: 0,
            group: 0,
        }
    }
}

pub(super) struct Routed<A> {
    /// Each group's ticks with the aggregator they go to, in the order the groups started. A
    /// symbol that starts afresh within the read has a second group, for its new aggregator.
    pub groups: Vec<(A, Vec<PendingTick>)>,
    pub dead_letters: Vec<DeadLetter>,
    /// Ticks whose record's partition key is not their symbol.
    pub keyed_otherwise: u64,
    /// Records dead-lettered because the shard keeps no state for their symbol.
    pub over_symbol_limit: u64,
    /// Symbols evicted while routing, with their aggregators: dropped once the groups are sent.
    pub evicted: Vec<(Symbol, Kept<A>)>,
}

/// Routes `records`, read number `read` (above 0, one more each time), through the shard's
/// symbols; `start` makes the aggregator of a symbol that starts afresh. A group starts with
/// room for `group_capacity` ticks.
pub(super) fn route<A: Clone>(
    shard_id: &ShardId,
    records: Vec<Record>,
    limits: &DecodeLimits,
    symbols: &mut SymbolTable<Kept<A>>,
    read: u64,
    mut start: impl FnMut(&Symbol) -> A,
    group_capacity: usize,
) -> Routed<A> {
    let mut routed = Routed {
        groups: Vec::new(),
        dead_letters: Vec::new(),
        keyed_otherwise: 0,
        over_symbol_limit: 0,
        evicted: Vec::new(),
    };
    let mut refusal = None;
    for record in records {
        let tick = match decode_tick(&record.data, limits) {
            Ok(tick) => tick,
            Err(rejection) => {
                routed.dead_letters.push(DeadLetter {
                    shard_id: shard_id.clone(),
                    position: record.position,
                    partition_key: record.partition_key,
                    arrival_time_ms: record.arrival_time_ms,
                    reason_code: rejection.code(),
                    reason: rejection.to_string(),
                    data: record.data,
                });
                continue;
            }
        };
        let admission = symbols.admit(
            &tick.symbol,
            tick.event_time_ms,
            &mut routed.evicted,
            || Kept::new(start(&tick.symbol)),
        );
        let kept = match admission {
            Admission::Kept(kept) | Admission::Started(kept) => kept,
            Admission::Refused => {
                let limits = symbols.limits();
                let reason = refusal.get_or_insert_with(|| limits.refusal());
                routed.over_symbol_limit += 1;
                routed.dead_letters.push(DeadLetter {
                    shard_id: shard_id.clone(),
                    position: record.position,
                    partition_key: record.partition_key,
                    arrival_time_ms: record.arrival_time_ms,
                    reason_code: SYMBOL_LIMIT,
                    reason: reason.clone(),
                    data: record.data,
                });
                continue;
            }
        };
        if kept.read != read {
            kept.read = read;
            kept.group = routed.groups.len() as u32;
            routed
                .groups
                .push((kept.aggregator.clone(), Vec::with_capacity(group_capacity)));
        }
        let group = kept.group as usize;
        let partition_key =
            (record.partition_key != tick.symbol.as_str()).then_some(record.partition_key);
        routed.keyed_otherwise += u64::from(partition_key.is_some());
        routed.groups[group].1.push(PendingTick {
            tick,
            position: record.position,
            arrival_time_ms: record.arrival_time_ms,
            partition_key,
        });
    }
    routed
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::model::symbol_table::SymbolLimits;
    use crate::model::tick::{Position, SequenceNumber};

    fn record(n: u64, symbol: &str, time_ms: i64) -> Record {
        let json = format!(r#"{{"symbol":"{symbol}","price":10.5,"timestamp":{time_ms}}}"#);
        Record {
            data: Bytes::from(json),
            partition_key: symbol.into(),
            position: Position::new(SequenceNumber::new(n.to_string()), 0),
            arrival_time_ms: 0,
        }
    }

    const HOUR: i64 = 3_600_000;
    const START: i64 = 1_767_225_600_000; // 2026-01-01

    /// Records of symbols A-E at rising times, with a gap of a day in the middle.
    fn records() -> Vec<Record> {
        let mut records = Vec::new();
        for n in 0..60u64 {
            let symbol = ["A", "B", "C", "D", "E"][(n * 7 % 5) as usize];
            let gap = if n >= 30 { 24 * HOUR } else { 0 };
            records.push(record(n, symbol, START + n as i64 * HOUR / 4 + gap));
        }
        records.push(record(60, "A", START));
        records
    }

    /// What the aggregators saw, `(aggregator, positions)`, and the dead letters,
    /// `(position, reason code)`.
    type Outcome = (Vec<(String, Vec<String>)>, Vec<(String, &'static str)>);

    /// Routes `records` in reads of `size`, each symbol's aggregator named by the symbol and the
    /// number of times it started.
    fn route_in_reads(records: Vec<Record>, size: usize) -> Outcome {
        let limits = SymbolLimits::new(3, Duration::from_secs(12 * 3600));
        let mut symbols = SymbolTable::new(limits);
        let mut starts = std::collections::BTreeMap::<Symbol, u32>::new();
        let (mut groups, mut dead) = (Vec::new(), Vec::new());
        let shard: ShardId = "shardId-000000000000".into();
        for (i, read) in records.chunks(size).enumerate() {
            let routed = route(
                &shard,
                read.to_vec(),
                &DecodeLimits::default(),
                &mut symbols,
                i as u64 + 1,
                |symbol| {
                    let n = starts.entry(symbol.clone()).or_default();
                    *n += 1;
                    format!("{symbol}#{n}")
                },
                4,
            );
            assert_eq!(routed.over_symbol_limit as usize, {
                let over = routed.dead_letters.iter();
                over.filter(|d| d.reason_code == SYMBOL_LIMIT).count()
            });
            for (aggregator, ticks) in routed.groups {
                let positions = ticks.iter().map(|t| t.position.to_string()).collect();
                groups.push((aggregator, positions));
            }
            for letter in routed.dead_letters {
                dead.push((letter.position.to_string(), letter.reason_code));
            }
        }
        // The groups of every read, merged per aggregator: what the aggregators see.
        let mut merged: Vec<(String, Vec<String>)> = Vec::new();
        for (aggregator, positions) in groups {
            match merged.iter_mut().find(|(a, _)| *a == aggregator) {
                Some((_, all)) => all.extend(positions),
                None => merged.push((aggregator, positions)),
            }
        }
        merged.sort();
        (merged, dead)
    }

    #[test]
    fn reads_cut_anywhere_route_and_refuse_the_same_records() {
        let whole = route_in_reads(records(), 1_000);
        let (groups, dead) = &whole;
        assert!(
            dead.iter().any(|(_, code)| *code == SYMBOL_LIMIT),
            "a symbol past the limit is refused: {dead:?}"
        );
        assert!(
            groups
                .iter()
                .any(|(aggregator, _)| aggregator.ends_with("#2")),
            "a symbol back after the gap starts afresh: {groups:?}"
        );
        for size in [1, 2, 7, 29, 31] {
            assert_eq!(route_in_reads(records(), size), whole, "reads of {size}");
        }
    }

    #[test]
    fn a_refused_record_is_dead_lettered_with_the_limit_in_its_reason() {
        let records: Vec<Record> = ["A", "B", "C", "D"]
            .iter()
            .enumerate()
            .map(|(n, s)| record(n as u64, s, START))
            .collect();
        let limits = SymbolLimits::new(3, Duration::from_secs(3600));
        let mut symbols = SymbolTable::new(limits);
        let routed = route(
            &"shardId-000000000000".into(),
            records,
            &DecodeLimits::default(),
            &mut symbols,
            1,
            |symbol| symbol.clone(),
            4,
        );
        assert_eq!(routed.groups.len(), 3);
        assert_eq!(routed.over_symbol_limit, 1);
        let letter = &routed.dead_letters[0];
        assert_eq!(
            (letter.reason_code, &*letter.partition_key),
            (SYMBOL_LIMIT, "D")
        );
        assert!(letter.reason.contains("3 symbols"), "{}", letter.reason);
        assert_eq!(
            &letter.data[..],
            br#"{"symbol":"D","price":10.5,"timestamp":1767225600000}"#
        );
    }
}
