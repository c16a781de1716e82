//! Which symbols a shard keeps state for, so that a flood of distinct symbols (a producer bug)
//! cannot exhaust memory or bloat checkpoints: at most `symbols.max-per-shard` of them, and none
//! that has had no tick for `symbols.evict-after` of event time.
//!
//! In: each tick's symbol and event time, in stream order, and the symbols a checkpoint (or a
//! reshard's parents) left. Out: per tick, whether its symbol's state goes on, starts afresh, or
//! the record is dead-lettered ([`SYMBOL_LIMIT`]); and the symbols evicted on the way, whose
//! state the caller drops.
//!
//! Every decision is a function of the record sequence and of what a checkpoint holds, so a
//! replay from a checkpoint decides exactly as the first run did, however its reads are cut:
//! - The shard's *clock* is the newest event time of the ticks it kept. The symbol that set it is
//!   never idle, so it is always in the checkpoint, and a restored table finds the same clock as
//!   the newest of its symbols' last event times; nothing else needs storing.
//! - At each record, a symbol is *idle* when its newest tick is more than `evict-after` older than
//!   the clock or the record's event time, whichever is newer.
//! - A tick of a kept symbol that is not idle goes on with its state. Any other tick first evicts
//!   every idle symbol (its own old state too), then starts its symbol afresh if fewer than
//!   `max-per-shard` symbols remain, and is refused otherwise.
//! - Decided per record, never per read. The clock never goes back, so a symbol idle against it
//!   stays idle until its next tick, which starts it afresh whether or not it was evicted yet:
//!   [`SymbolTable::evict_idle`], run where a checkpoint barrier falls (wherever a read ends),
//!   drops such symbols from the snapshot without changing any later decision.
//!
//! A record's check is the symbol lookup routing needs anyway; evicting pops a heap of last
//! event times, so a flood of refused records costs a heap peek each.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use foldhash::HashMap;

use super::tick::Symbol;

/// Reason code of a record dead-lettered because its shard keeps no room for its symbol.
pub const SYMBOL_LIMIT: &str = "symbol_limit";

/// The two settings (`symbols.max-per-shard`, `symbols.evict-after`) as the table uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolLimits {
    /// Most symbols a shard keeps state for.
    pub max_per_shard: usize,
    /// Event time, in milliseconds, after which a symbol without a tick is idle.
    pub evict_after_ms: i64,
}

impl SymbolLimits {
    pub fn new(max_per_shard: usize, evict_after: Duration) -> Self {
        Self {
            max_per_shard,
            evict_after_ms: i64::try_from(evict_after.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// The human reason of a record refused for its symbol.
    pub fn refusal(&self) -> String {
        let idle = humantime::format_duration(Duration::from_millis(
            self.evict_after_ms.try_into().unwrap_or(0),
        ));
        format!(
            "the shard keeps state for {} symbols (symbols.max-per-shard), none of them without a \
             tick for {idle} of event time (symbols.evict-after)",
            self.max_per_shard
        )
    }
}

impl Default for SymbolLimits {
    fn default() -> Self {
        Self::new(10_000, Duration::from_secs(24 * 3600))
    }
}

/// What the table makes of one tick.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission<'a, V> {
    /// The symbol is kept and its state goes on: its value.
    Kept(&'a mut V),
    /// The symbol starts afresh (new, or back after being idle): the value just made for it.
    Started(&'a mut V),
    /// The shard keeps `max-per-shard` symbols and none is idle: the record is dead-lettered.
    Refused,
}

#[derive(Debug)]
struct Entry<V> {
    symbol: Symbol,
    /// Newest event time of the symbol's ticks since it (re)started.
    last_event_ms: i64,
    value: V,
}

/// The symbols a shard keeps, each with a value of the caller's (the reader keeps the symbol's
/// aggregator there) and its newest event time.
#[derive(Debug)]
pub struct SymbolTable<V> {
    limits: SymbolLimits,
    index: HashMap<Symbol, usize>,
    /// Entries by slot; a free slot is `None` and listed in `free`.
    slots: Vec<Option<Entry<V>>>,
    free: Vec<usize>,
    /// One `(event time, slot)` per kept symbol, the time at or before its newest: the oldest on
    /// top, checked against the slot when it comes up.
    by_age: BinaryHeap<Reverse<(i64, usize)>>,
    /// The clock: the newest event time of a kept tick.
    clock: Option<i64>,
}

impl<V> SymbolTable<V> {
    pub fn new(limits: SymbolLimits) -> Self {
        Self {
            limits,
            index: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            by_age: BinaryHeap::new(),
            clock: None,
        }
    }

    pub fn limits(&self) -> &SymbolLimits {
        &self.limits
    }

    /// Symbols kept (idle ones not yet evicted included).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The clock: the newest event time of a kept tick.
    pub fn clock(&self) -> Option<i64> {
        self.clock
    }

    pub fn get(&self, symbol: &str) -> Option<&V> {
        let slot = *self.index.get(symbol)?;
        self.slots[slot].as_ref().map(|entry| &entry.value)
    }

    /// Every kept symbol with its value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Symbol, &V)> {
        self.slots
            .iter()
            .flatten()
            .map(|entry| (&entry.symbol, &entry.value))
    }

    /// Takes a symbol as a checkpoint or a reshard's parent left it, with the newest event time
    /// of its ticks (`None`: it has none, and is idle at once). No limit applies: a merged
    /// shard may start with more symbols than the limit, and takes new ones once enough are
    /// evicted. A symbol restored twice keeps the later value.
    pub fn restore(&mut self, symbol: Symbol, last_event_ms: Option<i64>, value: V) {
        let last_event_ms = last_event_ms.unwrap_or(i64::MIN);
        if let Some(&slot) = self.index.get(&symbol) {
            self.release(slot);
        }
        if last_event_ms != i64::MIN {
            self.clock = Some(self.clock.map_or(last_event_ms, |c| c.max(last_event_ms)));
        }
        self.insert(symbol, last_event_ms, value);
    }

    /// Decides one tick of `symbol` at `event_time_ms`; `start` makes the value of a symbol that
    /// starts afresh. Symbols evicted on the way are appended to `evicted`.
    pub fn admit(
        &mut self,
        symbol: &str,
        event_time_ms: i64,
        evicted: &mut Vec<(Symbol, V)>,
        start: impl FnOnce() -> V,
    ) -> Admission<'_, V> {
        let now = self.clock.map_or(event_time_ms, |c| c.max(event_time_ms));
        let idle_before = now.saturating_sub(self.limits.evict_after_ms);
        if let Some(&slot) = self.index.get(symbol) {
            let last = self.slots[slot].as_ref().map(|entry| entry.last_event_ms);
            if last.is_some_and(|last| last >= idle_before) {
                let entry = self.slots[slot].as_mut().expect("an indexed slot is taken");
                entry.last_event_ms = entry.last_event_ms.max(event_time_ms);
                self.clock = Some(now);
                return Admission::Kept(&mut entry.value);
            }
        }
        if self.limits.max_per_shard == 0 {
            return Admission::Refused;
        }
        self.evict_before(idle_before, evicted);
        if self.index.len() >= self.limits.max_per_shard {
            return Admission::Refused;
        }
        // Nothing idle is left, so the symbol that set the clock is kept: the clock stays the
        // newest last event time of the kept symbols.
        self.clock = Some(now);
        let slot = self.insert(symbol.into(), event_time_ms, start());
        let entry = self.slots[slot].as_mut().expect("just inserted");
        Admission::Started(&mut entry.value)
    }

    /// Evicts every symbol idle against the clock alone (no record): what a snapshot leaves out.
    /// Changes no later decision (see the module documentation).
    pub fn evict_idle(&mut self, evicted: &mut Vec<(Symbol, V)>) {
        if let Some(clock) = self.clock {
            self.evict_before(clock.saturating_sub(self.limits.evict_after_ms), evicted);
        }
    }

    /// Evicts every symbol whose newest tick is before `idle_before`.
    fn evict_before(&mut self, idle_before: i64, evicted: &mut Vec<(Symbol, V)>) {
        while let Some(&Reverse((time, slot))) = self.by_age.peek() {
            if time >= idle_before {
                break;
            }
            self.by_age.pop();
            let last = self.slots[slot]
                .as_ref()
                .expect("a slot in the heap is taken")
                .last_event_ms;
            if last >= idle_before {
                // It had ticks since it was queued: queued again at its newest.
                self.by_age.push(Reverse((last, slot)));
            } else {
                let entry = self.slots[slot]
                    .take()
                    .expect("a slot in the heap is taken");
                self.index.remove(&entry.symbol);
                self.free.push(slot);
                evicted.push((entry.symbol, entry.value));
            }
        }
    }

    fn insert(&mut self, symbol: Symbol, last_event_ms: i64, value: V) -> usize {
        let entry = Entry {
            symbol: symbol.clone(),
            last_event_ms,
            value,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(entry);
                slot
            }
            None => {
                self.slots.push(Some(entry));
                self.slots.len() - 1
            }
        };
        self.index.insert(symbol, slot);
        self.by_age.push(Reverse((last_event_ms, slot)));
        slot
    }

    /// Frees a slot outside of eviction (a symbol restored twice): its heap entry goes too.
    fn release(&mut self, slot: usize) {
        if let Some(entry) = self.slots[slot].take() {
            self.index.remove(&entry.symbol);
        }
        self.by_age.retain(|&Reverse((_, s))| s != slot);
        self.free.push(slot);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    const HOUR: i64 = 3_600_000;

    fn limits(max_per_shard: usize, evict_after_ms: i64) -> SymbolLimits {
        SymbolLimits {
            max_per_shard,
            evict_after_ms,
        }
    }

    /// What happened to one tick: kept, started afresh or refused, and the symbols evicted on
    /// the way (sorted: the order of eviction is not part of the decision).
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Step {
        outcome: &'static str,
        evicted: Vec<String>,
    }

    /// The value a table keeps per symbol in these tests: how many ticks it had since it
    /// (re)started, so a restart shows.
    fn step(table: &mut SymbolTable<u32>, symbol: &str, time: i64) -> Step {
        let mut evicted = Vec::new();
        let outcome = match table.admit(symbol, time, &mut evicted, || 0) {
            Admission::Kept(n) => {
                *n += 1;
                "kept"
            }
            Admission::Started(n) => {
                *n += 1;
                "started"
            }
            Admission::Refused => "refused",
        };
        let mut evicted: Vec<String> = evicted.into_iter().map(|(s, _)| s.into()).collect();
        evicted.sort();
        Step { outcome, evicted }
    }

    fn run(table: &mut SymbolTable<u32>, ticks: &[(&str, i64)]) -> Vec<&'static str> {
        ticks
            .iter()
            .map(|&(symbol, time)| step(table, symbol, time).outcome)
            .collect()
    }

    #[test]
    fn symbols_past_the_limit_are_refused_until_one_is_idle() {
        let mut table = SymbolTable::new(limits(2, 10 * HOUR));
        let outcomes = run(
            &mut table,
            &[("A", 0), ("B", HOUR), ("C", 2 * HOUR), ("A", 3 * HOUR)],
        );
        assert_eq!(outcomes, ["started", "started", "refused", "kept"]);
        assert_eq!(table.len(), 2);
        // B's last tick is now over 10 hours behind: C takes its place.
        let step = step(&mut table, "C", 11 * HOUR + 1);
        assert_eq!(step.outcome, "started");
        assert_eq!(step.evicted, ["B"]);
        assert_eq!(table.get("A"), Some(&2));
        assert_eq!(table.get("B"), None);
    }

    #[test]
    fn a_symbol_back_after_being_idle_starts_afresh() {
        let mut table = SymbolTable::new(limits(10, 10 * HOUR));
        run(&mut table, &[("A", 0), ("A", HOUR), ("B", 5 * HOUR)]);
        assert_eq!(table.get("A"), Some(&2));
        // A's own tick moves the clock 11 hours past A's last: A had no tick for 10 hours.
        let step = step(&mut table, "A", 11 * HOUR + 1);
        assert_eq!(step.outcome, "started");
        assert_eq!(step.evicted, ["A"]);
        assert_eq!(table.get("A"), Some(&1), "a fresh state");
        assert_eq!(
            table.get("B"),
            Some(&1),
            "B is within 10 hours of the clock"
        );
    }

    #[test]
    fn late_ticks_neither_move_the_clock_back_nor_restart_a_kept_symbol() {
        let mut table = SymbolTable::new(limits(10, 10 * HOUR));
        run(&mut table, &[("A", 20 * HOUR), ("B", 15 * HOUR)]);
        assert_eq!(table.clock(), Some(20 * HOUR));
        assert_eq!(run(&mut table, &[("B", 12 * HOUR)]), ["kept"]);
        assert_eq!(table.clock(), Some(20 * HOUR));
        // A tick older than the idle line starts its symbol afresh, and is idle at once.
        assert_eq!(run(&mut table, &[("C", 9 * HOUR)]), ["started"]);
        assert_eq!(step(&mut table, "D", 20 * HOUR).evicted, ["C"]);
    }

    #[test]
    fn a_limit_of_zero_refuses_every_new_symbol() {
        let mut table = SymbolTable::new(limits(0, HOUR));
        table.restore("A".into(), Some(0), 0);
        assert_eq!(run(&mut table, &[("B", 0), ("A", 1)]), ["refused", "kept"]);
    }

    #[test]
    fn a_restored_table_is_over_the_limit_until_enough_symbols_are_evicted() {
        let mut table = SymbolTable::new(limits(2, 10 * HOUR));
        for (i, symbol) in ["A", "B", "C", "D"].into_iter().enumerate() {
            table.restore(symbol.into(), Some(i as i64 * HOUR), 0);
        }
        assert_eq!(table.clock(), Some(3 * HOUR));
        assert_eq!(
            run(&mut table, &[("E", 3 * HOUR), ("A", 4 * HOUR)]),
            ["refused", "kept"]
        );
        // At 12.5 h, A (4 h) stays, B and C go: A and D are still two.
        let step_e = step(&mut table, "E", 12 * HOUR + HOUR / 2);
        assert_eq!(step_e.outcome, "refused");
        assert_eq!(step_e.evicted, ["B", "C"]);
        // At 13.5 h, D (3 h) goes too, which leaves room.
        let step_e = step(&mut table, "E", 13 * HOUR + HOUR / 2);
        assert_eq!(
            (step_e.outcome, step_e.evicted),
            ("started", vec!["D".to_owned()])
        );
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn refusal_names_the_settings() {
        let reason = SymbolLimits::new(10_000, Duration::from_secs(24 * 3600)).refusal();
        assert!(
            reason.contains("10000 symbols (symbols.max-per-shard)"),
            "{reason}"
        );
        assert!(reason.contains("1day"), "{reason}");
        assert!(reason.contains("symbols.evict-after"), "{reason}");
    }

    /// The rules of the module documentation, stated plainly: a scan of every symbol per record.
    struct Reference {
        limits: SymbolLimits,
        kept: BTreeMap<String, (i64, u32)>,
    }

    impl Reference {
        fn clock(&self) -> Option<i64> {
            self.kept.values().map(|&(last, _)| last).max()
        }

        fn step(&mut self, symbol: &str, time: i64) -> Step {
            let now = self.clock().map_or(time, |c| c.max(time));
            let idle_before = now.saturating_sub(self.limits.evict_after_ms);
            if let Some((last, n)) = self.kept.get_mut(symbol)
                && *last >= idle_before
            {
                *last = (*last).max(time);
                *n += 1;
                return Step {
                    outcome: "kept",
                    evicted: Vec::new(),
                };
            }
            if self.limits.max_per_shard == 0 {
                return Step {
                    outcome: "refused",
                    evicted: Vec::new(),
                };
            }
            let evicted: Vec<String> = self
                .kept
                .iter()
                .filter(|(_, (last, _))| *last < idle_before)
                .map(|(s, _)| s.clone())
                .collect();
            for symbol in &evicted {
                self.kept.remove(symbol);
            }
            let outcome = if self.kept.len() < self.limits.max_per_shard {
                self.kept.insert(symbol.to_owned(), (time, 1));
                "started"
            } else {
                "refused"
            };
            Step { outcome, evicted }
        }
    }

    /// Ticks over a few symbols: times mostly rising with jitter, sometimes late, now and then a
    /// jump of hours.
    fn ticks() -> impl Strategy<Value = Vec<(String, i64)>> {
        let step = (
            0..12usize,
            prop_oneof![
                6 => 0..HOUR,
                2 => -3 * HOUR..0,
                1 => 5 * HOUR..30 * HOUR,
            ],
        );
        prop::collection::vec(step, 1..300).prop_map(|steps| {
            let mut time = 0;
            steps
                .into_iter()
                .map(|(symbol, delta)| {
                    time += delta;
                    (format!("S{symbol}"), time)
                })
                .collect()
        })
    }

    fn limits_strategy() -> impl Strategy<Value = SymbolLimits> {
        (0..8usize, prop_oneof![Just(0), HOUR..20 * HOUR]).prop_map(|(max, ms)| limits(max, ms))
    }

    /// The snapshot a checkpoint takes: idle symbols evicted, then each symbol's newest time.
    fn checkpoint(table: &mut SymbolTable<u32>) -> Vec<(Symbol, i64, u32)> {
        table.evict_idle(&mut Vec::new());
        let mut kept: Vec<(Symbol, i64, u32)> = table
            .index
            .iter()
            .map(|(symbol, &slot)| {
                let entry = table.slots[slot].as_ref().unwrap();
                (symbol.clone(), entry.last_event_ms, entry.value)
            })
            .collect();
        kept.sort();
        kept
    }

    proptest! {
        /// The table decides as the plain statement of the rules does.
        #[test]
        fn decides_as_the_reference(limits in limits_strategy(), ticks in ticks()) {
            let mut table = SymbolTable::new(limits);
            let mut reference = Reference { limits, kept: BTreeMap::new() };
            for (symbol, time) in &ticks {
                let expected = reference.step(symbol, *time);
                prop_assert_eq!(step(&mut table, symbol, *time), expected);
                prop_assert_eq!(table.clock(), reference.clock());
                prop_assert_eq!(table.len(), reference.kept.len());
                for (symbol, &(_, n)) in &reference.kept {
                    prop_assert_eq!(table.get(symbol), Some(&n));
                }
            }
        }

        /// A run stopped at a checkpoint and restored from it decides every later record as the
        /// run that went on, whatever idle symbols either evicted early (at barriers that fall
        /// where reads happen to end).
        #[test]
        fn a_restored_table_decides_as_the_one_that_went_on(
            limits in limits_strategy(),
            ticks in ticks(),
            cut in any::<prop::sample::Index>(),
            sweeps in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
        ) {
            let cut = cut.index(ticks.len() + 1);
            let sweeps: Vec<usize> = sweeps.iter().map(|s| s.index(ticks.len() + 1)).collect();
            let mut unsplit = SymbolTable::new(limits);
            let mut first = SymbolTable::new(limits);
            let mut unsplit_steps = Vec::new();
            let mut split_steps = Vec::new();
            for (i, (symbol, time)) in ticks[..cut].iter().enumerate() {
                if sweeps.contains(&i) {
                    first.evict_idle(&mut Vec::new());
                }
                unsplit_steps.push(step(&mut unsplit, symbol, *time).outcome);
                split_steps.push(step(&mut first, symbol, *time).outcome);
            }
            let mut resumed = SymbolTable::new(limits);
            for (symbol, last, n) in checkpoint(&mut first) {
                resumed.restore(symbol, Some(last), n);
            }
            prop_assert_eq!(resumed.clock(), first.clock());
            for (symbol, time) in &ticks[cut..] {
                unsplit_steps.push(step(&mut unsplit, symbol, *time).outcome);
                split_steps.push(step(&mut resumed, symbol, *time).outcome);
            }
            prop_assert_eq!(&split_steps, &unsplit_steps);
            prop_assert_eq!(checkpoint(&mut resumed), checkpoint(&mut unsplit));
        }
    }

    #[test]
    fn a_flood_of_distinct_symbols_keeps_the_limit() {
        let mut table = SymbolTable::new(SymbolLimits::default());
        let mut refused = 0;
        for i in 0..200_000 {
            let symbol = format!("FLOOD{i}");
            if step(&mut table, &symbol, i).outcome == "refused" {
                refused += 1;
            }
        }
        assert_eq!(refused, 190_000);
        assert_eq!(table.len(), 10_000);
        assert_eq!(table.by_age.len(), 10_000);
    }
}
