//! The simulated symbols: well-known US listings with their real price, volatility and volume,
//! then generated codes, as many as asked for, each a fixed function of its index.

/// Well-known US listings: symbol, price (USD, around the end of 2025), annual volatility and
/// average daily volume (millions of shares), so the default market looks like the real one.
pub(super) const LISTINGS: &[(&str, f64, f64, f64)] = &[
    ("AAPL", 270.0, 0.25, 50.0),
    ("MSFT", 480.0, 0.22, 20.0),
    ("NVDA", 185.0, 0.45, 180.0),
    ("AMZN", 230.0, 0.30, 40.0),
    ("GOOGL", 310.0, 0.30, 30.0),
    ("META", 650.0, 0.35, 12.0),
    ("TSLA", 450.0, 0.60, 90.0),
    ("JPM", 320.0, 0.22, 9.0),
    ("V", 345.0, 0.18, 6.0),
    ("UNH", 330.0, 0.35, 10.0),
    ("XOM", 118.0, 0.22, 15.0),
    ("JNJ", 205.0, 0.16, 8.0),
    ("WMT", 112.0, 0.20, 18.0),
    ("MA", 570.0, 0.20, 3.0),
    ("PG", 148.0, 0.16, 7.0),
    ("AVGO", 345.0, 0.45, 25.0),
    ("HD", 350.0, 0.22, 4.0),
    ("CVX", 155.0, 0.22, 8.0),
    ("LLY", 1050.0, 0.32, 4.0),
    ("ABBV", 230.0, 0.24, 6.0),
    ("KO", 70.0, 0.15, 14.0),
    ("PEP", 150.0, 0.18, 6.0),
    ("COST", 900.0, 0.20, 2.0),
    ("MRK", 100.0, 0.24, 12.0),
    ("BAC", 54.0, 0.26, 35.0),
    ("ORCL", 200.0, 0.45, 20.0),
    ("CRM", 260.0, 0.32, 7.0),
    ("NFLX", 95.0, 0.35, 40.0),
    ("AMD", 215.0, 0.50, 45.0),
    ("ADBE", 350.0, 0.32, 3.0),
    ("TMO", 590.0, 0.24, 2.0),
    ("CSCO", 78.0, 0.22, 18.0),
    ("ACN", 265.0, 0.25, 3.0),
    ("MCD", 305.0, 0.16, 3.0),
    ("ABT", 128.0, 0.20, 6.0),
    ("DIS", 113.0, 0.25, 9.0),
    ("WFC", 93.0, 0.26, 16.0),
    ("INTC", 40.0, 0.55, 90.0),
    ("VZ", 41.0, 0.18, 18.0),
    ("CMCSA", 30.0, 0.25, 25.0),
    ("QCOM", 175.0, 0.35, 8.0),
    ("TXN", 175.0, 0.32, 6.0),
    ("IBM", 300.0, 0.25, 4.0),
    ("GS", 880.0, 0.28, 2.0),
    ("CAT", 580.0, 0.28, 3.0),
    ("BA", 215.0, 0.35, 8.0),
    ("NKE", 65.0, 0.35, 12.0),
    ("PFE", 25.0, 0.22, 35.0),
    ("T", 25.0, 0.20, 30.0),
    ("PLTR", 180.0, 0.65, 50.0),
    ("UBER", 82.0, 0.40, 18.0),
];

/// Generates `count` unique symbols: the listings first, then 3-5 letter (longer past about
/// 12 million) codes that are a fixed function of their index and skip the listed ones.
pub(super) fn symbol_names(count: usize) -> Vec<String> {
    let mut names: Vec<String> = LISTINGS
        .iter()
        .take(count)
        .map(|&(s, ..)| s.to_owned())
        .collect();
    let mut generated = 0u64;
    while names.len() < count {
        let name = generated_symbol(generated);
        generated += 1;
        if !LISTINGS.iter().any(|&(listed, ..)| listed == name) {
            names.push(name);
        }
    }
    names
}

/// The `n`th generated symbol. Each length gets a block of `26^len` names, and inside a block an
/// affine map (a bijection, as 7919 is prime to 26) scatters the letters so the codes look varied.
fn generated_symbol(mut n: u64) -> String {
    let mut len = 3u32;
    while n >= 26u64.pow(len) {
        n -= 26u64.pow(len);
        len += 1;
    }
    let block = 26u64.pow(len);
    let mut code = ((n as u128 * 7919 + 12_345) % block as u128) as u64;
    let mut letters = vec![b'A'; len as usize];
    for letter in letters.iter_mut().rev() {
        *letter = b'A' + (code % 26) as u8;
        code /= 26;
    }
    String::from_utf8(letters).expect("ASCII letters")
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::super::{MarketSimulator, SimulatorConfig};
    use super::*;

    #[test]
    fn symbols_are_unique_and_listed_first() {
        let simulator = MarketSimulator::new(SimulatorConfig {
            symbols: 30_000,
            ..SimulatorConfig::default()
        });
        let symbols = simulator.symbols();
        assert_eq!(symbols.len(), 30_000);
        assert_eq!(&symbols[..3], ["AAPL", "MSFT", "NVDA"]);
        let unique: HashSet<_> = symbols.iter().collect();
        assert_eq!(unique.len(), symbols.len());
        for symbol in &symbols[LISTINGS.len()..] {
            assert!((3..=5).contains(&symbol.len()), "{symbol}");
            assert!(symbol.bytes().all(|b| b.is_ascii_uppercase()), "{symbol}");
        }
        let few = MarketSimulator::new(SimulatorConfig {
            symbols: 3,
            ..SimulatorConfig::default()
        });
        assert_eq!(few.symbols(), ["AAPL", "MSFT", "NVDA"]);
        let partition_keys: HashSet<_> = few.take(1_000).map(|r| r.partition_key).collect();
        assert_eq!(partition_keys.len(), 3, "every symbol trades");
    }
}
