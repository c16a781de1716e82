//! When a shard's barriers fall: every `checkpoint.interval` or `checkpoint.max-records`, the
//! first one earlier by a share that differs between shards.

/// Records before a shard's first barrier: `max_records` shortened by a fraction set by the
/// shard's number. Evenly loaded shards would otherwise reach every record-count barrier
/// together, and the lake would encode all their files, and the checkpointer snapshot all their
/// windows, at the same moment, with every shard's rows held meanwhile. Golden-ratio steps
/// spread any run of shard numbers evenly; ids without a number take a hash.
pub(super) fn first_barrier_after(shard_id: &str, max_records: u64) -> u64 {
    const GOLDEN_FRACTION: f64 = 0.618_033_988_749_895;
    let digits = shard_id.trim_start_matches(|c: char| !c.is_ascii_digit());
    let number = digits.parse::<u64>().unwrap_or_else(|_| {
        // FNV-1a: fixed, so a shard's barriers fall in the same places on every run.
        shard_id.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
    });
    let fraction = (number as f64 * GOLDEN_FRACTION).fract();
    let shortened = max_records - (max_records as f64 * fraction) as u64;
    shortened.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_reach_their_first_barrier_apart() {
        let firsts: Vec<u64> = (0..4)
            .map(|n| first_barrier_after(&format!("shardId-{n:012}"), 20_000))
            .collect();
        assert_eq!(firsts[0], 20_000);
        let mut sorted = firsts.clone();
        sorted.sort_unstable();
        for pair in sorted.windows(2) {
            assert!(pair[1] - pair[0] >= 2_000, "{firsts:?}");
        }
        assert!(firsts.iter().all(|&n| (1..=20_000).contains(&n)));
        // Any id works, and always gives the same answer.
        let odd = first_barrier_after("local-shard", 20_000);
        assert_eq!(odd, first_barrier_after("local-shard", 20_000));
        assert!((1..=20_000).contains(&odd));
        assert_eq!(first_barrier_after("shardId-000000000007", 1), 1);
    }
}
