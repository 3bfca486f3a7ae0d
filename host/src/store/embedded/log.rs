//! The redo log: an early write becomes durable by one sequential append and
//! an `fdatasync`, not by a B-tree commit that rewrites every page it touched
//! (issue #17; `docs/adr/0002-embedded-store-redb-with-group-commit.md`).
//!
//! The writer commits early writes to redb without fsync and appends what the
//! batch did as one record, numbered by the batch's mark: the store
//! transactions themselves ([`Redo`]: the operations, the clock reading and
//! the queue ids they used), so replaying the records in order on the last
//! durable state makes exactly the same writes. Every durable redb commit (a
//! checkpoint) stores the mark it covers; opening the store replays the
//! records after it. A torn or corrupt tail — a crash mid-append — ends the
//! log there: nothing in it had been answered as durable.
//!
//! A record is `len u32 LE | crc32 u32 LE | mark u64 LE | body`, the body a
//! postcard `Vec<Redo>` of `len` bytes, the crc over the mark and the body.

use super::super::Op;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A record's header: length, crc, mark.
const HEADER: usize = 16;

/// One store transaction as the log replays it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Redo {
    pub ops: Vec<Op>,
    /// The clock when it ran (what was live then).
    pub now_ms: u64,
    /// The ids of the messages it sends, in order.
    pub ids: Vec<u64>,
}

impl Redo {
    /// A transaction of `ops` at `now_ms`, with fresh ids for its sends.
    pub fn new(ops: Vec<Op>, now_ms: u64) -> Redo {
        let ids = ops
            .iter()
            .filter(|op| matches!(op, Op::Send(_)))
            .map(|_| rand::random())
            .collect();
        Redo { ops, now_ms, ids }
    }
}

/// One record: the mark of the batch it logs, and the batch's transactions.
pub type Record = (u64, Vec<Redo>);

/// The log file, appended to by the store's writer thread only.
pub struct RedoLog {
    file: File,
    len: u64,
}

impl RedoLog {
    /// Open (or create) the log and read every whole record in it, in order.
    pub fn open(path: &Path) -> io::Result<(RedoLog, Vec<Record>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut records = Vec::new();
        let mut at = 0;
        while let Some((mark, body, next)) = record_at(&bytes, at) {
            match postcard::from_bytes::<Vec<Redo>>(body) {
                Ok(redo) => records.push((mark, redo)),
                Err(_) => break,
            }
            at = next;
        }
        if at < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                kept = at,
                dropped = bytes.len() - at,
                "redo log ends in a torn or corrupt record; it was never acknowledged"
            );
        }
        Ok((
            RedoLog {
                file,
                len: at as u64,
            },
            records,
        ))
    }

    /// Append one record (no fsync: the syncer makes it durable).
    pub fn append(&mut self, mark: u64, redo: &[&Redo]) -> io::Result<()> {
        let body = postcard::to_stdvec(redo).map_err(io::Error::other)?;
        let len = u32::try_from(body.len()).map_err(io::Error::other)?;
        let mut record = Vec::with_capacity(HEADER + body.len());
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&crc(mark, &body).to_le_bytes());
        record.extend_from_slice(&mark.to_le_bytes());
        record.extend_from_slice(&body);
        self.file.write_all_at(&record, self.len)?;
        self.len += record.len() as u64;
        Ok(())
    }

    /// Bytes of records not yet covered by a checkpoint.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Forget every record: a checkpoint covers them all.
    pub fn clear(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.len = 0;
        Ok(())
    }

    /// A second handle for the syncer thread's `fdatasync`.
    pub fn sync_handle(&self) -> io::Result<File> {
        self.file.try_clone()
    }
}

fn crc(mark: u64, body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&mark.to_le_bytes());
    h.update(body);
    h.finalize()
}

/// The whole record at `at`: its mark, body, and where the next one starts.
fn record_at(bytes: &[u8], at: usize) -> Option<(u64, &[u8], usize)> {
    let header = bytes.get(at..at + HEADER)?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    let sum = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let mark = u64::from_le_bytes(header[8..16].try_into().ok()?);
    let body = bytes.get(at + HEADER..at + HEADER + len)?;
    (crc(mark, body) == sum).then_some((mark, body, at + HEADER + len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Condition;

    fn put(key: &str) -> Redo {
        Redo::new(
            vec![Op::Put {
                key: key.into(),
                value: b"v".to_vec(),
                condition: Condition::None,
                expires_at_ms: None,
            }],
            7,
        )
    }

    #[test]
    fn records_come_back_in_order_and_a_torn_tail_ends_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("redo");
        let (a, b, c) = (put("a"), put("b"), put("c"));
        {
            let (mut log, old) = RedoLog::open(&path).unwrap();
            assert!(old.is_empty());
            log.append(1, &[&a, &b]).unwrap();
            log.append(2, &[&c]).unwrap();
        }
        let (_, records) = RedoLog::open(&path).unwrap();
        let put_b = b.clone();
        assert_eq!(records, vec![(1, vec![a.clone(), b]), (2, vec![c])]);

        // A crash mid-append: the second record loses its last byte.
        let full = std::fs::metadata(&path).unwrap().len();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(full - 1)
            .unwrap();
        let (mut log, records) = RedoLog::open(&path).unwrap();
        assert_eq!(records, vec![(1, vec![a.clone(), put_b])]);
        // Appending after a torn tail overwrites it.
        log.append(3, &[&a]).unwrap();
        let (_, records) = RedoLog::open(&path).unwrap();
        assert_eq!(records.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn a_flipped_bit_ends_the_log_and_clear_empties_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("redo");
        let (mut log, _) = RedoLog::open(&path).unwrap();
        log.append(1, &[&put("a")]).unwrap();
        log.append(2, &[&put("b")]).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let (mut log, records) = RedoLog::open(&path).unwrap();
        assert_eq!(records.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1]);
        log.clear().unwrap();
        assert_eq!(log.len(), 0);
        let (_, records) = RedoLog::open(&path).unwrap();
        assert!(records.is_empty());
    }
}
