//! The count windows: the last prices of a symbol and the running sums of the short and long
//! simple moving averages over them.

use serde::{Deserialize, Serialize};

use crate::model::exact_float as exact;

/// The last `max(sma_short, sma_long)` prices and the running sums of both SMAs.
///
/// Plain sums suffice here: they are recomputed from the prices at every wrap of the ring, so
/// their error never exceeds a few dozen roundings of the largest price in the ring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct PriceRing {
    /// Grows to capacity, then is overwritten in place at `pos`.
    #[serde(with = "exact::vec")]
    pub(super) buf: Vec<f64>,
    /// Where the next price goes.
    pub(super) pos: usize,
    #[serde(with = "exact")]
    pub(super) short: f64,
    #[serde(with = "exact")]
    pub(super) long: f64,
}

impl PriceRing {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity.min(4096)),
            pos: 0,
            short: 0.0,
            long: 0.0,
        }
    }

    /// Adds a price; returns the short and long SMAs including it.
    pub(super) fn push(
        &mut self,
        price: f64,
        short: usize,
        long: usize,
    ) -> (Option<f64>, Option<f64>) {
        let cap = short.max(long);
        if cap == 0 {
            return (None, None);
        }
        let len = self.buf.len();
        // The price `n` places back leaves the n-window (correct while filling too: pos == len).
        // No `%`: an integer division would cost more than the rest of the ring together.
        let pos = self.pos;
        let back = |n: usize| self.buf[if pos >= n { pos - n } else { pos + cap - n }];
        if short > 0 {
            if len >= short {
                self.short -= back(short);
            }
            self.short += price;
        }
        if long > 0 {
            if len >= long {
                self.long -= back(long);
            }
            self.long += price;
        }
        if self.pos == len {
            self.buf.push(price);
        } else {
            self.buf[self.pos] = price;
        }
        self.pos += 1;
        if self.pos == cap {
            self.pos = 0;
            // Every stored price has been replaced once: start the sums afresh (O(1) amortized).
            let tail = |n: usize| self.buf[cap - n.min(cap)..].iter().sum::<f64>();
            self.short = tail(short);
            self.long = tail(long);
        }
        let len = self.buf.len();
        let sma = |n: usize, sum: f64| (n > 0 && len >= n).then(|| sum / n as f64);
        (sma(short, self.short), sma(long, self.long))
    }
}
