//! The indicators computed the slow, obvious way from a symbol's whole history, and how closely
//! the windows must agree with them: the reference of the window tests.

use super::{Indicators, WindowConfig};
use crate::model::tick::Tick;

/// How well-posed the deviation of a set of returns is: sum of squares over sum of squared
/// deviations. A streaming sum of squares is off by about `1e-16 * kappa` relative, where
/// the two-pass reference is not; with nearly equal returns both are rounding noise.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Conditioning {
    window: f64,
    before: f64,
    /// Root mean square of the window's returns: the scale of the noise when ill-posed.
    rms: f64,
}

/// Mean, sample deviation and conditioning, shifted by the first value so that nearly equal
/// values are subtracted exactly. Identical values have a deviation of exactly 0.
fn mean_std(xs: &[f64]) -> (f64, f64, f64) {
    let n = xs.len() as f64;
    let sum_squares = xs.iter().map(|x| x * x).sum::<f64>();
    if xs.iter().all(|x| *x == xs[0]) {
        return (xs[0], 0.0, 1.0);
    }
    let shift = xs[0];
    let mean_shifted = xs.iter().map(|x| x - shift).sum::<f64>() / n;
    let m2 = xs
        .iter()
        .map(|x| (x - shift - mean_shifted).powi(2))
        .sum::<f64>();
    (
        shift + mean_shifted,
        (m2 / (n - 1.0)).sqrt(),
        sum_squares / m2,
    )
}

/// The indicators computed the slow, obvious way from the whole history: one indicator after
/// another in a single function, as a reader checking it against the definitions reads them.
pub(super) fn reference(config: &WindowConfig, ticks: &[Tick]) -> Vec<(Indicators, Conditioning)> {
    let prices: Vec<f64> = ticks.iter().map(|t| t.price).collect();
    let volumes: Vec<Option<f64>> = ticks
        .iter()
        .map(|t| t.volume.filter(|v| v.is_finite() && *v >= 0.0))
        .collect();
    let returns: Vec<Option<f64>> = (0..ticks.len())
        .map(|i| {
            (i > 0)
                .then(|| (prices[i] / prices[i - 1]).ln())
                .filter(|r| r.is_finite())
        })
        .collect();
    let mut ends = Vec::new();
    let mut ema = None::<f64>;
    let alpha = 2.0 / (config.ema_span.max(1) as f64 + 1.0);
    let min_samples = config.min_samples.max(2);
    let span_ms = config.span.as_millis() as i64;
    let max_len = config.max_span_ticks.max(1);

    let sma = |i: usize, n: usize| {
        (n > 0 && i + 1 >= n).then(|| prices[i + 1 - n..=i].iter().sum::<f64>() / n as f64)
    };
    let mut out = Vec::new();
    for (i, t) in ticks.iter().enumerate() {
        let end = ends
            .last()
            .map_or(t.event_time_ms, |e: &i64| (*e).max(t.event_time_ms));
        ends.push(end);
        let p = prices[i];
        let e = ema.map_or(p, |e| e + alpha * (p - e));
        ema = Some(e);
        let window: Vec<usize> = (0..=i)
            .filter(|&j| ends[j] > end - span_ms.max(1) && j + max_len > i)
            .collect();
        let before = &window[..window.len() - 1];

        let positive: Vec<usize> = window
            .iter()
            .copied()
            .filter(|&j| volumes[j].is_some_and(|v| v > 0.0))
            .collect();
        let vwap = (!positive.is_empty()).then(|| {
            positive
                .iter()
                .map(|&j| prices[j] * volumes[j].unwrap())
                .sum::<f64>()
                / positive.iter().map(|&j| volumes[j].unwrap()).sum::<f64>()
        });
        let rets: Vec<f64> = window.iter().filter_map(|&j| returns[j]).collect();
        let rets_before: Vec<f64> = before.iter().filter_map(|&j| returns[j]).collect();
        let vols_before: Vec<f64> = before.iter().filter_map(|&j| volumes[j]).collect();
        let mean_volume = vols_before.iter().sum::<f64>() / vols_before.len() as f64;

        let (change, change_percent) = match t.previous_close {
            Some(c) => (Some(p - c), Some((p - c) / c * 100.0)),
            None => (t.change, t.change_percent),
        };
        let indicators = Indicators {
            sma_short: sma(i, config.sma_short),
            sma_long: sma(i, config.sma_long),
            ema: Some(e),
            vwap,
            window_high: window.iter().map(|&j| prices[j]).reduce(f64::max),
            window_low: window.iter().map(|&j| prices[j]).reduce(f64::min),
            volatility: (rets.len() >= min_samples).then(|| mean_std(&rets).1),
            log_return: returns[i],
            return_zscore: returns[i]
                .filter(|_| rets_before.len() >= min_samples)
                .and_then(|r| {
                    let (mean, sd, _) = mean_std(&rets_before);
                    (sd > 0.0).then(|| (r - mean) / sd)
                }),
            volume_ratio: volumes[i]
                .filter(|_| mean_volume > 0.0)
                .map(|v| v / mean_volume),
            change,
            change_percent,
        };
        let conditioning = Conditioning {
            window: if rets.len() >= 2 {
                mean_std(&rets).2
            } else {
                1.0
            },
            before: if rets_before.len() >= 2 {
                mean_std(&rets_before).2
            } else {
                1.0
            },
            rms: (rets.iter().map(|r| r * r).sum::<f64>() / rets.len().max(1) as f64).sqrt(),
        };
        out.push((indicators, conditioning));
    }
    out
}

pub(super) fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-3),
        _ => false,
    }
}

/// Past this conditioning the deviation is compared to its rounding noise only.
const WELL_POSED: f64 = 1e5;

pub(super) fn assert_close(
    actual: &Indicators,
    (expected, cond): &(Indicators, Conditioning),
    at: usize,
) {
    let fields = |x: &Indicators| {
        [
            ("sma_short", x.sma_short),
            ("sma_long", x.sma_long),
            ("ema", x.ema),
            ("vwap", x.vwap),
            ("window_high", x.window_high),
            ("window_low", x.window_low),
            ("volatility", x.volatility),
            ("log_return", x.log_return),
            ("return_zscore", x.return_zscore),
            ("volume_ratio", x.volume_ratio),
            ("change", x.change),
            ("change_percent", x.change_percent),
        ]
    };
    for ((name, a), (_, e)) in fields(actual).into_iter().zip(fields(expected)) {
        let ok = match name {
            "volatility" if cond.window > WELL_POSED => match (a, e) {
                (Some(a), Some(e)) => (a - e).abs() <= 1e-6 * cond.rms,
                (a, e) => a.is_none() && e.is_none(),
            },
            // Noise over noise: any finite value (or none) is as right as the reference.
            "return_zscore" if cond.before > WELL_POSED => a.is_none_or(f64::is_finite),
            _ => close(a, e),
        };
        assert!(
            ok,
            "tick {at}: {name} is {a:?}, reference {e:?} ({cond:?})\n{actual:#?}\n{expected:#?}"
        );
    }
}
