//! Weighted random choice in constant time, for picking the symbol of the next tick.

/// Walker's alias method (Vose's construction): a weighted pick from one uniform draw in constant
/// time, where a binary search over cumulative weights would take a step per doubling of the
/// symbols, on every tick.
#[derive(Debug, Clone)]
pub(super) struct AliasTable {
    /// Chance of keeping slot `i` rather than taking its alias.
    keep: Vec<f64>,
    alias: Vec<u32>,
}

impl AliasTable {
    pub(super) fn new(weights: &[f64]) -> Self {
        let n = weights.len();
        let total: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut keep = vec![1.0; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < 1.0);
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            keep[s] = scaled[s];
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // What is left is 1 up to rounding: those slots keep themselves (already set).
        Self { keep, alias }
    }

    /// The slot for a uniform draw in `[0, 1)`.
    pub(super) fn pick(&self, uniform: f64) -> usize {
        let scaled = uniform * self.keep.len() as f64;
        let slot = (scaled as usize).min(self.keep.len() - 1);
        if scaled - (slot as f64) < self.keep[slot] {
            slot
        } else {
            self.alias[slot] as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_table_picks_by_weight() {
        let weights = [1.0, 0.0, 3.0, 6.0];
        let table = AliasTable::new(&weights);
        let mut counts = [0usize; 4];
        let draws = 100_000;
        for i in 0..draws {
            counts[table.pick((i as f64 + 0.5) / draws as f64)] += 1;
        }
        // Evenly spread draws hit every slot in exact proportion, up to the slot edges.
        for (count, weight) in counts.iter().zip(weights) {
            let expected = weight / 10.0 * draws as f64;
            assert!((*count as f64 - expected).abs() <= 2.0, "{counts:?}");
        }
    }
}
