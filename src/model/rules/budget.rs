//! Alert budgets. A symbol's: at most `max-alerts-per-hour` alerts in each clock hour of event
//! time; alerts beyond it are held: not sent, but counted (`AlertsHeld`) and kept with their tick
//! in the lake, so the digest can say what the budget held back. In event time and in the
//! snapshot, so a replay holds the same alerts. And a task's: at most `alerts.max-per-minute`
//! alerts of each minute of event time over all its symbols ([`MinuteCap`], kept by the
//! alerter), the last guard against a flood of mail.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;
/// Minutes behind the newest one whose counts a cap keeps: shards run a little apart in event
/// time, and an alert of a minute forgotten counts anew.
const CAP_MINUTES_KEPT: i64 = 60;

/// Alerts sent in the current hour of one symbol.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HourBudget {
    /// Start of the hour the count is for, epoch ms.
    hour_ms: i64,
    sent: u32,
}

impl HourBudget {
    pub fn is_unused(&self) -> bool {
        self.sent == 0
    }

    /// True when an alert at `event_time_ms` fits in the budget of `max` an hour (and counts
    /// it); always true without a budget. An alert of an hour already past counts against the
    /// current one.
    pub fn admit(&mut self, max: Option<u32>, event_time_ms: i64) -> bool {
        let Some(max) = max else {
            return true;
        };
        let hour = event_time_ms.div_euclid(HOUR_MS) * HOUR_MS;
        if hour > self.hour_ms {
            self.hour_ms = hour;
            self.sent = 0;
        }
        if self.sent >= max {
            return false;
        }
        self.sent += 1;
        true
    }
}

/// At most `max` alerts of each minute of event time (the alerts' own times, so a backlog read
/// after an outage sends what it would have sent live, not one burst's worth).
#[derive(Debug, Clone)]
pub struct MinuteCap {
    max: u32,
    sent: BTreeMap<i64, u32>,
}

impl MinuteCap {
    pub fn new(max: u32) -> Self {
        Self {
            max,
            sent: BTreeMap::new(),
        }
    }

    /// True when an alert at `event_time_ms` fits in its minute's cap (and counts it).
    pub fn admit(&mut self, event_time_ms: i64) -> bool {
        let minute = event_time_ms.div_euclid(MINUTE_MS);
        let sent = self.sent.entry(minute).or_default();
        let admitted = *sent < self.max;
        *sent += u32::from(admitted);
        if let Some((&newest, _)) = self.sent.last_key_value() {
            self.sent = self.sent.split_off(&(newest - CAP_MINUTES_KEPT));
        }
        admitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_an_hour_and_a_new_hour_starts_afresh() {
        let mut budget = HourBudget::default();
        let at = |minute: i64| 1_700_000_000_000 / HOUR_MS * HOUR_MS + minute * 60_000;
        let admitted: Vec<bool> = [0, 1, 2, 59].map(|m| budget.admit(Some(2), at(m))).into();
        assert_eq!(admitted, [true, true, false, false]);
        assert!(budget.admit(Some(2), at(60)));
        // Late: counts against the current hour, which has one left.
        assert!(budget.admit(Some(2), at(10)));
        assert!(!budget.admit(Some(2), at(61)));
        // No budget: every alert goes.
        assert!((0..100).all(|m| HourBudget::default().admit(None, at(m))));
    }

    #[test]
    fn a_cap_per_minute_of_event_time_whatever_the_order() {
        let mut cap = MinuteCap::new(2);
        let at = |minute: i64, second: i64| minute * MINUTE_MS + second * 1_000;
        let admitted: Vec<bool> = [at(5, 0), at(5, 1), at(6, 0), at(5, 59), at(6, 1), at(6, 2)]
            .map(|t| cap.admit(t))
            .into();
        assert_eq!(admitted, [true, true, true, false, true, false]);
        // Minutes long past are forgotten: memory stays bounded.
        cap.admit(at(1_000, 0));
        assert_eq!(cap.sent.len(), 1);
    }
}
