//! The producer commands against the AWS emulator: `kinetick produce` and `kinetick replay`
//! through the real binary, read back with GetRecords; partial `PutRecords` failures retried
//! without loss, duplicates or reordering per symbol; live quotes from a local quote server.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output};
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_kinesis::types::ShardIteratorType;
use common::fault_proxy::FaultProxy;
use kinetick::producer::batch::Outgoing;
use kinetick::producer::{KinesisSink, Producer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A record as read back: shard, partition key and the decoded JSON.
type ReadRecord = (String, String, serde_json::Value);

async fn stream(config: &SdkConfig, shards: i32) -> String {
    let name = common::unique("produce");
    aws_sdk_kinesis::Client::new(config)
        .create_stream()
        .stream_name(&name)
        .shard_count(shards)
        .send()
        .await
        .unwrap();
    name
}

/// Every record of every shard, in shard order.
async fn read_back(config: &SdkConfig, stream: &str) -> Vec<ReadRecord> {
    let kinesis = aws_sdk_kinesis::Client::new(config);
    let shards = kinesis
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .unwrap();
    let mut records = Vec::new();
    for shard in shards.shards() {
        let mut iterator = kinesis
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator;
        while let Some(current) = iterator {
            let output = kinesis
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .unwrap();
            if output.records().is_empty() {
                break;
            }
            for record in output.records() {
                let json = serde_json::from_slice(record.data().as_ref()).unwrap();
                records.push((
                    shard.shard_id().to_owned(),
                    record.partition_key().to_owned(),
                    json,
                ));
            }
            iterator = output.next_shard_iterator;
        }
    }
    records
}

fn kinetick(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kinetick"))
        .args(args)
        .envs(common::aws_env())
        .output()
        .expect("kinetick runs")
}

/// Each symbol in one shard, its records in the order they were produced (timestamps never go
/// back; the simulator may give two ticks of a symbol the same millisecond).
fn assert_per_symbol_order(records: &[ReadRecord]) {
    let mut shard_of: BTreeMap<&str, &str> = BTreeMap::new();
    let mut last_time: BTreeMap<&str, String> = BTreeMap::new();
    for (shard, key, json) in records {
        assert_eq!(
            json["symbol"].as_str(),
            Some(key.as_str()),
            "partition key = symbol"
        );
        assert_eq!(
            *shard_of.entry(key).or_insert(shard),
            shard.as_str(),
            "{key} in one shard"
        );
        let time = json["timestamp"].as_str().unwrap().to_owned();
        if let Some(previous) = last_time.insert(key, time.clone()) {
            assert!(previous <= time, "{key}: {previous} then {time}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn produce_writes_every_tick_once_keyed_and_ordered_by_symbol() {
    let config = common::sdk_config();
    let name = stream(&config, 4).await;
    let output = kinetick(&[
        "produce",
        "--stream",
        &name,
        "--count",
        "3000",
        "--rate",
        "0",
        "--symbols",
        "40",
        "--no-progress",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains("sent      3000 records"), "{summary}");

    let records = read_back(&config, &name).await;
    assert_eq!(records.len(), 3000);
    let shards: BTreeSet<_> = records.iter().map(|(shard, _, _)| shard).collect();
    assert_eq!(shards.len(), 4, "40 symbols spread over every shard");
    assert_per_symbol_order(&records);
    for (_, _, json) in &records {
        for field in [
            "open",
            "high",
            "low",
            "price",
            "previous_close",
            "change",
            "change_percent",
            "volume",
        ] {
            assert!(json[field].is_number(), "{field} in {json}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn partial_put_failures_are_retried_without_loss_duplicates_or_reordering() {
    let config = common::sdk_config();
    let name = stream(&config, 2).await;
    let proxy = FaultProxy::start(&common::endpoint()).await;
    proxy.fail_put_records_entries(3, 3);
    let client = aws_sdk_kinesis::Client::new(&common::sdk_config_at(&proxy.url));
    let mut producer = Producer::new(Arc::new(KinesisSink::new(client, &name)), None, false);
    let mut sent = Vec::new();
    for n in 0..30 {
        for symbol in ["AAPL", "MSFT", "IBM", "NVDA", "AMZN"] {
            let tick = serde_json::json!({
                "symbol": symbol, "price": 100.0 + n as f64,
                "timestamp": format!("2026-01-05T14:30:{n:02}Z"),
            });
            sent.push(tick.clone());
            producer.push(Outgoing {
                partition_key: symbol.into(),
                data: serde_json::to_vec(&tick).unwrap().into(),
            });
        }
    }
    let (stats, result) = producer.finish().await;
    result.unwrap();
    assert_eq!(stats.sent, 150);
    assert!(
        stats.retried >= 3,
        "entries were failed and sent again: {stats:?}"
    );
    assert!(proxy.requests("PutRecords") > 30);

    let records = read_back(&config, &name).await;
    let read: BTreeSet<String> = records.iter().map(|(_, _, j)| j.to_string()).collect();
    assert_eq!(records.len(), 150, "nothing lost or doubled");
    assert_eq!(read, sent.iter().map(|j| j.to_string()).collect());
    assert_per_symbol_order(&records);
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_sends_the_csv_rows_as_ticks_and_reports_bad_lines() {
    let config = common::sdk_config();
    let name = stream(&config, 2).await;
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/replay");

    let strict = kinetick(&[
        "replay",
        data,
        "--stream",
        &name,
        "--strict",
        "--no-progress",
    ]);
    assert!(
        !strict.status.success(),
        "--strict refuses a file with a bad line"
    );
    assert!(
        read_back(&config, &name).await.is_empty(),
        "--strict sends nothing"
    );

    let output = kinetick(&["replay", data, "--stream", &name, "--no-progress"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("AAPL.csv:11: "),
        "the null row is reported: {stderr}"
    );
    let records = read_back(&config, &name).await;
    assert_eq!(records.len(), 10 + 6);
    assert_per_symbol_order(&records);

    let by_tick: BTreeMap<(String, String), serde_json::Value> = records
        .into_iter()
        .map(|(_, key, json)| ((key, json["timestamp"].as_str().unwrap().to_owned()), json))
        .collect();
    let aapl = &by_tick[&("AAPL".to_owned(), "2024-01-03T00:00:00.000Z".to_owned())];
    assert_eq!(aapl["price"], 184.25);
    assert_eq!(aapl["previous_close"], 185.639999);
    assert_eq!(aapl["change"], -1.39);
    assert_eq!(aapl["volume"], 58414500.0);
    let msft = &by_tick[&("MSFT".to_owned(), "2024-01-03T14:31:00.000Z".to_owned())];
    assert_eq!(
        msft["previous_close"], 370.87,
        "the previous day's last price"
    );
    let first = &by_tick[&("AAPL".to_owned(), "2024-01-02T00:00:00.000Z".to_owned())];
    assert!(first.get("previous_close").is_none());
}

/// Serves every request with a recorded chart response for the symbol in its path.
async fn quote_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut served = 0i64;
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = vec![0u8; 4096];
            let n = socket.read(&mut buffer).await.unwrap();
            let request = String::from_utf8_lossy(&buffer[..n]).into_owned();
            let symbol = request
                .split("/v8/finance/chart/")
                .nth(1)
                .and_then(|rest| rest.split(['?', ' ']).next())
                .unwrap_or("UNKNOWN")
                .to_owned();
            served += 1;
            let body = serde_json::json!({"chart": {"result": [{"meta": {
                "currency": "USD", "symbol": symbol, "exchangeName": "NMS",
                "regularMarketPrice": 200.0 + served as f64, "regularMarketTime": 1_732_300_800 + served * 60,
                "chartPreviousClose": 199.5, "regularMarketDayHigh": 230.0,
                "regularMarketDayLow": 190.0, "regularMarketVolume": 1_000_000 + served,
            }, "timestamp": [1_732_300_740], "indicators": {"quote": [{"close": [200.0]}]}}],
            "error": null}})
            .to_string();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn live_quotes_are_polled_into_the_stream() {
    let config = common::sdk_config();
    let name = stream(&config, 1).await;
    let quotes = quote_server().await;
    let target = name.clone();
    let output = tokio::task::spawn_blocking(move || {
        kinetick(&[
            "produce",
            "--source",
            "yahoo",
            "--symbols",
            "AAPL,MSFT",
            "--interval",
            "200ms",
            "--count",
            "4",
            "--quote-url",
            &quotes,
            "--stream",
            &target,
            "--no-progress",
        ])
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let records = read_back(&config, &name).await;
    let symbols: Vec<&str> = records.iter().map(|(_, key, _)| key.as_str()).collect();
    assert_eq!(symbols.len(), 4);
    assert_eq!(symbols.iter().filter(|s| **s == "AAPL").count(), 2);
    for (_, _, json) in &records {
        assert_eq!(json["previous_close"], 199.5);
        assert!(json["price"].as_f64().unwrap() > 200.0);
        assert!(
            json["timestamp"]
                .as_str()
                .unwrap()
                .starts_with("2024-11-22T")
        );
    }
}
