//! Group commit: one writer thread applies every waiting write to a single redb
//! transaction and commits once for all of them.
//!
//! A commit with fsync costs a fraction of a millisecond to milliseconds; one
//! per request caps a store at a few thousand writes per second. Under load,
//! writes queue up while a commit is in flight and the next commit takes them
//! all, so throughput grows with concurrency.
//!
//! A component call writes several times (a hold: three transactions), and a
//! durable redb commit rewrites every B-tree page a batch touched (issue #17).
//! So a store transaction is *early*: the writer commits it without fsync
//! (redb's `Durability::None`: visible to every reader, not yet on disk),
//! appends it to the redo [`log`](super::log) and answers; whoever made it
//! waits on the [`Marks`] before anything it learned leaves the host, and the
//! syncer thread answers that wait with one `fdatasync` of the log for every
//! waiter. The writer makes a durable redb commit — a checkpoint, after which
//! the log starts empty — when a write asks for one (the queue's and the
//! host's own writes), when the log passes [`CHECKPOINT_BYTES`], or when it
//! has idled [`IDLE_CHECKPOINT`] by the host's clock (so a test on the
//! virtual clock decides when, or whether, an idle writer checkpoints).
//!
//! Jobs are applied in arrival order and see each other's writes, so their
//! semantics are exactly those of running them one by one. A job reads and
//! checks before it writes, so a logical failure (a condition that does not
//! hold) leaves nothing behind; a storage error aborts the whole batch and every
//! job in it reports the failure.

use super::super::{StoreError, StoreResult};
use super::log::{Redo, RedoLog};
use super::marks::Marks;
use super::{LOG_TABLE, apply_redo};
use crate::foundations::clock::Clock;
use redb::{Database, WriteTransaction};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The most writes one commit takes.
const MAX_BATCH: usize = 1024;

/// The redo log's size that calls for a checkpoint: it bounds the time to
/// replay the log on start, and a checkpoint's pause.
const CHECKPOINT_BYTES: u64 = 16 << 20;

/// How long the writer idles before it checkpoints what the log holds.
const IDLE_CHECKPOINT: Duration = Duration::from_millis(100);

/// Commit statistics (for metrics and benchmarks).
#[derive(Debug, Default)]
pub struct WriterStats {
    pub commits: AtomicU64,
    /// The commits that waited for the disk (checkpoints).
    pub durable_commits: AtomicU64,
    pub writes: AtomicU64,
    /// Nanoseconds the writer spent applying writes to its transactions
    /// (CPU), and committing them (page writes and, if durable, the fsync).
    pub apply_ns: AtomicU64,
    pub commit_ns: AtomicU64,
    /// Of `commit_ns`, the durable commits'.
    pub durable_commit_ns: AtomicU64,
    /// Bytes appended to the redo log, its `fdatasync`s and their time.
    pub log_bytes: AtomicU64,
    pub log_syncs: AtomicU64,
    pub log_sync_ns: AtomicU64,
}

impl WriterStats {
    /// The counts as JSON fields, for `/readyz`.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let seconds = |a: &AtomicU64| n(a) as f64 / 1e9;
        [
            ("commits", n(&self.commits).into()),
            ("durable_commits", n(&self.durable_commits).into()),
            ("writes", n(&self.writes).into()),
            ("apply_seconds", seconds(&self.apply_ns).into()),
            ("commit_seconds", seconds(&self.commit_ns).into()),
            (
                "durable_commit_seconds",
                seconds(&self.durable_commit_ns).into(),
            ),
            ("log_bytes", n(&self.log_bytes).into()),
            ("log_syncs", n(&self.log_syncs).into()),
            ("log_sync_seconds", seconds(&self.log_sync_ns).into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    pub(super) fn log_synced(&self, took: Duration) {
        self.log_syncs.fetch_add(1, Ordering::Relaxed);
        self.log_sync_ns
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }
}

/// A write waiting for the writer thread.
trait Job: Send {
    /// Answered once visible, made durable by the log.
    fn early(&self) -> bool;
    fn apply(&mut self, txn: &WriteTransaction) -> Result<(), redb::Error>;
    /// An early write that took effect: what the log replays.
    fn redo(&self) -> Option<&Redo>;
    fn finish(self: Box<Self>, committed: StoreResult<()>);
}

/// A write that is answered once durable: any work on the transaction.
struct Durable<R, F> {
    work: Option<F>,
    outcome: Option<StoreResult<R>>,
    reply: oneshot::Sender<StoreResult<R>>,
}

/// An early store transaction, answered once visible.
struct Early {
    redo: Redo,
    outcome: Option<StoreResult<Vec<u64>>>,
    reply: oneshot::Sender<StoreResult<Vec<u64>>>,
}

fn finish<R>(
    outcome: Option<StoreResult<R>>,
    committed: StoreResult<()>,
    reply: oneshot::Sender<StoreResult<R>>,
) {
    let result = match committed {
        Ok(()) => {
            outcome.unwrap_or_else(|| Err(StoreError::Unavailable("write was not applied".into())))
        }
        Err(e) => Err(e),
    };
    let _ = reply.send(result);
}

impl<R, F> Job for Durable<R, F>
where
    R: Send,
    F: FnOnce(&WriteTransaction) -> Result<StoreResult<R>, redb::Error> + Send,
{
    fn early(&self) -> bool {
        false
    }

    fn apply(&mut self, txn: &WriteTransaction) -> Result<(), redb::Error> {
        if let Some(work) = self.work.take() {
            self.outcome = Some(work(txn)?);
        }
        Ok(())
    }

    fn redo(&self) -> Option<&Redo> {
        None
    }

    fn finish(self: Box<Self>, committed: StoreResult<()>) {
        finish(self.outcome, committed, self.reply);
    }
}

impl Job for Early {
    fn early(&self) -> bool {
        true
    }

    fn apply(&mut self, txn: &WriteTransaction) -> Result<(), redb::Error> {
        self.outcome = Some(apply_redo(txn, &self.redo)?);
        Ok(())
    }

    fn redo(&self) -> Option<&Redo> {
        matches!(self.outcome, Some(Ok(_))).then_some(&self.redo)
    }

    fn finish(self: Box<Self>, committed: StoreResult<()>) {
        finish(self.outcome, committed, self.reply);
    }
}

/// Handle to the writer thread.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
    pub stats: Arc<WriterStats>,
    pub marks: Arc<Marks>,
}

impl Writer {
    /// Start the writer and the log's syncer on a store whose every commit up
    /// to `mark` is durable and whose log is empty.
    pub fn start(
        db: Arc<Database>,
        log: RedoLog,
        mark: u64,
        clock: Arc<Clock>,
    ) -> std::io::Result<Writer> {
        let (jobs, rx) = mpsc::channel::<Box<dyn Job>>();
        let stats = Arc::new(WriterStats::default());
        let marks = Arc::new(Marks::new(mark));
        let synced = log.sync_handle()?;
        let (m, s) = (marks.clone(), stats.clone());
        std::thread::Builder::new()
            .name("tacos-store-sync".into())
            .spawn(move || m.sync(synced, &s))?;
        let thread = Thread {
            db,
            log,
            clock,
            stats: stats.clone(),
            marks: marks.clone(),
        };
        std::thread::Builder::new()
            .name("tacos-store-writer".into())
            .spawn(move || thread.run(&rx))?;
        Ok(Writer { jobs, stats, marks })
    }

    /// Run `work` in the next group commit; resolves once it is durable.
    pub async fn write<R, F>(&self, work: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<StoreResult<R>, redb::Error> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.submit(Box::new(Durable {
            work: Some(work),
            outcome: None,
            reply,
        }))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("store writer dropped a write".into()))?
    }

    /// Run the store transaction in the next group commit; resolves once it
    /// is visible to readers, before it is durable: the caller must wait for
    /// [`Writer::durable`] of [`Marks::visible`] before anything it learned
    /// leaves the host.
    pub async fn write_early(&self, redo: Redo) -> StoreResult<Vec<u64>> {
        let (reply, answer) = oneshot::channel();
        self.submit(Box::new(Early {
            redo,
            outcome: None,
            reply,
        }))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("store writer dropped a write".into()))?
    }

    fn submit(&self, job: Box<dyn Job>) -> StoreResult<()> {
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Unavailable("store writer has stopped".into()))
    }

    /// Resolves once every commit up to `mark` is durable.
    pub async fn durable(&self, mark: u64) -> StoreResult<()> {
        self.marks.wait(mark).await
    }
}

/// The writer thread's own state.
struct Thread {
    db: Arc<Database>,
    log: RedoLog,
    clock: Arc<Clock>,
    stats: Arc<WriterStats>,
    marks: Arc<Marks>,
}

impl Thread {
    fn run(mut self, rx: &mpsc::Receiver<Box<dyn Job>>) {
        let idle_ms = IDLE_CHECKPOINT.as_millis() as u64;
        let mut last_write_ms = self.clock.now_ms();
        loop {
            // While the log holds writes, idling ends in a checkpoint.
            let first = if self.log.len() > 0 || self.marks.needs_checkpoint() {
                match rx.recv_timeout(IDLE_CHECKPOINT) {
                    Ok(job) => Some(job),
                    Err(mpsc::RecvTimeoutError::Timeout)
                        if self.clock.now_ms() < last_write_ms + idle_ms
                            && !self.marks.needs_checkpoint() =>
                    {
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(job) => Some(job),
                    Err(_) => break,
                }
            };
            let mut batch: Vec<Box<dyn Job>> = first.into_iter().collect();
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            last_write_ms = self.clock.now_ms();
            self.commit(batch);
        }
        // What the log holds is checkpointed on the way out.
        if self.log.len() > 0 {
            self.commit(Vec::new());
        }
        self.marks.stop();
    }

    /// Commit a batch (an empty one is a checkpoint) and answer its jobs.
    fn commit(&mut self, mut batch: Vec<Box<dyn Job>>) {
        // Durable when a write asks for it (an early write never does), when
        // the log is due for a checkpoint or cannot be synced, or to
        // checkpoint an idle writer's log.
        let durable = batch.is_empty()
            || batch.iter().any(|j| !j.early())
            || self.log.len() >= CHECKPOINT_BYTES
            || self.marks.needs_checkpoint();
        let mark = self.marks.next();
        let committed = match self.transact(&mut batch, mark, durable) {
            Ok(()) if durable => {
                self.marks.checkpointed(mark);
                if let Err(e) = self.log.clear() {
                    tracing::error!(error = %e, "clearing the store's redo log failed");
                }
                Ok(())
            }
            Ok(()) => {
                self.append(&batch, mark);
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, writes = batch.len(), "store commit failed");
                let e = StoreError::Unavailable(e.to_string());
                if durable {
                    self.marks.checkpoint_failed(&e);
                }
                self.marks.logged(mark);
                Err(e)
            }
        };
        for job in batch {
            job.finish(committed.clone());
        }
    }

    /// Append an early batch's record. If the log fails, the batch stays
    /// answered (it is visible) and its waits wait for the next checkpoint.
    fn append(&mut self, batch: &[Box<dyn Job>], mark: u64) {
        let redo: Vec<&Redo> = batch.iter().filter_map(|j| j.redo()).collect();
        if redo.is_empty() {
            self.marks.logged(mark);
            return;
        }
        let before = self.log.len();
        match self.log.append(mark, &redo) {
            Ok(()) => {
                let bytes = self.log.len() - before;
                self.stats.log_bytes.fetch_add(bytes, Ordering::Relaxed);
                self.marks.logged(mark);
            }
            Err(e) => {
                tracing::error!(error = %e, "appending to the store's redo log failed");
                self.marks.log_failed();
            }
        }
    }

    /// Apply the batch to one transaction and commit it.
    fn transact(
        &self,
        batch: &mut [Box<dyn Job>],
        mark: u64,
        durable: bool,
    ) -> Result<(), redb::Error> {
        let started = Instant::now();
        let mut txn = self.db.begin_write()?;
        if durable {
            // The log's records up to here need no replay after this commit.
            txn.open_table(LOG_TABLE)?.insert("applied", mark)?;
        } else {
            txn.set_durability(redb::Durability::None)?;
        }
        for job in batch.iter_mut() {
            job.apply(&txn)?;
        }
        let applied = Instant::now();
        txn.commit()?;
        let ns = |d: Duration| d.as_nanos() as u64;
        let stats = &self.stats;
        if durable {
            stats.durable_commits.fetch_add(1, Ordering::Relaxed);
            stats
                .durable_commit_ns
                .fetch_add(ns(applied.elapsed()), Ordering::Relaxed);
        }
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats
            .writes
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        stats
            .apply_ns
            .fetch_add(ns(applied - started), Ordering::Relaxed);
        stats
            .commit_ns
            .fetch_add(ns(applied.elapsed()), Ordering::Relaxed);
        Ok(())
    }
}
