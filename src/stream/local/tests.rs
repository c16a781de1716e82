use std::collections::HashMap;

use tokio::time::Instant;

use super::*;
use crate::stream::{ReadBatch, RetentionGap};

fn record(key: &str, n: usize) -> (String, Bytes) {
    (key.to_owned(), Bytes::from(format!("{key}-{n}")))
}

async fn cursor(stream: &LocalStream, shard: usize, start: StartPosition) -> Box<dyn ShardCursor> {
    let id = stream.list_shards().await.unwrap()[shard].id.clone();
    stream.open_shard(&id, start).await.unwrap()
}

/// Reads a closed shard to its end.
async fn drain(cursor: &mut dyn ShardCursor) -> Vec<Record> {
    let mut records = Vec::new();
    loop {
        let batch = cursor.next_batch().await.unwrap();
        records.extend(batch.records);
        if batch.shard_end {
            return records;
        }
    }
}

fn data(records: &[Record]) -> Vec<&[u8]> {
    records.iter().map(|r| r.data.as_ref()).collect()
}

#[test]
fn hash_ranges_split_like_kinesis() {
    let stream = LocalStream::new(3, 10);
    // The ranges CreateStream gives a 3-shard stream.
    assert_eq!(
        stream.hash_key_range(0),
        (0, 113_427_455_640_312_821_154_458_202_477_256_070_484)
    );
    assert_eq!(
        stream.hash_key_range(1).0,
        113_427_455_640_312_821_154_458_202_477_256_070_485
    );
    assert_eq!(stream.hash_key_range(2).1, u128::MAX);
    let two = LocalStream::new(2, 10);
    assert_eq!(two.hash_key_range(1), (1 << 127, u128::MAX));
    assert_eq!(LocalStream::new(1, 10).hash_key_range(0), (0, u128::MAX));
}

#[test]
fn keys_go_to_the_shard_whose_range_holds_their_md5() {
    let stream = LocalStream::new(4, 10);
    let mut used = HashMap::new();
    for n in 0..200 {
        let key = format!("KEY{n}");
        let hash = partition_key_hash(&key);
        let index = stream.shard_index(&key);
        let (first, last) = stream.hash_key_range(index);
        assert!((first..=last).contains(&hash), "{key}");
        assert_eq!(stream.shard_of(&key), &stream.shards[index].id);
        *used.entry(index).or_insert(0) += 1;
    }
    assert_eq!(used.len(), 4, "keys spread over every shard: {used:?}");
}

#[tokio::test]
async fn routing_is_deterministic_and_keeps_per_key_order() {
    let keys: Vec<String> = (0..20).map(|n| format!("SYM{n}")).collect();
    let records: Vec<_> = (0..1_000).map(|n| record(&keys[n % 20], n)).collect();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let stream = LocalStream::new(4, 10_000);
        let mut positions = Vec::new();
        for chunk in records.chunks(64) {
            positions.extend(stream.put_batch(chunk.to_vec()).await);
        }
        stream.close();
        let mut shards = Vec::new();
        for shard in 0..4 {
            let mut cursor = cursor(&stream, shard, StartPosition::TrimHorizon).await;
            let read = drain(cursor.as_mut()).await;
            assert!(read.windows(2).all(|w| w[0].position < w[1].position));
            shards.push(read);
        }
        runs.push((positions, shards));
    }
    assert_eq!(runs[0].0, runs[1].0, "same records, same sequence numbers");
    let (positions, shards) = &runs[0];
    assert_eq!(shards.iter().map(Vec::len).sum::<usize>(), records.len());
    for key in &keys {
        let read: Vec<_> = shards
            .iter()
            .flatten()
            .filter(|r| &*r.partition_key == key)
            .collect();
        let put: Vec<_> = records.iter().filter(|(k, _)| k == key).collect();
        assert!(
            read.iter()
                .all(|r| r.position.sequence.as_str().len() == 21)
        );
        assert_eq!(
            read.iter().map(|r| &r.data).collect::<Vec<_>>(),
            put.iter().map(|(_, d)| d).collect::<Vec<_>>(),
            "{key} in put order"
        );
    }
    // Positions come back in the order the records were given.
    let by_position: HashMap<_, _> = shards
        .iter()
        .flatten()
        .map(|r| (&r.position, &r.data))
        .collect();
    for (position, (_, data)) in positions.iter().zip(&records) {
        assert_eq!(by_position[position], data);
    }
}

#[tokio::test]
async fn a_full_shard_blocks_the_producer_until_read() {
    let stream = LocalStream::new(1, 2);
    stream.put("A", Bytes::from_static(b"1")).await;
    stream.put("A", Bytes::from_static(b"2")).await;
    let put = stream.put("A", Bytes::from_static(b"3"));
    let mut put = std::pin::pin!(put);
    // Polled once: a put with room would finish here, so pending means it waits for room.
    assert!(futures::poll!(put.as_mut()).is_pending());
    assert_eq!(stream.unread(), 2);

    let mut cursor = cursor(&stream, 0, StartPosition::TrimHorizon).await;
    let first = cursor.next_batch().await.unwrap();
    assert_eq!(data(&first.records), [b"1", b"2"]);
    let position = put.await;
    let second = cursor.next_batch().await.unwrap();
    assert_eq!(data(&second.records), [b"3"]);
    assert_eq!(second.records[0].position, position);
}

#[tokio::test]
async fn close_then_drain_ends_the_shard() {
    let stream = LocalStream::with_config(LocalStreamConfig {
        max_batch_records: 2,
        ..LocalStreamConfig::new(1, 10)
    });
    let positions = stream
        .put_batch((0..3).map(|n| record("K", n)).collect())
        .await;
    stream.close();
    let mut cursor = cursor(&stream, 0, StartPosition::TrimHorizon).await;
    let first = cursor.next_batch().await.unwrap();
    assert_eq!(first.records.len(), 2);
    assert!(!first.shard_end);
    let last = cursor.next_batch().await.unwrap();
    assert_eq!(last.records[0].position, positions[2]);
    assert!(
        last.shard_end,
        "the batch that drains a closed shard ends it"
    );
    let after = cursor.next_batch().await.unwrap();
    assert!(after.records.is_empty() && after.shard_end);
}

#[tokio::test]
async fn close_wakes_a_waiting_reader() {
    let stream = LocalStream::with_config(LocalStreamConfig {
        idle_wait: Duration::from_secs(3_600),
        ..LocalStreamConfig::new(1, 10)
    });
    let mut cursor = cursor(&stream, 0, StartPosition::TrimHorizon).await;
    let mut next = cursor.next_batch();
    assert!(
        futures::poll!(next.as_mut()).is_pending(),
        "waits on an open shard"
    );
    stream.close();
    assert!(
        next.await.unwrap().shard_end,
        "woken by close, long before the idle wait"
    );
}

#[tokio::test]
async fn after_a_position_resumes_past_it() {
    let stream = LocalStream::with_config(LocalStreamConfig {
        max_batch_records: 3,
        ..LocalStreamConfig::new(1, 100)
    });
    let positions = stream
        .put_batch((0..10).map(|n| record("K", n)).collect())
        .await;
    stream.close();
    let mut first = cursor(&stream, 0, StartPosition::TrimHorizon).await;
    let batch = first.next_batch().await.unwrap();
    assert_eq!(data(&batch.records), [b"K-0", b"K-1", b"K-2"]);
    drop(first);

    // Resumes from a checkpoint that is behind what was handed out.
    let mut resumed = cursor(&stream, 0, StartPosition::After(positions[5].clone())).await;
    let rest = drain(resumed.as_mut()).await;
    assert_eq!(data(&rest), [b"K-6", b"K-7", b"K-8", b"K-9"]);
}

#[tokio::test]
async fn latest_skips_what_is_already_there() {
    let stream = LocalStream::new(1, 100);
    stream.put("K", Bytes::from_static(b"old")).await;
    let mut cursor = cursor(&stream, 0, StartPosition::Latest).await;
    stream.put("K", Bytes::from_static(b"new")).await;
    stream.close();
    assert_eq!(data(&drain(cursor.as_mut()).await), [b"new"]);
    assert_eq!(stream.unread(), 0, "skipped records are dropped too");
}

#[tokio::test]
async fn at_timestamp_skips_records_that_arrived_before() {
    let stream = LocalStream::new(2, 100);
    let key_of = |shard: usize| {
        (0..)
            .map(|n| format!("K{n}"))
            .find(|k| stream.shard_index(k) == shard)
            .unwrap()
    };
    let (zero, one) = (key_of(0), key_of(1));
    stream.put(&zero, Bytes::from_static(b"a")).await;
    stream.put(&one, Bytes::from_static(b"b")).await;
    stream.close();
    let mut from_epoch = cursor(&stream, 0, StartPosition::AtTimestamp(0)).await;
    assert_eq!(data(&drain(from_epoch.as_mut()).await), [b"a"]);
    let future = now_ms() + 3_600_000;
    let mut from_future = cursor(&stream, 1, StartPosition::AtTimestamp(future)).await;
    assert!(drain(from_future.as_mut()).await.is_empty());
}

#[tokio::test]
async fn an_idle_shard_returns_an_empty_batch_after_the_idle_wait() {
    // Real time: this branch's tokio has no `test-util`, so time cannot be paused. The wait
    // is measured, not used to synchronise anything.
    let idle_wait = Duration::from_millis(30);
    let stream = LocalStream::with_config(LocalStreamConfig {
        idle_wait,
        ..LocalStreamConfig::new(1, 10)
    });
    let mut cursor = cursor(&stream, 0, StartPosition::TrimHorizon).await;
    let started = Instant::now();
    let batch = cursor.next_batch().await.unwrap();
    assert!(started.elapsed() >= idle_wait);
    assert_eq!(
        batch,
        ReadBatch {
            records: Vec::new(),
            millis_behind_latest: Some(0),
            records_behind_latest: None,
            shard_end: false,
            retention_gap: None,
        }
    );
}

#[tokio::test]
async fn a_put_wakes_a_waiting_reader() {
    let stream = LocalStream::with_config(LocalStreamConfig {
        idle_wait: Duration::from_secs(3_600),
        ..LocalStreamConfig::new(1, 10)
    });
    let mut cursor = cursor(&stream, 0, StartPosition::TrimHorizon).await;
    let mut next = cursor.next_batch();
    assert!(
        futures::poll!(next.as_mut()).is_pending(),
        "waits on an empty shard"
    );
    stream.put("K", Bytes::from_static(b"x")).await;
    let batch = next.await.unwrap();
    assert_eq!(data(&batch.records), [b"x"]);
    assert_eq!(batch.millis_behind_latest, Some(0), "caught up");
}

#[tokio::test]
async fn millis_behind_latest_is_measured_from_the_newest_arrival() {
    let stream = LocalStream::with_config(LocalStreamConfig {
        max_batch_records: 1,
        ..LocalStreamConfig::new(1, 10)
    });
    let positions = stream
        .put_batch((0..3).map(|n| record("K", n)).collect())
        .await;
    {
        // Arrival times are the wall clock's: set them to known values.
        let mut state = stream.shards[0].lock();
        for (record, ms) in state.unread.iter_mut().zip([1_000, 1_500, 2_000]) {
            record.arrival_time_ms = ms;
        }
        state.newest_arrival_ms = 2_000;
    }
    let mut cursor = cursor(&stream, 0, StartPosition::TrimHorizon).await;
    let mut behind = Vec::new();
    for position in &positions {
        let batch = cursor.next_batch().await.unwrap();
        assert_eq!(&batch.records[0].position, position);
        behind.push(batch.millis_behind_latest.unwrap());
    }
    assert_eq!(behind, [1_000, 500, 0]);
}

#[tokio::test]
async fn lists_shards_and_refuses_unknown_ones() {
    let stream = LocalStream::new(3, 10);
    let shards = stream.list_shards().await.unwrap();
    let ids: Vec<&str> = shards.iter().map(|s| &*s.id).collect();
    assert_eq!(
        ids,
        [
            "shardId-000000000000",
            "shardId-000000000001",
            "shardId-000000000002"
        ]
    );
    assert!(
        shards
            .iter()
            .all(|s| s.parent.is_none() && s.adjacent_parent.is_none())
    );
    let unknown: ShardId = "shardId-000000000003".into();
    let result = stream
        .open_shard(&unknown, StartPosition::TrimHorizon)
        .await;
    assert!(matches!(result, Err(StreamError::ShardNotFound { shard }) if shard == unknown));
}

#[tokio::test]
async fn sequence_numbers_are_per_shard_and_increasing() {
    let stream = LocalStream::new(2, 10);
    let key = (0..)
        .map(|n| format!("K{n}"))
        .find(|k| stream.shard_index(k) == 1)
        .unwrap();
    let first = stream.put(&key, Bytes::new()).await;
    let second = stream.put(&key, Bytes::new()).await;
    assert_eq!(first.sequence.as_str(), "100001000000000000000");
    assert_eq!(second.sequence.as_str(), "100001000000000000001");
    assert!(first < second);
}

#[tokio::test]
async fn a_resume_after_trimmed_records_reports_the_gap_up_to_the_first_record_read() {
    let stream = LocalStream::with_config(LocalStreamConfig {
        max_batch_records: 3,
        ..LocalStreamConfig::new(1, 100)
    });
    let positions = stream
        .put_batch((0..10).map(|n| record("K", n)).collect())
        .await;
    stream.trim(0, 6);
    assert_eq!(stream.unread(), 4, "trimmed records are gone unread");
    let mut resumed = cursor(&stream, 0, StartPosition::After(positions[2].clone())).await;
    let first = resumed.next_batch().await.unwrap();
    assert_eq!(data(&first.records), [b"K-6", b"K-7", b"K-8"]);
    assert_eq!(
        first.retention_gap,
        Some(RetentionGap {
            after: positions[2].clone(),
            before: Some(positions[6].clone()),
            arrival_time_ms: first.records[0].arrival_time_ms,
        })
    );
    let next = resumed.next_batch().await.unwrap();
    assert_eq!(data(&next.records), [b"K-9"]);
    assert_eq!(next.retention_gap, None, "reported once");
}

#[tokio::test]
async fn trimming_up_to_the_resume_position_or_a_fresh_start_is_no_gap() {
    let stream = LocalStream::new(1, 100);
    let positions = stream
        .put_batch((0..6).map(|n| record("K", n)).collect())
        .await;
    stream.trim(0, 3);
    stream.trim(0, 1); // never back
    stream.close();
    let mut resumed = cursor(&stream, 0, StartPosition::After(positions[2].clone())).await;
    let first = resumed.next_batch().await.unwrap();
    assert_eq!(data(&first.records), [b"K-3", b"K-4", b"K-5"]);
    assert_eq!(
        first.retention_gap, None,
        "nothing after the position was trimmed"
    );

    let stream = LocalStream::new(1, 100);
    stream
        .put_batch((0..6).map(|n| record("K", n)).collect())
        .await;
    stream.trim(0, 4);
    let mut from_start = cursor(&stream, 0, StartPosition::After(Position::before_any())).await;
    let first = from_start.next_batch().await.unwrap();
    assert_eq!(data(&first.records), [b"K-4", b"K-5"]);
    assert_eq!(
        first.retention_gap, None,
        "before any record is no checkpoint"
    );
    let mut horizon = cursor(&stream, 0, StartPosition::TrimHorizon).await;
    assert_eq!(horizon.next_batch().await.unwrap().retention_gap, None);
}

#[tokio::test]
async fn a_gap_waits_for_the_first_record_and_runs_to_the_end_of_a_closed_shard() {
    let stream = LocalStream::with_config(LocalStreamConfig {
        idle_wait: Duration::from_millis(10),
        ..LocalStreamConfig::new(2, 100)
    });
    let key_of = |shard: usize| {
        (0..)
            .map(|n| format!("K{n}"))
            .find(|k| stream.shard_index(k) == shard)
            .unwrap()
    };
    let (zero, one) = (key_of(0), key_of(1));
    let open = stream
        .put_batch(vec![record(&zero, 0), record(&zero, 1)])
        .await;
    let closed = stream
        .put_batch(vec![record(&one, 0), record(&one, 1)])
        .await;
    stream.trim(0, 2);
    stream.trim(1, 2);

    // Open and empty: nothing to place the gap at yet.
    let mut waiting = cursor(&stream, 0, StartPosition::After(open[0].clone())).await;
    let idle = waiting.next_batch().await.unwrap();
    assert!(idle.records.is_empty() && idle.retention_gap.is_none());
    let later = stream.put(&zero, Bytes::from_static(b"later")).await;
    let first = waiting.next_batch().await.unwrap();
    assert_eq!(data(&first.records), [b"later"]);
    let gap = first.retention_gap.unwrap();
    assert_eq!((gap.after, gap.before), (open[0].clone(), Some(later)));

    stream.close();
    let mut ended = cursor(&stream, 1, StartPosition::After(closed[0].clone())).await;
    let last = ended.next_batch().await.unwrap();
    assert!(last.records.is_empty() && last.shard_end);
    assert_eq!(
        last.retention_gap,
        Some(RetentionGap {
            after: closed[0].clone(),
            before: None,
            arrival_time_ms: 0,
        })
    );
}

#[test]
fn producer_futures_can_move_between_threads() {
    fn assert_send<T: Send>(_: &T) {}
    let stream = LocalStream::new(1, 10);
    assert_send(&stream.put_batch(Vec::<(String, Bytes)>::new()));
    assert_send(&stream.put("K", Bytes::new()));
}

#[tokio::test]
#[should_panic(expected = "closed")]
async fn put_after_close_is_a_bug() {
    let stream = LocalStream::new(1, 10);
    stream.close();
    stream.put("K", Bytes::new()).await;
}
