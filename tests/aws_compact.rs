//! `kinetick compact --lake s3://bucket/prefix` against the AWS emulator, through the real
//! binary: a demo's lake copied into a bucket, its shards' checkpoints saved in a DynamoDB table
//! (large snapshots in the bucket) as `kinetick run` saves them, one shard's moved back. The
//! lake keeps every tick once with every value, in fewer files; the files past that shard's
//! checkpoint stay; a rerun changes nothing; a date another run holds the lock of is refused,
//! untouched. And the S3 store's conditional writes (412: nothing written), and its writes in
//! parts: a large object goes up as a multipart upload, and a writer that stops leaves no object
//! and no parts.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use common::lake::{file_rows, files_under, lake_order, lake_rows};
use kinetick::checkpoint::CheckpointStore;
use kinetick::checkpoint::dynamodb::DynamoCheckpointStore;
use kinetick::checkpoint::file::FileCheckpointStore;
use kinetick::model::tick::Position;
use kinetick::objects::s3::S3ObjectStore;
use kinetick::objects::{ObjectStore, Part, Precondition};

fn succeeded(output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kinetick failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Every object under `prefix` with its bytes.
async fn objects(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> BTreeMap<String, Bytes> {
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    let mut objects = BTreeMap::new();
    for object in listed.contents() {
        let key = object.key().unwrap().to_owned();
        let body = common::object_bytes(s3, bucket, &key).await;
        objects.insert(key, body);
    }
    objects
}

/// The objects under `lake/ticks/` as files of a lake directory, for [`lake_rows`].
fn as_directory(objects: &BTreeMap<String, Bytes>, dir: &Path) {
    for (key, body) in objects {
        if let Some(path) = key.strip_prefix("lake/") {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
    }
}

#[tokio::test]
async fn a_lake_on_s3_compacts_by_the_checkpoints_in_dynamodb() {
    let work = tempfile::tempdir().unwrap();
    let demo = work.path().join("demo");
    succeeded(
        Command::new(env!("CARGO_BIN_EXE_kinetick"))
            .args([
                "demo",
                "--no-progress",
                "--ticks",
                "100000",
                "--symbols",
                "20",
            ])
            .args(["--shards", "3", "--out"])
            .arg(&demo)
            // Small files; a reader that lags takes up to 10,000 records a read and cuts files at
            // reads, so each shard needs several times that for three files however it runs.
            .env("KINETICK_CHECKPOINT__MAX_RECORDS", "1500")
            // Files close at every barrier, as the lake wrote them before they grew.
            .env("KINETICK_LAKE__TARGET_FILE_SIZE", "1")
            .output()
            .unwrap(),
    );
    let config = common::sdk_config();
    let (s3, bucket) = common::bucket(&config).await;
    for file in files_under(&demo.join("ticks"), "parquet") {
        let key = format!("lake/{}", file.strip_prefix(&demo).unwrap().display());
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(ByteStream::from(std::fs::read(&file).unwrap()))
            .send()
            .await
            .unwrap();
    }

    // The checkpoints as `kinetick run` keeps them; shard 1's back at the end of its second file.
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = common::table(&dynamodb, "shard_id", None).await;
    let snapshots: Arc<dyn ObjectStore> = Arc::new(S3ObjectStore::new(s3.clone(), &bucket));
    let store = DynamoCheckpointStore::new(dynamodb, &table, snapshots, "lake/");
    let local = FileCheckpointStore::new(demo.join("checkpoints"));
    let shard1 = "shardId-000000000001";
    let mut files1: Vec<(Position, std::path::PathBuf)> =
        files_under(&demo.join("ticks"), "parquet")
            .into_iter()
            .filter_map(|file| {
                let stem = file.file_stem()?.to_str()?.to_owned();
                let (shard, first) = stem.rsplit_once('-')?;
                (shard == shard1).then(|| (first.parse().unwrap(), file))
            })
            .collect();
    files1.sort();
    assert!(files1.len() >= 3, "{files1:?}");
    for shard in ["shardId-000000000000", shard1, "shardId-000000000002"] {
        let mut checkpoint = local.load(shard).await.unwrap().unwrap();
        if shard == shard1 {
            let rows = file_rows(Bytes::from(std::fs::read(&files1[1].1).unwrap()));
            let last = rows
                .iter()
                .map(|((_, sequence, sub), _)| {
                    format!("{sequence}.{sub}").parse::<Position>().unwrap()
                })
                .max()
                .unwrap();
            checkpoint.position = last;
            checkpoint.shard_end = false;
        }
        store.save(&checkpoint).await.unwrap();
    }
    let past: Vec<String> = files1[2..]
        .iter()
        .map(|(_, file)| format!("lake/{}", file.strip_prefix(&demo).unwrap().display()))
        .collect();

    let before = objects(&s3, &bucket, "lake/ticks/").await;
    let date = before.keys().next().unwrap().split("dt=").nth(1).unwrap()[..10].to_owned();
    let lake_bytes: usize = before.values().map(Bytes::len).sum();
    let command = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kinetick"));
        command
            .args(["compact", "--no-progress", "--lake"])
            .arg(format!("s3://{bucket}/lake"))
            .args(["--date", &date, "--target-size"])
            .arg((lake_bytes / 2).to_string())
            .envs(common::aws_env())
            .env("KINETICK_AWS__S3_FORCE_PATH_STYLE", "true")
            .env("KINETICK_AWS__CHECKPOINT_TABLE", &table);
        command
    };
    let compact = || succeeded(command().output().unwrap());
    let said = compact();
    assert!(
        said.contains(&format!("{} past their shard's checkpoint", past.len())),
        "{said}"
    );

    let after = objects(&s3, &bucket, "lake/").await;
    let (from_s3, from_demo) = (work.path().join("s3"), work.path().join("rows"));
    as_directory(&after, &from_s3);
    as_directory(&before, &from_demo);
    assert_eq!(
        lake_rows(&from_s3),
        lake_rows(&from_demo),
        "every tick once, every value"
    );
    let tick_files: Vec<&String> = after
        .keys()
        .filter(|k| k.starts_with("lake/ticks/"))
        .collect();
    assert!(tick_files.len() < before.len(), "{said}");
    // Besides the compacted files, only those past the checkpoint and at most one with nothing
    // to merge with.
    let others = tick_files
        .iter()
        .filter(|k| !k.contains("/compacted-") && !past.contains(k))
        .count();
    assert!(others <= 1, "{said}");
    for key in &past {
        assert_eq!(
            after.get(key),
            before.get(key),
            "{key} past the checkpoint stays"
        );
    }
    let outputs: Vec<&&String> = tick_files
        .iter()
        .filter(|k| k.contains("/compacted-"))
        .collect();
    assert!(!outputs.is_empty());
    for key in outputs {
        let rows = file_rows(after[*key].clone());
        assert!(
            rows.windows(2)
                .all(|pair| lake_order(&pair[0], &pair[1]).is_le())
        );
        let manifest = key
            .replace("/ticks/", "/compaction/")
            .replace(".parquet", ".json");
        assert!(after.contains_key(&manifest), "{manifest}");
    }

    // Again: nothing to do.
    compact();
    assert_eq!(objects(&s3, &bucket, "lake/").await, after);

    // Another run holds the date: refused in one line, nothing touched.
    let lock_key = format!("lake/compaction/dt={date}/lock");
    let lock = serde_json::json!({
        "run": "elsewhere/4242/0badcafe",
        "taken_at": "2026-01-06T03:00:00Z",
        "expires_at": "2999-01-01T00:00:00Z",
    })
    .to_string();
    s3.put_object()
        .bucket(&bucket)
        .key(&lock_key)
        .body(ByteStream::from(lock.clone().into_bytes()))
        .send()
        .await
        .unwrap();
    let refused = command().output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("elsewhere/4242/0badcafe") && stderr.contains("2999-01-01T00:00:00Z"),
        "{stderr}"
    );
    let mut locked = after.clone();
    locked.insert(lock_key, Bytes::from(lock));
    assert_eq!(objects(&s3, &bucket, "lake/").await, locked);
}

#[tokio::test]
async fn s3_conditional_writes_happen_only_when_their_condition_holds() {
    let config = common::sdk_config();
    let (s3, bucket) = common::bucket(&config).await;
    let store = S3ObjectStore::new(s3.clone(), &bucket);
    let put = |body: &'static str, precondition: Precondition| {
        store.put_if("lock", Bytes::from(body), "application/json", precondition)
    };
    assert_eq!(store.get_tagged("lock").await.unwrap(), None);
    let first = put("a", Precondition::Absent)
        .await
        .unwrap()
        .expect("none there");
    assert_eq!(put("b", Precondition::Absent).await.unwrap(), None, "412");
    let (body, tag) = store.get_tagged("lock").await.unwrap().unwrap();
    assert_eq!((&body[..], &tag), (&b"a"[..], &first));

    let second = put("b", Precondition::Tagged(first.clone())).await.unwrap();
    let second = second.expect("the tag matches");
    assert_ne!(second, first);
    let stale = put("c", Precondition::Tagged(first.clone())).await.unwrap();
    assert_eq!(stale, None, "412");
    assert_eq!(store.get("lock").await.unwrap().unwrap(), &b"b"[..]);

    assert!(!store.delete_if("lock", &first).await.unwrap(), "412");
    assert!(store.get("lock").await.unwrap().is_some());
    assert!(store.delete_if("lock", &second).await.unwrap());
    assert_eq!(store.get("lock").await.unwrap(), None);
}

#[tokio::test]
async fn s3_writes_in_parts_go_up_whole_or_not_at_all() {
    let config = common::sdk_config();
    let (s3, bucket) = common::bucket(&config).await;
    let store = S3ObjectStore::new(s3.clone(), &bucket);
    let body: Vec<u8> = (0..20 * 1024 * 1024 + 5).map(|i| (i % 253) as u8).collect();
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let sending = tokio::spawn({
        let body = body.clone();
        async move {
            for chunk in body.chunks(1024 * 1024) {
                sender
                    .send(Part::Data(Bytes::copy_from_slice(chunk)))
                    .await
                    .unwrap();
            }
            sender.send(Part::End).await.unwrap();
        }
    });
    store
        .put_parts("big", "application/octet-stream", receiver)
        .await
        .unwrap();
    sending.await.unwrap();
    assert_eq!(store.get("big").await.unwrap().unwrap(), body);
    let listed = store.list_sized("").await.unwrap();
    assert_eq!(
        (listed[0].key.as_str(), listed[0].bytes),
        ("big", body.len() as u64)
    );

    // A writer that stops halfway, past the first parts: no object, no parts left.
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let sending = tokio::spawn(async move {
        for _ in 0..18 {
            sender
                .send(Part::Data(Bytes::from(vec![1u8; 1024 * 1024])))
                .await
                .unwrap();
        }
    });
    let error = store.put_parts("half", "", receiver).await.unwrap_err();
    sending.await.unwrap();
    assert!(error.is_unfinished(), "{error}");
    assert_eq!(store.get("half").await.unwrap(), None);
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "{:?}", uploads.uploads());
}
