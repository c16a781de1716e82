//! One read, decoded and validated: each symbol's ticks in one group, for its aggregator, and
//! the records that are not ticks as dead letters with their reason.

use foldhash::HashMap;

use crate::actors::symbol_aggregator::PendingTick;
use crate::model::dead_letter::DeadLetter;
use crate::model::decode::{DecodeLimits, decode_tick};
use crate::model::tick::Symbol;
use crate::stream::{Record, ShardId};

pub(super) struct Routed {
    pub groups: Vec<(Symbol, Vec<PendingTick>)>,
    pub dead_letters: Vec<DeadLetter>,
    /// Ticks whose record's partition key is not their symbol.
    pub keyed_otherwise: u64,
}

/// Routes `records` by symbol; a group starts with room for `group_capacity` ticks.
pub(super) fn route(
    shard_id: &ShardId,
    records: Vec<Record>,
    limits: &DecodeLimits,
    group_capacity: usize,
) -> Routed {
    let mut group_of: HashMap<Symbol, u32> = HashMap::default();
    let mut groups: Vec<(Symbol, Vec<PendingTick>)> = Vec::new();
    let mut dead_letters = Vec::new();
    let mut keyed_otherwise = 0;
    for record in records {
        match decode_tick(&record.data, limits) {
            Ok(tick) => {
                let group = match group_of.get(&tick.symbol) {
                    Some(&group) => group,
                    None => {
                        let group = groups.len() as u32;
                        group_of.insert(tick.symbol.clone(), group);
                        groups.push((tick.symbol.clone(), Vec::with_capacity(group_capacity)));
                        group
                    }
                };
                let partition_key =
                    (record.partition_key != tick.symbol.as_str()).then_some(record.partition_key);
                keyed_otherwise += u64::from(partition_key.is_some());
                groups[group as usize].1.push(PendingTick {
                    tick,
                    position: record.position,
                    arrival_time_ms: record.arrival_time_ms,
                    partition_key,
                });
            }
            Err(rejection) => dead_letters.push(DeadLetter {
                shard_id: shard_id.clone(),
                position: record.position,
                partition_key: record.partition_key,
                arrival_time_ms: record.arrival_time_ms,
                reason_code: rejection.code(),
                reason: rejection.to_string(),
                data: record.data,
            }),
        }
    }
    Routed {
        groups,
        dead_letters,
        keyed_otherwise,
    }
}
