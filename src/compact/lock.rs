//! One run at a time per date. Two runs that compact one date at once could each take the
//! other's compacted file for a copy, or merge files the other is deleting; so a run holds a
//! lock on a date from before its first write or delete of it until it is done.
//!
//! The lock is the object `{prefix}compaction/dt=D/lock` (not `.json`, so the manifest reader
//! skips it): JSON naming the run that holds it (host, process id and a random part), when it
//! was taken and when its lease runs out ([`LEASE`] on). It is written only conditionally
//! ([`ObjectStore::put_if`]): taken when there is none, taken over when its lease ran out (a run
//! that died holding it), renewed over the tag this run last wrote before each group, so a long
//! run keeps it and a run whose lock was taken over stops before its next write; and deleted at
//! the end only if it is still this run's. Who may take it is [`decide`]'s, a pure function of
//! the lock found and the time.

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;

use super::CompactError;
use super::plan;
use crate::objects::{ObjectError, ObjectStore, Precondition};
use crate::retry;

/// How long a lock holds after it was taken or renewed, unless renewed again. Far longer than a
/// group takes (fetching and merging at most `--target-size` of files), so a run that is alive
/// renews it in time.
pub const LEASE: TimeDelta = TimeDelta::minutes(15);

/// Tries at taking the lock while other runs change it between reading and writing.
const TRIES: usize = 5;

/// What a lock object says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The run: `host/pid/random`.
    pub run: String,
    pub taken_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Holder {
    pub fn to_json(&self) -> Vec<u8> {
        let stamp = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        serde_json::to_vec_pretty(&serde_json::json!({
            "run": self.run,
            "taken_at": stamp(&self.taken_at),
            "expires_at": stamp(&self.expires_at),
        }))
        .expect("JSON of strings")
    }

    pub fn from_json(body: &[u8]) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let field = |name: &str| {
            value[name]
                .as_str()
                .ok_or_else(|| format!("no string {name:?}"))
        };
        let time = |name: &str| {
            DateTime::parse_from_rfc3339(field(name)?)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| format!("{name}: {e}"))
        };
        Ok(Self {
            run: field("run")?.to_owned(),
            taken_at: time("taken_at")?,
            expires_at: time("expires_at")?,
        })
    }
}

/// What a run may do with the lock it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// There is none: take it.
    Take,
    /// This run's own (written by a try whose answer was lost): keep it.
    Mine,
    /// Another run holds it: touch nothing.
    Held(Holder),
    /// Another run held it and its lease ran out: take it over.
    TakeOver(Holder),
}

/// What run `run` may do at `now` with the lock `found`.
pub fn decide(found: Option<&Holder>, run: &str, now: DateTime<Utc>) -> Decision {
    match found {
        None => Decision::Take,
        Some(holder) if holder.run == run => Decision::Mine,
        Some(holder) if holder.expires_at > now => Decision::Held(holder.clone()),
        Some(holder) => Decision::TakeOver(holder.clone()),
    }
}

/// `{prefix}compaction/dt={date}/lock`.
pub fn lock_key(prefix: &str, date: &str) -> String {
    format!("{}lock", plan::manifests_folder(prefix, date))
}

/// A name for this run that no other run shares: the host, the process and a random part.
pub fn run_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned());
    let random: u32 = rand::rng().random();
    format!("{host}/{}/{random:08x}", std::process::id())
}

/// The lock a run holds on a date, with the tag of what it last wrote.
#[derive(Debug)]
pub struct DateLock {
    key: String,
    date: String,
    tag: String,
    holder: Holder,
}

impl DateLock {
    /// Takes the lock of `date` for `run`; fails with [`CompactError::Locked`] while another
    /// run holds it.
    pub async fn take(
        objects: &dyn ObjectStore,
        prefix: &str,
        date: &str,
        run: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, CompactError> {
        let key = lock_key(prefix, date);
        let holder = Holder {
            run: run.to_owned(),
            taken_at: now,
            expires_at: now + LEASE,
        };
        for _ in 0..TRIES {
            let found = read(objects, &key).await?;
            let precondition = match decide(found.as_ref().map(|(h, _)| h), run, now) {
                Decision::Take => Precondition::Absent,
                Decision::Mine => {
                    let (holder, tag) = found.expect("a lock was found");
                    return Ok(Self::new(key, date, tag, holder));
                }
                Decision::Held(holder) => {
                    return Err(CompactError::Locked {
                        date: date.to_owned(),
                        key,
                        run: holder.run,
                        expires_at: holder.expires_at,
                    });
                }
                Decision::TakeOver(previous) => {
                    tracing::warn!(date, lock = %key, previous = %previous.run,
                        expired_at = %previous.expires_at,
                        "Taking over a compaction lock whose lease ran out (its run died?).");
                    Precondition::Tagged(found.expect("a lock was found").1)
                }
            };
            if let Some(tag) = put(objects, &key, &holder, precondition).await? {
                return Ok(Self::new(key, date, tag, holder.clone()));
            }
            // Another run wrote the lock between our read and write: look again.
        }
        Err(CompactError::Task(format!(
            "{key}: the lock changed {TRIES} times while being taken"
        )))
    }

    fn new(key: String, date: &str, tag: String, holder: Holder) -> Self {
        Self {
            key,
            date: date.to_owned(),
            tag,
            holder,
        }
    }

    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// Extends the lease to [`LEASE`] from `now`, over the lock this run last wrote; fails with
    /// [`CompactError::LockLost`] if another run took it over meanwhile.
    pub async fn renew(
        &mut self,
        objects: &dyn ObjectStore,
        now: DateTime<Utc>,
    ) -> Result<(), CompactError> {
        let renewed = Holder {
            expires_at: now + LEASE,
            ..self.holder.clone()
        };
        let precondition = Precondition::Tagged(self.tag.clone());
        if let Some(tag) = put(objects, &self.key, &renewed, precondition).await? {
            (self.tag, self.holder) = (tag, renewed);
            return Ok(());
        }
        // Written by a try whose answer was lost, or taken over.
        match read(objects, &self.key).await? {
            Some((holder, tag))
                if decide(Some(&holder), &self.holder.run, now) == Decision::Mine =>
            {
                (self.tag, self.holder) = (tag, holder);
                Ok(())
            }
            found => Err(CompactError::LockLost {
                date: self.date.clone(),
                key: self.key.clone(),
                run: found.map_or_else(|| "nobody".to_owned(), |(holder, _)| holder.run),
            }),
        }
    }

    /// Deletes the lock if it is still this run's.
    pub async fn release(self, objects: &dyn ObjectStore) -> Result<(), CompactError> {
        let deleted = retry::bounded("delete", ObjectError::failure, || {
            objects.delete_if(&self.key, &self.tag)
        })
        .await?;
        if !deleted {
            tracing::warn!(lock = %self.key,
                "The compaction lock was no longer this run's at the end.");
        }
        Ok(())
    }
}

/// The lock of `date` if another run holds it at `now`, for a dry run to report.
pub async fn held(
    objects: &dyn ObjectStore,
    prefix: &str,
    date: &str,
    now: DateTime<Utc>,
) -> Result<Option<Holder>, CompactError> {
    let found = read(objects, &lock_key(prefix, date)).await?;
    Ok(match decide(found.as_ref().map(|(h, _)| h), "", now) {
        Decision::Held(holder) => Some(holder),
        _ => None,
    })
}

/// The lock at `key` and its tag, if there is one.
async fn read(
    objects: &dyn ObjectStore,
    key: &str,
) -> Result<Option<(Holder, String)>, CompactError> {
    let found = retry::bounded("get", ObjectError::failure, || objects.get_tagged(key)).await?;
    let Some((body, tag)) = found else {
        return Ok(None);
    };
    let holder = Holder::from_json(&body).map_err(|message| CompactError::LockUnreadable {
        key: key.to_owned(),
        message,
    })?;
    Ok(Some((holder, tag)))
}

async fn put(
    objects: &dyn ObjectStore,
    key: &str,
    holder: &Holder,
    precondition: Precondition,
) -> Result<Option<String>, ObjectError> {
    let body = bytes::Bytes::from(holder.to_json());
    retry::bounded("put", ObjectError::failure, || {
        objects.put_if(key, body.clone(), "application/json", precondition.clone())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::local::LocalObjectStore;

    fn at(time: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(time)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn holder(run: &str, expires_at: &str) -> Holder {
        Holder {
            run: run.to_owned(),
            taken_at: at("2026-01-06T03:00:00Z"),
            expires_at: at(expires_at),
        }
    }

    #[test]
    fn who_may_take_the_lock() {
        let now = at("2026-01-06T03:10:00Z");
        assert_eq!(decide(None, "a", now), Decision::Take);
        let other = holder("b", "2026-01-06T03:15:00Z");
        assert_eq!(
            decide(Some(&other), "a", now),
            Decision::Held(other.clone())
        );
        let mine = holder("a", "2026-01-06T03:00:00Z");
        assert_eq!(decide(Some(&mine), "a", now), Decision::Mine);
        let expired = holder("b", "2026-01-06T03:10:00Z");
        assert_eq!(
            decide(Some(&expired), "a", now),
            Decision::TakeOver(expired.clone()),
            "a lease runs out at its expiry"
        );
    }

    #[test]
    fn a_lock_round_trips_through_json() {
        let lock = holder("host/12/0000abcd", "2026-01-06T03:15:00Z");
        assert_eq!(Holder::from_json(&lock.to_json()).unwrap(), lock);
        assert!(Holder::from_json(b"{\"run\": \"x\"}").is_err());
        assert!(Holder::from_json(b"not json").is_err());
    }

    #[test]
    fn the_lock_is_beside_the_manifests_and_is_not_one() {
        let key = lock_key("lake/", "2026-01-05");
        assert_eq!(key, "lake/compaction/dt=2026-01-05/lock");
        assert!(key.starts_with(&plan::manifests_folder("lake/", "2026-01-05")));
        assert!(
            !key.ends_with(".json"),
            "the manifest reader reads only .json"
        );
    }

    #[tokio::test]
    async fn a_run_takes_renews_and_releases_and_another_waits_or_takes_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalObjectStore::new(dir.path());
        let now = at("2026-01-06T03:00:00Z");
        let mut first = DateLock::take(&store, "", "2026-01-05", "a", now)
            .await
            .unwrap();
        let refused = DateLock::take(&store, "", "2026-01-05", "b", now).await;
        let error = refused.unwrap_err();
        assert!(
            matches!(&error, CompactError::Locked { run, .. } if run == "a"),
            "{error}"
        );
        assert!(!error.to_string().contains('\n'), "{error}");
        assert_eq!(
            held(&store, "", "2026-01-05", now).await.unwrap(),
            Some(first.holder().clone())
        );
        first
            .renew(&store, now + TimeDelta::minutes(10))
            .await
            .unwrap();
        assert_eq!(first.holder().expires_at, at("2026-01-06T03:25:00Z"));

        // Past the renewed lease, another run takes the lock over; the first stops.
        let later = at("2026-01-06T03:26:00Z");
        assert_eq!(held(&store, "", "2026-01-05", later).await.unwrap(), None);
        let second = DateLock::take(&store, "", "2026-01-05", "b", later)
            .await
            .unwrap();
        let lost = first.renew(&store, later).await.unwrap_err();
        assert!(
            matches!(&lost, CompactError::LockLost { run, .. } if run == "b"),
            "{lost}"
        );
        first.release(&store).await.unwrap();
        assert!(
            store
                .get("compaction/dt=2026-01-05/lock")
                .await
                .unwrap()
                .is_some(),
            "b's"
        );
        second.release(&store).await.unwrap();
        assert_eq!(
            store.list("compaction/").await.unwrap(),
            Vec::<String>::new()
        );
    }
}
