//! Which records go into the next `PutRecords` request: pure logic, no I/O.
//!
//! Kinesis keeps the order of records per partition key only if a record is not overtaken by a
//! later one of the same key. Within one request a failed entry would be overtaken by the later
//! entries of its key that succeeded, so a request carries at most one record per key (the
//! oldest waiting one); a failed record goes back to the head of its key's queue and is sent
//! again before anything after it. Requests stay within the API limits: 500 records and 5 MiB,
//! each record at most 1 MiB (data plus partition key).

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

/// Records per `PutRecords` request.
pub const MAX_RECORDS: usize = 500;
/// Bytes per request (data plus partition keys).
pub const MAX_REQUEST_BYTES: usize = 5 * 1024 * 1024;
/// Bytes per record (data plus partition key).
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Longest partition key Kinesis accepts, in Unicode characters.
pub const MAX_KEY_CHARS: usize = 256;

/// One record to put.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub partition_key: String,
    pub data: Bytes,
}

impl Outgoing {
    pub fn size(&self) -> usize {
        self.partition_key.len() + self.data.len()
    }
}

/// A record Kinesis would refuse whatever happens: reported, never sent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejected {
    #[error("record of {size} bytes is over the 1 MiB limit (partition key {key:?})")]
    TooLarge { key: String, size: usize },
    #[error("partition key must be 1 to 256 characters, got {chars}")]
    BadKey { chars: usize },
}

/// Records waiting to be sent, by partition key, in arrival order.
#[derive(Debug, Default)]
pub struct Pending {
    queues: HashMap<String, VecDeque<Outgoing>>,
    /// Keys in the order their oldest record arrived, so no key starves.
    order: VecDeque<String>,
    len: usize,
}

impl Pending {
    pub fn push(&mut self, record: Outgoing) -> Result<(), Rejected> {
        let chars = record.partition_key.chars().count();
        if chars == 0 || chars > MAX_KEY_CHARS {
            return Err(Rejected::BadKey { chars });
        }
        if record.size() > MAX_RECORD_BYTES {
            return Err(Rejected::TooLarge {
                size: record.size(),
                key: record.partition_key,
            });
        }
        let queue = self.queues.entry(record.partition_key.clone()).or_default();
        if queue.is_empty() {
            self.order.push_back(record.partition_key.clone());
        }
        queue.push_back(record);
        self.len += 1;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The next request: the oldest record of as many keys as fit, taken out of the queues.
    pub fn next_request(&mut self) -> Vec<Outgoing> {
        let mut request = Vec::new();
        let mut bytes = 0;
        let mut deferred = Vec::new();
        while request.len() < MAX_RECORDS {
            let Some(key) = self.order.pop_front() else {
                break;
            };
            let queue = self.queues.get_mut(&key).expect("ordered keys have queues");
            let size = queue.front().expect("ordered keys have records").size();
            if bytes + size > MAX_REQUEST_BYTES {
                // Its turn comes first in the next request.
                self.order.push_front(key);
                break;
            }
            bytes += size;
            request.push(queue.pop_front().expect("checked above"));
            self.len -= 1;
            match queue.is_empty() {
                true => {
                    self.queues.remove(&key);
                }
                false => deferred.push(key),
            }
        }
        // Keys that sent a record wait behind those that did not get a turn.
        self.order.extend(deferred);
        request
    }

    /// Puts records of a request that failed back at the head of their keys' queues, to go
    /// before anything that came after them.
    pub fn requeue(&mut self, failed: Vec<Outgoing>) {
        for record in failed.into_iter().rev() {
            let queue = self.queues.entry(record.partition_key.clone()).or_default();
            if queue.is_empty() {
                self.order.push_front(record.partition_key.clone());
            }
            queue.push_front(record);
            self.len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, n: usize) -> Outgoing {
        Outgoing {
            partition_key: key.to_owned(),
            data: Bytes::from(format!("{key}-{n}")),
        }
    }

    #[test]
    fn a_request_carries_one_record_per_key_oldest_first() {
        let mut pending = Pending::default();
        for n in 0..3 {
            for key in ["AAPL", "MSFT"] {
                pending.push(record(key, n)).unwrap();
            }
        }
        let first = pending.next_request();
        assert_eq!(first, vec![record("AAPL", 0), record("MSFT", 0)]);
        assert_eq!(
            pending.next_request(),
            vec![record("AAPL", 1), record("MSFT", 1)]
        );
        assert_eq!(pending.len(), 2);
    }

    #[test]
    fn failed_records_go_before_the_rest_of_their_key() {
        let mut pending = Pending::default();
        for n in 0..2 {
            pending.push(record("AAPL", n)).unwrap();
        }
        let failed = pending.next_request();
        pending.requeue(failed);
        assert_eq!(pending.next_request(), vec![record("AAPL", 0)]);
        assert_eq!(pending.next_request(), vec![record("AAPL", 1)]);
        assert!(pending.is_empty());
    }

    #[test]
    fn requests_stay_within_500_records_and_5_mib() {
        let mut pending = Pending::default();
        for n in 0..700 {
            pending.push(record(&format!("S{n}"), 0)).unwrap();
        }
        assert_eq!(pending.next_request().len(), MAX_RECORDS);
        assert_eq!(pending.next_request().len(), 200);

        let big = |key: &str| Outgoing {
            partition_key: key.to_owned(),
            data: Bytes::from(vec![b'x'; 1024 * 1024 - 8]),
        };
        for n in 0..7 {
            pending.push(big(&format!("K{n}"))).unwrap();
        }
        let request = pending.next_request();
        assert_eq!(request.len(), 5);
        assert!(request.iter().map(Outgoing::size).sum::<usize>() <= MAX_REQUEST_BYTES);
        assert_eq!(pending.next_request().len(), 2);
    }

    #[test]
    fn records_kinesis_would_refuse_are_rejected_up_front() {
        let mut pending = Pending::default();
        let huge = Outgoing {
            partition_key: "AAPL".into(),
            data: Bytes::from(vec![0; MAX_RECORD_BYTES]),
        };
        assert!(matches!(pending.push(huge), Err(Rejected::TooLarge { .. })));
        assert!(matches!(
            pending.push(record("", 0)),
            Err(Rejected::BadKey { chars: 0 })
        ));
        assert!(pending.is_empty());
    }
}
