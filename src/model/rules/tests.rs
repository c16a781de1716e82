use std::time::Duration;

use super::*;
use crate::model::tick::SequenceNumber;

fn tick(symbol: &str, price: f64) -> Tick {
    Tick {
        symbol: symbol.into(),
        price,
        event_time_ms: 1_700_000_000_000,
        open: None,
        high: None,
        low: None,
        previous_close: None,
        change: None,
        change_percent: None,
        volume: None,
    }
}

fn position() -> Position {
    Position::new(
        SequenceNumber::new("49590338271490256608559692538361571095921575989136588898"),
        3,
    )
}

/// Only the rules a test switches on.
fn none() -> RuleSet {
    RuleSet {
        price_above: None,
        price_below: None,
        change_percent: None,
        return_zscore: None,
        volume_spike: None,
        trend_crossover: false,
        cooldown: Duration::ZERO,
        max_alerts_per_hour: None,
        ..RuleSet::default()
    }
}

/// Runs the rules over prices with the given indicators; returns the alerts of each tick.
fn run(rules: &RuleSet, ticks: &[(Tick, Indicators)]) -> Vec<Evaluation> {
    let mut state = RuleState::default();
    let windows = WindowConfig::default();
    ticks
        .iter()
        .map(|(t, i)| evaluate(rules, &windows, &mut state, t, i, &position()))
        .collect()
}

fn kinds(evaluations: &[Evaluation]) -> Vec<Vec<AlertKind>> {
    evaluations
        .iter()
        .map(|e| e.alerts.iter().map(|a| a.kind).collect())
        .collect()
}

fn prices(symbol: &str, prices: &[f64]) -> Vec<(Tick, Indicators)> {
    prices
        .iter()
        .map(|&p| (tick(symbol, p), Indicators::default()))
        .collect()
}

#[test]
fn defaults() {
    let d = RuleSet::default();
    assert_eq!((d.price_above, d.price_below), (None, None));
    assert_eq!(d.change_percent, Some(5.0));
    assert_eq!(d.return_zscore, Some(4.0));
    assert_eq!(d.volume_spike, Some(15.0));
    assert!(d.trend_crossover);
    assert_eq!(d.trend_bar, Duration::from_secs(60));
    assert_eq!((d.trend_short_bars, d.trend_long_bars), (5, 20));
    assert_eq!(d.max_alerts_per_hour, Some(4));
}

#[test]
fn names_are_snake_case() {
    assert_eq!(AlertKind::PriceAbove.as_str(), "price_above");
    assert_eq!(AlertKind::ReturnZscore.as_str(), "return_zscore");
    assert_eq!(AlertKind::TrendDown.as_str(), "trend_down");
    assert_eq!(Severity::Critical.as_str(), "critical");
    assert_eq!(Trend::Up.as_str(), "up");
    for kind in [
        AlertKind::ChangePercent,
        AlertKind::VolumeSpike,
        AlertKind::TrendUp,
    ] {
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
    }
}

#[test]
fn overrides_merge_over_defaults() {
    let config: RuleConfig = serde_json::from_str(
        r#"{"default": {"change-percent": 3, "price-below": 10},
            "symbols": {"AAPL": {"price-above": 200, "trend-crossover": false}}}"#,
    )
    .unwrap();
    let aapl = config.for_symbol("AAPL");
    assert_eq!(aapl.price_above, Some(200.0));
    assert_eq!(aapl.price_below, Some(10.0));
    assert_eq!(aapl.change_percent, Some(3.0));
    assert_eq!(aapl.return_zscore, Some(4.0));
    assert!(!aapl.trend_crossover);
    assert_eq!(config.for_symbol("MSFT"), config.default);
    let typo = serde_json::from_str::<RuleConfig>(r#"{"symbols": {"A": {"price-abve": 1}}}"#);
    assert!(typo.is_err());
    let typo = serde_json::from_str::<RuleConfig>(r#"{"default": {"change-prcent": 1}}"#);
    assert!(typo.is_err());
}

#[test]
fn cooldown_quiets_a_rule_per_symbol_in_event_time_and_survives_a_snapshot() {
    let rules = RuleSet {
        return_zscore: Some(3.0),
        volume_spike: Some(2.0),
        cooldown: Duration::from_secs(60),
        ..none()
    };
    let windows = WindowConfig::default();
    let at = |seconds: i64| {
        let mut t = tick("AAPL", 100.0);
        t.event_time_ms += seconds * 1000;
        let indicators = Indicators {
            return_zscore: Some(5.0),
            volume_ratio: (seconds == 30).then_some(4.0),
            ..Indicators::default()
        };
        (t, indicators)
    };
    let mut state = RuleState::default();
    let fired = |state: &mut RuleState, seconds| {
        let (t, i) = at(seconds);
        let e = evaluate(&rules, &windows, state, &t, &i, &position());
        assert!(
            e.anomaly,
            "the tick is an anomaly even when its alert is quiet"
        );
        e.alerts.iter().map(|a| a.kind).collect::<Vec<_>>()
    };
    assert_eq!(fired(&mut state, 0), [AlertKind::ReturnZscore]);
    assert_eq!(fired(&mut state, 59), []);
    // Another rule of the same symbol has its own cooldown.
    assert_eq!(fired(&mut state, 30), [AlertKind::VolumeSpike]);
    let json = serde_json::to_string(&state).unwrap();
    let mut restored: RuleState = serde_json::from_str(&json).unwrap();
    assert_eq!(fired(&mut restored, 59), []);
    assert_eq!(fired(&mut restored, 60), [AlertKind::ReturnZscore]);
}

#[test]
fn price_above_alerts_on_crossing_only() {
    let rules = RuleSet {
        price_above: Some(412.75),
        ..none()
    };
    let e = run(
        &rules,
        &prices("AAPL", &[413.1, 414.0, 412.75, 413.0, 412.0, 412.8]),
    );
    use AlertKind::PriceAbove as A;
    // First tick above counts; staying above does not; from exactly the level it does.
    assert_eq!(
        kinds(&e),
        [vec![A], vec![], vec![], vec![A], vec![], vec![A]]
    );
    let alert = &e[0].alerts[0];
    assert_eq!(
        alert.message,
        "AAPL price crossed threshold 412.75 (now 413.10)"
    );
    assert_eq!(alert.severity, Severity::Warning);
    assert_eq!(
        (alert.value, alert.threshold, alert.price),
        (413.1, 412.75, 413.1)
    );
    assert!(e[0].anomaly && !e[1].anomaly);
}

#[test]
fn price_below_alerts_on_crossing_only() {
    let rules = RuleSet {
        price_below: Some(100.0),
        ..none()
    };
    let e = run(&rules, &prices("AAPL", &[101.0, 99.5, 99.0, 100.0, 99.9]));
    use AlertKind::PriceBelow as B;
    assert_eq!(kinds(&e), [vec![], vec![B], vec![], vec![], vec![B]]);
    assert_eq!(
        e[1].alerts[0].message,
        "AAPL price crossed below threshold 100.00 (now 99.50)"
    );
    // No previous price: being below counts as crossing.
    assert_eq!(kinds(&run(&rules, &prices("AAPL", &[98.0]))), [vec![B]]);
}

#[test]
fn change_percent_is_edge_triggered() {
    let rules = RuleSet {
        change_percent: Some(5.0),
        ..none()
    };
    let with = |percent: Option<f64>| {
        let indicators = Indicators {
            change_percent: percent,
            ..Indicators::default()
        };
        (tick("MSFT", 400.0), indicators)
    };
    let e = run(
        &rules,
        &[
            with(Some(-6.21)),
            with(Some(-7.0)),
            with(None),
            with(Some(-6.0)),
            with(Some(5.0)),
            with(Some(11.0)),
            with(Some(12.0)),
        ],
    );
    use AlertKind::ChangePercent as C;
    assert_eq!(
        kinds(&e),
        [vec![C], vec![], vec![], vec![], vec![], vec![C], vec![]]
    );
    assert_eq!(
        e[0].alerts[0].message,
        "MSFT change vs previous close -6.21% (threshold 5%)"
    );
    assert_eq!(e[0].alerts[0].severity, Severity::Warning);
    assert_eq!(e[5].alerts[0].severity, Severity::Critical);
}

#[test]
fn zscore_alerts_every_spike() {
    let rules = RuleSet {
        return_zscore: Some(4.0),
        ..none()
    };
    let with = |z: f64| {
        let indicators = Indicators {
            return_zscore: Some(z),
            ..Indicators::default()
        };
        (tick("NVDA", 120.0), indicators)
    };
    let e = run(&rules, &[with(5.3), with(5.3), with(-9.0), with(4.0)]);
    use AlertKind::ReturnZscore as Z;
    assert_eq!(kinds(&e), [vec![Z], vec![Z], vec![Z], vec![]]);
    assert_eq!(
        e[0].alerts[0].message,
        "NVDA return z-score 5.3 (threshold 4)"
    );
    assert_eq!(e[0].alerts[0].severity, Severity::Warning);
    assert_eq!(e[2].alerts[0].severity, Severity::Critical);
}

#[test]
fn a_zscore_outlier_must_also_move_the_price() {
    let rules = RuleSet {
        return_zscore: Some(4.0),
        ..RuleSet::default()
    };
    let with = |log_return: f64| {
        let indicators = Indicators {
            return_zscore: Some(8.0),
            log_return: Some(log_return),
            ..Indicators::default()
        };
        (tick("T", 24.0), indicators)
    };
    // One cent on a $24 name that rarely moves: many deviations, 0.04 %: no news.
    let cent = (24.01f64 / 24.0).ln();
    let e = run(&rules, &[with(cent)]);
    assert!(e[0].alerts.is_empty() && !e[0].anomaly, "{e:?}");
    // A 0.5 % step is.
    let e = run(&rules, &[with(-0.005)]);
    assert_eq!(kinds(&e), [vec![AlertKind::ReturnZscore]]);
}

#[test]
fn volume_spike_names_the_span() {
    let rules = RuleSet {
        volume_spike: Some(5.0),
        ..none()
    };
    let with = |ratio: f64| {
        let indicators = Indicators {
            volume_ratio: Some(ratio),
            ..Indicators::default()
        };
        (tick("TSLA", 250.0), indicators)
    };
    let e = run(&rules, &[with(25.0), with(7.0), with(5.0)]);
    assert_eq!(
        e[0].alerts[0].message,
        "TSLA volume 25.0x the 5m average (threshold 5x)"
    );
    assert_eq!(e[0].alerts[0].severity, Severity::Warning);
    assert_eq!(e[1].alerts[0].severity, Severity::Info);
    assert!(e[2].alerts.is_empty());

    let mut state = RuleState::default();
    let windows = WindowConfig {
        span: Duration::from_secs(90),
        ..WindowConfig::default()
    };
    let (t, i) = with(6.0);
    let e = evaluate(&rules, &windows, &mut state, &t, &i, &position());
    assert_eq!(
        e.alerts[0].message,
        "TSLA volume 6.0x the 1m 30s average (threshold 5x)"
    );
}

/// One tick a minute for AAPL at each price (each tick closes the previous minute's bar).
fn minutes(prices: &[f64]) -> Vec<(Tick, Indicators)> {
    prices
        .iter()
        .enumerate()
        .map(|(i, &price)| {
            let mut tick = tick("AAPL", price);
            tick.event_time_ms += i as i64 * 60_000;
            (tick, Indicators::default())
        })
        .collect()
}

#[test]
fn trend_alerts_when_a_bar_close_turns_a_known_trend() {
    let rules = RuleSet {
        trend_crossover: true,
        trend_short_bars: 2,
        trend_long_bars: 4,
        trend_band_percent: 1.0,
        ..none()
    };
    let e = run(
        &rules,
        &minutes(&[100.0, 100.0, 104.0, 104.0, 99.0, 97.0, 97.0]),
    );
    use Trend::{Down, Up};
    let trends: Vec<_> = e.iter().map(|e| e.trend).collect();
    // Bar 3's close (at tick 4) sets the first trend, which is not a change; bar 4's close
    // stays within the band; bar 5's turns it down.
    assert_eq!(
        trends,
        [None, None, None, None, Some(Up), Some(Up), Some(Down)]
    );
    let alerts: Vec<_> = e.iter().flat_map(|e| &e.alerts).collect();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, AlertKind::TrendDown);
    assert_eq!(alerts[0].event_time_ms, 1_700_000_000_000 + 6 * 60_000);
    assert_eq!(
        alerts[0].message,
        "AAPL trend down: 2-bar average 98.00 moved below the 4-bar average 101.00 (1m bars)"
    );
    assert_eq!(alerts[0].severity, Severity::Info);
    // A trend change is not an anomaly.
    assert!(!e[6].anomaly);

    // Switched off: the trend is still reported and tracked, without alerts.
    let quiet = run(
        &RuleSet {
            trend_crossover: false,
            ..rules.clone()
        },
        &minutes(&[100.0, 100.0, 104.0, 104.0, 99.0, 97.0, 97.0]),
    );
    assert!(quiet.iter().all(|e| e.alerts.is_empty()));
    assert_eq!(quiet[6].trend, Some(Down));
}

#[test]
fn tick_averages_crossing_on_noise_raise_no_trend_alert() {
    let rules = RuleSet {
        trend_crossover: true,
        ..none()
    };
    // The tick SMAs cross back and forth within one bar: the trend rule only reads bar closes.
    let noisy: Vec<_> = (0..200)
        .map(|i| {
            let up = i % 2 == 0;
            let indicators = Indicators {
                sma_short: Some(if up { 101.0 } else { 99.0 }),
                sma_long: Some(100.0),
                ..Indicators::default()
            };
            let mut tick = tick("AAPL", 100.0);
            tick.event_time_ms += i * 100;
            (tick, indicators)
        })
        .collect();
    assert!(run(&rules, &noisy).iter().all(|e| e.alerts.is_empty()));
}

#[test]
fn the_hourly_budget_holds_alerts_beyond_it_and_says_which() {
    let rules = RuleSet {
        price_above: Some(10.0),
        max_alerts_per_hour: Some(2),
        ..none()
    };
    // Four crossings within the hour, then one in the next hour.
    let mut ticks = prices("AAPL", &[11.0, 9.0, 11.0, 9.0, 11.0, 9.0, 11.0, 9.0]);
    let mut next_hour = tick("AAPL", 11.0);
    next_hour.event_time_ms += 3_600_000;
    ticks.push((next_hour, Indicators::default()));
    let e = run(&rules, &ticks);
    let sent: Vec<usize> = e.iter().map(|e| e.alerts.len()).collect();
    assert_eq!(sent, [1, 0, 1, 0, 0, 0, 0, 0, 1]);
    let held: Vec<bool> = e
        .iter()
        .map(|e| e.held.contains(AlertKind::PriceAbove))
        .collect();
    assert_eq!(
        held,
        [false, false, false, false, true, false, true, false, false]
    );
    assert_eq!(e[4].held.to_text().as_deref(), Some("price_above"));
}

#[test]
fn alert_ids_are_deterministic() {
    let rules = RuleSet {
        price_above: Some(1.0),
        return_zscore: Some(1.0),
        ..none()
    };
    let indicators = Indicators {
        return_zscore: Some(2.0),
        ..Indicators::default()
    };
    let first = run(&rules, &[(tick("AAPL", 2.0), indicators)]);
    let again = run(&rules, &[(tick("AAPL", 2.0), indicators)]);
    assert_eq!(first, again);
    let ids: Vec<_> = first[0].alerts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "AAPL-price_above-1700000000000-49590338271490256608559692538361571095921575989136588898.3",
            "AAPL-return_zscore-1700000000000-49590338271490256608559692538361571095921575989136588898.3",
        ]
    );
}

#[test]
fn state_survives_a_snapshot() {
    let rules = RuleSet {
        price_above: Some(10.0),
        change_percent: Some(5.0),
        ..RuleSet::default()
    };
    let mut state = RuleState::default();
    let indicators = Indicators {
        change_percent: Some(6.0),
        sma_short: Some(2.0),
        sma_long: Some(1.0),
        ..Indicators::default()
    };
    let windows = WindowConfig::default();
    evaluate(
        &rules,
        &windows,
        &mut state,
        &tick("X", 10.1),
        &indicators,
        &position(),
    );
    let restored: RuleState =
        serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
    assert_eq!(restored, state);
    let again = evaluate(
        &rules,
        &windows,
        &mut state.clone(),
        &tick("X", 10.2),
        &indicators,
        &position(),
    );
    assert!(again.alerts.is_empty(), "{again:?}");
}
