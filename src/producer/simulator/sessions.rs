//! Trading sessions in event time: the simulator's clock counts trading time only, and a session
//! of 6.5 hours opens every weekday (holidays are not modelled) at the time of day the
//! simulation starts.

use crate::model::calendar::{MS_PER_DAY, weekday};

/// One trading session (09:30-16:00 New York), in ms of event time.
pub(super) const SESSION_MS: f64 = 23_400_000.0;

/// Maps the trading clock (ms of trading time since the start) to event time, skipping nights
/// and weekends.
#[derive(Debug, Clone)]
pub(super) struct Sessions {
    session: u64,
    session_open_ms: i64,
}

impl Sessions {
    /// Sessions of which the first opens at `start_ms` (epoch ms).
    pub(super) fn new(start_ms: i64) -> Self {
        Self {
            session: 0,
            session_open_ms: start_ms,
        }
    }

    /// The session and the event time (epoch ms) of a trading-clock instant. The clock never
    /// goes back, so sessions are only ever walked forwards.
    pub(super) fn event_time(&mut self, clock_ms: f64) -> (u64, i64) {
        let session = (clock_ms / SESSION_MS) as u64;
        while self.session < session {
            self.session_open_ms += MS_PER_DAY;
            while is_weekend(self.session_open_ms) {
                self.session_open_ms += MS_PER_DAY;
            }
            self.session += 1;
        }
        let into_session = clock_ms - session as f64 * SESSION_MS;
        (session, self.session_open_ms + into_session as i64)
    }
}

fn is_weekend(epoch_ms: i64) -> bool {
    weekday(epoch_ms.div_euclid(MS_PER_DAY)) >= 5
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::super::SimulatorConfig;
    use super::*;
    use crate::producer::simulator::tests::{event_ms, parse, records};

    #[test]
    fn sessions_skip_nights_and_weekends() {
        // One tick a minute for 100 symbols: several trading days.
        let config = SimulatorConfig {
            tick_interval_ms: 60_000.0,
            malformed_rate: 0.0,
            ..SimulatorConfig::default()
        };
        let mut last: HashMap<String, (i64, f64)> = HashMap::new();
        let mut days = HashSet::new();
        for record in records(config, 5_000) {
            let quote = parse(&record).unwrap();
            let time = event_ms(&quote);
            let of_day = time.rem_euclid(MS_PER_DAY);
            assert!(
                (52_200_000..75_600_000).contains(&of_day),
                "14:30 to 21:00 UTC"
            );
            assert!(!is_weekend(time));
            let day = time.div_euclid(MS_PER_DAY);
            days.insert(day);
            let price = quote["price"].as_f64().unwrap();
            if let Some((last_day, last_price)) =
                last.insert(record.partition_key.to_string(), (day, price))
                && last_day != day
            {
                assert_eq!(quote["previous_close"].as_f64().unwrap(), last_price);
                assert_eq!(quote["open"].as_f64().unwrap(), price);
            }
        }
        // 5000 minutes of trading is 12.8 sessions: past two weekends.
        assert_eq!(days.len(), 13);
    }
}
