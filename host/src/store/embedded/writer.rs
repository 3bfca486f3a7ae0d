//! Group commit: one writer thread applies every waiting write to a single redb
//! transaction and commits (fsyncs) once for all of them.
//!
//! A commit with fsync costs a fraction of a millisecond to milliseconds; one
//! per request caps a store at a few thousand writes per second (measured here:
//! ~5.9k fsync/s). Under load, writes queue up while a commit is in flight and
//! the next commit takes them all, so throughput grows with concurrency while
//! every acknowledged write is durable.
//!
//! A component call writes several times (a hold: three transactions), and
//! waiting for the disk after each one made a hold wait for three fsyncs in a
//! row (issue #17). So a write may also be *early*: it is answered once it is
//! committed without fsync (redb's `Durability::None`: visible to every
//! reader, lost in a crash), and whoever made it waits for [`Writer::durable`]
//! before anything it learned leaves the host. The writer makes a commit
//! durable when somebody waits for one and no other write is waiting, or
//! when the oldest of them has waited [`MAX_DURABLE_DELAY`]: one fsync then
//! covers whole requests, not a third of each. Every write is numbered by a
//! [`Marks`] sequence, so a caller waits only for what it wrote or read.
//!
//! Jobs are applied in arrival order and see each other's writes, so their
//! semantics are exactly those of running them one by one. A job reads and
//! checks before it writes, so a logical failure (a condition that does not
//! hold) leaves nothing behind; a storage error aborts the whole batch and every
//! job in it reports the failure.

use super::super::{StoreError, StoreResult};
use redb::{Database, WriteTransaction};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The most writes one commit takes.
const MAX_BATCH: usize = 1024;

/// The longest a wait for durability is put off while writes keep coming.
const MAX_DURABLE_DELAY: Duration = Duration::from_millis(1);

/// How long early writes stay without fsync when nobody waits for them (a
/// call that was cancelled before it asked).
const IDLE_DURABLE: Duration = Duration::from_millis(100);

/// Commit statistics (for metrics and benchmarks).
#[derive(Debug, Default)]
pub struct WriterStats {
    pub commits: AtomicU64,
    /// The commits that waited for the disk.
    pub durable_commits: AtomicU64,
    pub writes: AtomicU64,
    /// Nanoseconds the writer spent applying writes to its transactions
    /// (CPU), and committing them (page writes and the fsync).
    pub apply_ns: AtomicU64,
    pub commit_ns: AtomicU64,
    /// Of `commit_ns`, the durable commits'.
    pub durable_commit_ns: AtomicU64,
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
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// Where the writer stands: commits are numbered from 1; readers may see
/// every commit up to `visible`, and every one up to `durable` is on disk.
#[derive(Debug, Default)]
pub struct Marks {
    visible: AtomicU64,
    durable: AtomicU64,
}

impl Marks {
    /// The newest commit a reader may have seen (or a write was part of).
    pub fn visible(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }

    fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }
}

trait Job: Send {
    /// Answered before its commit is durable.
    fn early(&self) -> bool;
    fn apply(&mut self, txn: &WriteTransaction) -> Result<(), redb::Error>;
    fn finish(self: Box<Self>, committed: StoreResult<()>);
}

struct Pending<R, F> {
    early: bool,
    work: Option<F>,
    outcome: Option<StoreResult<R>>,
    reply: oneshot::Sender<StoreResult<R>>,
}

impl<R, F> Job for Pending<R, F>
where
    R: Send,
    F: FnOnce(&WriteTransaction) -> Result<StoreResult<R>, redb::Error> + Send,
{
    fn early(&self) -> bool {
        self.early
    }

    fn apply(&mut self, txn: &WriteTransaction) -> Result<(), redb::Error> {
        if let Some(work) = self.work.take() {
            self.outcome = Some(work(txn)?);
        }
        Ok(())
    }

    fn finish(self: Box<Self>, committed: StoreResult<()>) {
        let result = match committed {
            Ok(()) => self
                .outcome
                .unwrap_or_else(|| Err(StoreError::Unavailable("write was not applied".into()))),
            Err(e) => Err(e),
        };
        let _ = self.reply.send(result);
    }
}

/// What the writer thread is asked to do.
enum Request {
    Write(Box<dyn Job>),
    /// Answer once every commit up to the mark is durable.
    Durable(u64, oneshot::Sender<StoreResult<()>>),
}

/// Handle to the writer thread.
#[derive(Clone)]
pub struct Writer {
    requests: mpsc::Sender<Request>,
    pub stats: Arc<WriterStats>,
    pub marks: Arc<Marks>,
}

impl Writer {
    pub fn start(db: Arc<Database>) -> std::io::Result<Writer> {
        let (requests, rx) = mpsc::channel::<Request>();
        let stats = Arc::new(WriterStats::default());
        let marks = Arc::new(Marks::default());
        let thread = Thread {
            db,
            stats: stats.clone(),
            marks: marks.clone(),
            waiting: Vec::new(),
            waiting_since: None,
        };
        std::thread::Builder::new()
            .name("tacos-store-writer".into())
            .spawn(move || thread.run(&rx))?;
        Ok(Writer {
            requests,
            stats,
            marks,
        })
    }

    /// Run `work` in the next group commit; resolves once it is durable.
    pub async fn write<R, F>(&self, work: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<StoreResult<R>, redb::Error> + Send + 'static,
    {
        self.submit(false, work).await
    }

    /// Run `work` in the next group commit; resolves once it is visible to
    /// readers, before it is durable: the caller must wait for
    /// [`Writer::durable`] of [`Marks::visible`] before anything it learned
    /// leaves the host.
    pub async fn write_early<R, F>(&self, work: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<StoreResult<R>, redb::Error> + Send + 'static,
    {
        self.submit(true, work).await
    }

    async fn submit<R, F>(&self, early: bool, work: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<StoreResult<R>, redb::Error> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            early,
            work: Some(work),
            outcome: None,
            reply,
        });
        self.send(Request::Write(job))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("store writer dropped a write".into()))?
    }

    /// Resolves once every commit up to `mark` is durable.
    pub async fn durable(&self, mark: u64) -> StoreResult<()> {
        if self.marks.durable() >= mark {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        self.send(Request::Durable(mark, reply))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("store writer dropped a durable wait".into()))?
    }

    fn send(&self, request: Request) -> StoreResult<()> {
        self.requests
            .send(request)
            .map_err(|_| StoreError::Unavailable("store writer has stopped".into()))
    }
}

/// The writer thread's own state.
struct Thread {
    db: Arc<Database>,
    stats: Arc<WriterStats>,
    marks: Arc<Marks>,
    /// Waits for durability not answered yet, and since when the oldest waits.
    waiting: Vec<oneshot::Sender<StoreResult<()>>>,
    waiting_since: Option<Instant>,
}

impl Thread {
    fn run(mut self, rx: &mpsc::Receiver<Request>) {
        loop {
            // Block only when nothing waits to be made durable.
            let first = if !self.waiting.is_empty() {
                rx.try_recv().ok()
            } else if self.marks.durable() < self.marks.visible() {
                match rx.recv_timeout(IDLE_DURABLE) {
                    Ok(r) => Some(r),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(r) => Some(r),
                    Err(_) => break,
                }
            };
            let mut batch = Vec::new();
            let mut next = first;
            while let Some(request) = next {
                match request {
                    Request::Write(job) => batch.push(job),
                    Request::Durable(mark, reply) => self.wait(mark, reply),
                }
                next = (batch.len() < MAX_BATCH)
                    .then(|| rx.try_recv().ok())
                    .flatten();
            }
            // Durable when a write asks for it, when a durable wait has
            // nothing else to wait behind or has waited long enough, or when
            // early writes have stayed without fsync while the writer idled.
            let overdue = self
                .waiting_since
                .is_some_and(|t| t.elapsed() >= MAX_DURABLE_DELAY);
            let durable = batch.iter().any(|j| !j.early())
                || overdue
                || (batch.is_empty() && self.marks.durable() < self.marks.visible());
            if batch.is_empty() && !durable {
                continue;
            }
            let committed = self.commit(&mut batch, durable).map_err(|e| {
                tracing::error!(error = %e, writes = batch.len(), "store commit failed");
                StoreError::Unavailable(e.to_string())
            });
            for job in batch {
                job.finish(committed.clone());
            }
            if durable {
                self.waiting_since = None;
                for reply in self.waiting.drain(..) {
                    let _ = reply.send(committed.clone());
                }
            }
        }
        // Early writes nobody waited for: made durable on the way out.
        if self.marks.durable() < self.marks.visible() {
            let _ = self.commit(&mut [], true);
        }
    }

    /// Take a durable wait, or answer it if it is durable already.
    fn wait(&mut self, mark: u64, reply: oneshot::Sender<StoreResult<()>>) {
        if self.marks.durable() >= mark {
            let _ = reply.send(Ok(()));
            return;
        }
        self.waiting_since.get_or_insert_with(Instant::now);
        self.waiting.push(reply);
    }

    fn commit(&self, batch: &mut [Box<dyn Job>], durable: bool) -> Result<(), redb::Error> {
        let started = Instant::now();
        let mut txn = self.db.begin_write()?;
        if !durable {
            txn.set_durability(redb::Durability::None)?;
        }
        for job in batch.iter_mut() {
            job.apply(&txn)?;
        }
        let applied = Instant::now();
        // Numbered before it commits: a reader that sees it holds its mark.
        let mark = self.marks.visible.fetch_add(1, Ordering::AcqRel) + 1;
        txn.commit()?;
        let ns = |d: Duration| d.as_nanos() as u64;
        let stats = &self.stats;
        if durable {
            self.marks.durable.store(mark, Ordering::Release);
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
