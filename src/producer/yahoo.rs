//! `kinetick produce --source yahoo`: real quotes, polled from Yahoo Finance's chart endpoint
//! (what the common Python producers reach through yfinance), one tick per symbol whenever its
//! quote time moves on.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{Producer, ProducerError, RecordSink, SeedTick, Stats};

pub const DEFAULT_QUOTE_URL: &str = "https://query1.finance.yahoo.com";

#[derive(Debug, Clone)]
pub struct YahooRun {
    pub symbols: Vec<String>,
    /// Base URL of the quote service (a local server in tests).
    pub quote_url: String,
    pub interval: Duration,
    /// Stop after this many ticks…
    pub count: Option<u64>,
    /// …or after this long; neither: until Ctrl-C.
    pub duration: Option<Duration>,
    pub progress: bool,
}

#[derive(Debug, Deserialize)]
struct ChartResponse {
    chart: Chart,
}

#[derive(Debug, Deserialize)]
struct Chart {
    result: Option<Vec<ChartResult>>,
    error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct ChartResult {
    meta: Meta,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    symbol: String,
    regular_market_price: f64,
    /// Epoch seconds of the quote.
    regular_market_time: i64,
    chart_previous_close: Option<f64>,
    previous_close: Option<f64>,
    regular_market_day_high: Option<f64>,
    regular_market_day_low: Option<f64>,
    regular_market_volume: Option<f64>,
}

/// The tick in a chart response, with its quote time (epoch s).
fn parse_quote(body: &[u8]) -> Result<(i64, SeedTick), String> {
    let response: ChartResponse =
        serde_json::from_slice(body).map_err(|e| format!("unexpected response: {e}"))?;
    if let Some(error) = response.chart.error.filter(|e| !e.is_null()) {
        return Err(format!("quote service error: {error}"));
    }
    let meta = response
        .chart
        .result
        .and_then(|r| r.into_iter().next())
        .ok_or("no result in the response")?
        .meta;
    let time = chrono::DateTime::from_timestamp(meta.regular_market_time, 0)
        .ok_or("quote time out of range")?;
    let tick = SeedTick {
        symbol: meta.symbol,
        open: None,
        high: meta.regular_market_day_high,
        low: meta.regular_market_day_low,
        price: meta.regular_market_price,
        previous_close: None,
        change: None,
        change_percent: None,
        volume: meta.regular_market_volume,
        timestamp: time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
    .with_previous_close(meta.chart_previous_close.or(meta.previous_close));
    Ok((meta.regular_market_time, tick))
}

async fn fetch(
    client: &reqwest::Client,
    base: &str,
    symbol: &str,
) -> Result<(i64, SeedTick), String> {
    let url = format!("{}/v8/finance/chart/{symbol}", base.trim_end_matches('/'));
    let response = client
        .get(&url)
        .query(&[("interval", "1m"), ("range", "1d")])
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{url}: HTTP {status}"));
    }
    parse_quote(&body)
}

pub async fn produce(
    run: YahooRun,
    sink: Arc<dyn RecordSink>,
) -> (Stats, Result<(), ProducerError>) {
    let client = reqwest::Client::builder()
        // The endpoint turns away clients that do not look like a browser.
        .user_agent("Mozilla/5.0 (compatible; kinetick)")
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let mut producer = Producer::new(sink, run.count, run.progress);
    let interrupted = super::simulated::interrupt_flag();
    let deadline = run.duration.map(|d| Instant::now() + d);
    let mut last_seen: HashMap<String, i64> = HashMap::new();
    let mut produced = 0u64;
    let mut ticker = tokio::time::interval(run.interval);
    let mut result = Ok(());
    'polling: loop {
        ticker.tick().await;
        for symbol in &run.symbols {
            if interrupted.load(Ordering::Relaxed)
                || run.count.is_some_and(|count| produced >= count)
                || deadline.is_some_and(|d| Instant::now() >= d)
            {
                break 'polling;
            }
            match fetch(&client, &run.quote_url, symbol).await {
                // Only a quote newer than the last one is a new tick.
                Ok((time, tick)) if last_seen.get(symbol).is_none_or(|seen| *seen < time) => {
                    last_seen.insert(symbol.clone(), time);
                    producer.push(tick.record());
                    produced += 1;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%symbol, %error, "Quote not fetched."),
            }
        }
        if let Err(error) = producer.send_while_above(1).await {
            result = Err(error);
            break;
        }
    }
    let (stats, finished) = producer.finish().await;
    (stats, result.and(finished))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_response_becomes_a_tick() {
        let body = br#"{"chart":{"result":[{"meta":{"currency":"USD","symbol":"AAPL",
            "regularMarketPrice":229.87,"regularMarketTime":1732300800,"chartPreviousClose":228.52,
            "regularMarketDayHigh":230.72,"regularMarketDayLow":228.06,"regularMarketVolume":38168300},
            "timestamp":[1732300740],"indicators":{"quote":[{"close":[229.8]}]}}],"error":null}}"#;
        let (time, tick) = parse_quote(body).unwrap();
        assert_eq!(time, 1732300800);
        assert_eq!(tick.symbol, "AAPL");
        assert_eq!(tick.previous_close, Some(228.52));
        assert_eq!(tick.change, Some(1.35));
        assert_eq!(tick.timestamp, "2024-11-22T18:40:00.000Z");
    }

    #[test]
    fn an_error_response_is_an_error() {
        let body = br#"{"chart":{"result":null,"error":{"code":"Not Found","description":"No data found, symbol may be delisted"}}}"#;
        assert!(parse_quote(body).unwrap_err().contains("Not Found"));
    }
}
