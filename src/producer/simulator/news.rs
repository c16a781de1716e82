//! News: a symbol's rare price jumps. They arrive as a Poisson process in trading time, move the
//! price 2-8 % up or down (with a volume spike, drawn by the instrument), are partly retraced over
//! the following minutes, and are pulled back toward the session's anchor, so that news on news
//! cannot compound a symbol far away within one session.
//!
//! In: the trading clock and the session at each of the symbol's ticks. Out: the factor that news
//! puts on the diffused price, and whether news broke at this tick.

use std::f64::consts::LN_2;
use std::ops::Range;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1};

use super::sessions::SESSION_MS;

/// Size of one news move, as a share of the price: the size of the moves that make the day's
/// movers lists on news (guidance, rating changes, deals), short of rare earnings shocks.
const JUMP_SIZE: Range<f64> = 0.02..0.08;
/// Share of a news move given back afterwards: prices overshoot on news, then settle.
const RETRACED_SHARE: Range<f64> = 0.2..0.5;
/// Half-life of the retracement, in ms of trading time (15 minutes).
const RETRACE_HALF_LIFE_MS: f64 = 900_000.0;
/// Log move that the news of one session keeps (once retraced) at which further news stops
/// moving the price away from the session's anchor. Below it, news goes back toward the anchor
/// the more often the further the session's news has taken the price.
const SESSION_NEWS_BOUND: f64 = 0.08;

/// What is left to retrace below this (log) counts as retraced, so that a symbol's ticks stop
/// paying for the decay.
const RETRACED_IN_FULL: f64 = 1e-7;

/// One symbol's news.
#[derive(Debug, Clone)]
pub(super) struct News {
    /// Expected news per ms of trading time.
    rate_per_ms: f64,
    /// Trading clock of the next news, ms.
    next_ms: f64,
    /// Log offset of the price from all news so far.
    offset: f64,
    /// `exp(offset)`, the factor news puts on the diffused price, kept so that a tick computes
    /// no exponential unless news moves.
    pub(super) factor: f64,
    /// The part of `offset` still being retraced; decays to 0.
    fading: f64,
    /// Log move that the current session's news keeps once retraced; it biases the direction of
    /// further news.
    session_kept: f64,
    /// The session `session_kept` belongs to.
    session: Option<u64>,
}

impl News {
    /// News at `per_session` expected items per trading session.
    pub(super) fn new(rng: &mut ChaCha8Rng, per_session: f64) -> Self {
        let rate_per_ms = per_session / SESSION_MS;
        let mut news = Self {
            rate_per_ms,
            next_ms: 0.0,
            offset: 0.0,
            factor: 1.0,
            fading: 0.0,
            session_kept: 0.0,
            session: None,
        };
        news.next_ms = news.wait(rng);
        news
    }

    /// Trading time to the next news, ms: exponential, so that news is a Poisson process.
    fn wait(&self, rng: &mut ChaCha8Rng) -> f64 {
        if self.rate_per_ms > 0.0 {
            let draw: f64 = Exp1.sample(rng);
            draw / self.rate_per_ms
        } else {
            f64::INFINITY
        }
    }

    /// Moves to the trading clock's `clock_ms`, `dt` ms after the symbol's last tick, in
    /// `session`: retraces, then applies the news that broke since the last tick. Returns
    /// whether any did.
    pub(super) fn advance(
        &mut self,
        rng: &mut ChaCha8Rng,
        clock_ms: f64,
        dt: f64,
        session: u64,
    ) -> bool {
        if self.session != Some(session) {
            // The previous close holds what earlier news kept: the new session's anchor.
            self.session = Some(session);
            self.session_kept = 0.0;
        }
        let moved = self.fading != 0.0;
        if moved {
            let mut fading = self.fading * (-dt * LN_2 / RETRACE_HALF_LIFE_MS).exp();
            if fading.abs() < RETRACED_IN_FULL {
                fading = 0.0;
            }
            self.offset += fading - self.fading;
            self.fading = fading;
        }
        let mut broke = false;
        while clock_ms >= self.next_ms {
            self.jump(rng);
            self.next_ms += self.wait(rng);
            broke = true;
        }
        if moved || broke {
            self.factor = self.offset.exp();
        }
        broke
    }

    fn jump(&mut self, rng: &mut ChaCha8Rng) {
        let size = rng.random_range(JUMP_SIZE);
        // Even odds at the anchor; past the bound, news only brings the price back.
        let up_chance = (0.5 - 0.5 * self.session_kept / SESSION_NEWS_BOUND).clamp(0.0, 1.0);
        let jump = if rng.random_bool(up_chance) {
            size.ln_1p()
        } else {
            (-size).ln_1p()
        };
        let retraced = rng.random_range(RETRACED_SHARE) * jump;
        self.offset += jump;
        self.fading += retraced;
        self.session_kept += jump - retraced;
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    /// A tick every `tick_ms` through `sessions` sessions: at each tick its session, the news
    /// offset and whether news broke.
    fn path(per_session: f64, sessions: u64, tick_ms: f64, seed: u64) -> Vec<(u64, f64, bool)> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut news = News::new(&mut rng, per_session);
        let ticks_per_session = (SESSION_MS / tick_ms) as u64;
        (1..=sessions * ticks_per_session)
            .map(|tick| {
                let session = (tick - 1) / ticks_per_session;
                let broke = news.advance(&mut rng, tick as f64 * tick_ms, tick_ms, session);
                (session, news.offset, broke)
            })
            .collect()
    }

    /// The moves of the ticks where news broke.
    fn jumps(path: &[(u64, f64, bool)]) -> impl Iterator<Item = f64> + '_ {
        path.windows(2)
            .filter(|w| w[1].2)
            .map(|w| (w[1].1 - w[0].1).exp() - 1.0)
    }

    #[test]
    fn news_is_rare() {
        // A month of sessions (21) for 200 symbols at one news a month: about 200 items.
        let count: usize = (0..200)
            .map(|seed| jumps(&path(0.05, 21, 60_000.0, seed)).count())
            .sum();
        assert!((160..=240).contains(&count), "{count} news");
    }

    #[test]
    fn news_is_sized_like_news() {
        let mut moves = Vec::new();
        for seed in 0..40 {
            moves.extend(jumps(&path(1.0, 3, 1_000.0, seed)));
        }
        assert!(moves.len() > 80, "{} news", moves.len());
        for size in &moves {
            // A second of retracement of earlier news is far below a basis point.
            assert!(
                (0.0199..0.0801).contains(&size.abs()),
                "a news move of {size}"
            );
        }
        let up = moves.iter().filter(|&&m| m > 0.0).count();
        assert!(
            (0.35..0.65).contains(&(up as f64 / moves.len() as f64)),
            "{up} of {} up",
            moves.len()
        );
    }

    #[test]
    fn news_is_partly_retraced() {
        let path = path(0.05, 60, 1_000.0, 3);
        let at = path.iter().position(|p| p.2).expect("news in 60 sessions");
        let before = path[at - 1].1;
        let jump = path[at].1 - before;
        // An hour later (four half-lives), 20-50 % of it is given back but for the sixteenth
        // still to go.
        let given_back = 1.0 - (path[at + 3_600].1 - before) / jump;
        assert!(
            (0.2 * 15.0 / 16.0 - 1e-9..0.5).contains(&given_back),
            "{given_back} of {jump} given back"
        );
    }

    #[test]
    fn news_on_news_stays_near_the_anchor() {
        // Ten news a session: a compounding walk of such moves would stray 17 % (one standard
        // deviation) from the anchor by the close.
        let mut count = 0;
        let mut widest: f64 = 0.0;
        for seed in 0..50 {
            let path = path(10.0, 3, 10_000.0, seed);
            count += path.iter().filter(|p| p.2).count();
            // The anchor of a session is where the previous one closed.
            let (mut anchor, mut last) = ((0, 0.0), 0.0);
            for &(session, offset, _) in &path {
                if session != anchor.0 {
                    anchor = (session, last);
                }
                widest = widest.max((offset - anchor.1).abs());
                last = offset;
            }
        }
        assert!(count > 1_000, "{count} news");
        // The kept part stops within one item past the bound (0.14); what is still being
        // retraced adds a little.
        let limit = SESSION_NEWS_BOUND + JUMP_SIZE.end + 0.04;
        assert!(widest < limit, "{widest} away from the anchor");
    }
}
