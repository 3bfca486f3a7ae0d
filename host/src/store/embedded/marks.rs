//! Durability marks: which commits readers may see, which are on disk, the
//! waits for a mark, and the syncer thread that answers them from the redo
//! log.
//!
//! Commits are numbered on from the mark the store opened at. A wait for a
//! mark is answered once a durable redb commit (a checkpoint) covers it, or
//! once its record is in the redo log and an `fdatasync` of the log begun
//! after the append has finished. The syncer syncs only while somebody waits,
//! and one `fdatasync` answers every wait whose record was appended before it
//! began: group commit, on a thread of its own, so the writer never waits for
//! the disk between checkpoints.

use super::super::{StoreError, StoreResult};
use super::writer::WriterStats;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::oneshot;

type Reply = oneshot::Sender<StoreResult<()>>;

/// Where the writer stands: readers may see every commit up to `visible`,
/// and every one up to `durable` is on disk.
#[derive(Debug)]
pub struct Marks {
    visible: AtomicU64,
    durable: AtomicU64,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// The newest mark whose writes are in the log (or in a checkpoint).
    logged: u64,
    waits: Vec<(u64, Reply)>,
    /// The log could not be appended to or synced: the writer checkpoints.
    failed: bool,
    stop: bool,
}

impl Marks {
    /// Marks for a store whose every commit up to `at` is durable.
    pub fn new(at: u64) -> Marks {
        Marks {
            visible: AtomicU64::new(at),
            durable: AtomicU64::new(at),
            state: Mutex::new(State {
                logged: at,
                ..State::default()
            }),
            wake: Condvar::new(),
        }
    }

    /// The newest commit a reader may have seen (or a write was part of).
    pub fn visible(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }

    pub fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Number the next commit, before it commits: a reader that sees it holds
    /// its mark.
    pub(super) fn next(&self) -> u64 {
        self.visible.fetch_add(1, Ordering::AcqRel) + 1
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Commit `mark` is in the log (or wrote nothing the log must keep).
    pub(super) fn logged(&self, mark: u64) {
        let mut st = self.state();
        st.logged = st.logged.max(mark);
        if !st.waits.is_empty() {
            self.wake.notify_one();
        }
    }

    /// A durable redb commit covers every commit up to `mark`.
    pub(super) fn checkpointed(&self, mark: u64) {
        let mut st = self.state();
        st.logged = st.logged.max(mark);
        st.failed = false;
        self.durable.fetch_max(mark, Ordering::AcqRel);
        self.answer(&mut st, mark, Ok(()));
    }

    /// A checkpoint failed: if the log cannot make the waits durable either,
    /// they fail.
    pub(super) fn checkpoint_failed(&self, error: &StoreError) {
        let mut st = self.state();
        if st.failed {
            self.answer(&mut st, u64::MAX, Err(error.clone()));
        }
    }

    /// The log could not take a record: the waits wait for a checkpoint.
    pub(super) fn log_failed(&self) {
        self.state().failed = true;
    }

    /// Whether the log failed since the last checkpoint, which the writer
    /// then makes at once.
    pub(super) fn needs_checkpoint(&self) -> bool {
        self.state().failed
    }

    /// Resolves once every commit up to `mark` is durable.
    pub async fn wait(&self, mark: u64) -> StoreResult<()> {
        let answer = {
            let mut st = self.state();
            if self.durable() >= mark {
                return Ok(());
            }
            if st.stop {
                return Err(StoreError::Unavailable("store writer has stopped".into()));
            }
            let (reply, answer) = oneshot::channel();
            st.waits.push((mark, reply));
            self.wake.notify_one();
            answer
        };
        answer
            .await
            .map_err(|_| StoreError::Unavailable("store writer dropped a durable wait".into()))?
    }

    /// Answer every wait up to `mark`.
    fn answer(&self, st: &mut State, mark: u64, result: StoreResult<()>) {
        let (done, left) = std::mem::take(&mut st.waits)
            .into_iter()
            .partition(|(m, _)| *m <= mark);
        st.waits = left;
        for (_, reply) in done {
            let _ = reply.send(result.clone());
        }
    }

    /// The syncer thread: `fdatasync` the log while somebody waits for a
    /// mark in it; returns once [`Marks::stop`] is called.
    pub(super) fn sync(&self, log: File, stats: &WriterStats) {
        let mut st = self.state();
        loop {
            let target = st.logged;
            let wanted =
                !st.failed && target > self.durable() && st.waits.iter().any(|(m, _)| *m <= target);
            if !wanted {
                if st.stop {
                    break;
                }
                st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            drop(st);
            let started = Instant::now();
            let synced = log.sync_data();
            stats.log_synced(started.elapsed());
            st = self.state();
            match synced {
                Ok(()) => {
                    self.durable.fetch_max(target, Ordering::AcqRel);
                    self.answer(&mut st, target, Ok(()));
                }
                Err(e) => {
                    // The waits stay: the writer's next checkpoint answers them.
                    tracing::error!(error = %e, "syncing the store's redo log failed");
                    st.failed = true;
                }
            }
        }
        let closed = Err(StoreError::Unavailable("store writer has stopped".into()));
        self.answer(&mut st, u64::MAX, closed);
    }

    /// Stop the syncer (the writer is done; its last checkpoint is on disk).
    pub(super) fn stop(&self) {
        self.state().stop = true;
        self.wake.notify_all();
    }
}
