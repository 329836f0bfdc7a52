//! The cache's single writer during a sync: a blocking thread that owns one `Store`
//! connection and runs jobs in the order they are sent, so downloading the next page
//! overlaps with parsing and writing the last one. Readers elsewhere use their own
//! connections (WAL), so a sync never blocks them.
//!
//! Page writes are grouped: a transaction stays open for the page jobs that arrive within
//! `group_for` of its start, longer in a large cache file (`group_length`), each with its
//! checkpoint, so the last committed checkpoint still names exactly what is in the cache.
//! Random upstream ids scatter every page over the same index pages; one commit for several
//! pages writes and encrypts those once. A job that needs the whole store ends the group
//! at once (it commits first), and so does the sender going away. After a failed group the
//! writer stops, so no later page can commit past a lost one.
//!
//! The writer never copies the write-ahead log back into the cache file itself: a second
//! connection on a thread of its own does, after each commit (`checkpointer`). Copying back
//! ends by flushing the file to disk, which takes tens of milliseconds on a large sync; on
//! the writer's thread that was time spent writing nothing while pages queued up.
//!
//! The log only starts again from its beginning when a transaction begins with all of it
//! copied back, which a writer with pages always waiting never gives the checkpointer time
//! for: a 10,000-patient first sync grew it past the size of the cache file itself, and
//! deleting it at the end held up the sync's last 40 ms. So once the log has grown past
//! `LOG_LIMIT`, the writer waits for the checkpointer to copy it all back before its next
//! group of pages (the pages meanwhile keep downloading and parsing).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TrySendError};
use std::time::{Duration, Instant};

use lifeboat_store::{CacheTx, Store, StoreError};
use tokio::sync::oneshot;

/// Jobs that may wait for the writer: enough for the download to run ahead, while holding
/// only a few parsed pages in memory.
const QUEUE: usize = 8;

/// How long the write-ahead log may grow before the writer has it copied back and started
/// again (see the module's comment): a few of a large sync's commits.
pub(crate) const LOG_LIMIT: u64 = 16 << 20;

type StoreJob = Box<dyn FnOnce(&mut Store) + Send>;
/// Runs inside a group's transaction; returns why it failed (if it did) and what to report
/// once the group has committed or been rolled back.
type TxJob = Box<dyn FnOnce(&CacheTx<'_>) -> (Option<String>, Report) + Send>;
type Report = Box<dyn FnOnce(Result<(), &str>) + Send>;

enum Job {
    /// Runs alone, with the whole store (reads, or its own transaction).
    Store(StoreJob),
    /// Runs in a transaction shared with the other transaction jobs waiting beside it.
    Tx(TxJob),
}

pub(crate) struct Writer {
    jobs: mpsc::SyncSender<Job>,
    thread: std::thread::JoinHandle<()>,
    checkpointer: std::thread::JoinHandle<()>,
}

/// The writer thread went away (it panicked or its connection failed hard).
#[derive(Debug)]
pub(crate) struct WriterGone;

/// Why a transaction job's work is not in the cache.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// The job itself failed.
    Store(StoreError),
    /// Another job of its group failed, or the group's commit did: all of it was rolled back.
    Group(String),
}

impl Writer {
    /// A writer over `store`, with `checkpoints` (a second connection to the same cache)
    /// copying its commits back into the file, and the log kept within about `log_limit`
    /// bytes; a group's transaction stays open `group_for` for more pages, up to
    /// `MAX_STRETCH` times that in a large cache. A crash loses at most that much work
    /// (fetched again on resume); a few commits a second keep what a large sync writes
    /// again and again (index pages) to a few writes.
    pub(crate) fn spawn(
        mut store: Store,
        checkpoints: Store,
        group_for: Duration,
        log_limit: u64,
    ) -> Self {
        let (jobs, rx) = mpsc::sync_channel::<Job>(QUEUE);
        let (copier, checkpointer) = checkpointer(checkpoints);
        let thread = std::thread::Builder::new()
            .name("lifeboat-cache-writer".into())
            .spawn(move || {
                let mut next = rx.recv().ok();
                while let Some(job) = next.take() {
                    match job {
                        // Not held up for the log: these are few and small (an index
                        // build, the run's outcome), and the last of them come after the
                        // last page, where a wait would only make the sync end later.
                        Job::Store(f) => f(&mut store),
                        Job::Tx(first) => {
                            copier.keep_log_within(log_limit);
                            match run_group(&mut store, first, &rx, group_for) {
                                Some(after) => {
                                    copier.committed();
                                    next = after;
                                }
                                // Nothing queued after a failed write may land (a later
                                // page's checkpoint would skip the lost one): stop, and
                                // every waiting job learns the writer has gone.
                                None => break,
                            }
                        }
                    }
                    if next.is_none() {
                        next = rx.recv().ok();
                    }
                }
                // Closed before the checkpointer learns the writer has gone, so that its
                // connection is the last and removes the log: two closing at once can
                // each find the other still open, and leave the log behind.
                drop(store);
                drop(copier);
            })
            .expect("the cache writer thread can be started");
        Self {
            jobs,
            thread,
            checkpointer,
        }
    }

    /// Waits, off the async threads, for the writer to run every job queued and close its
    /// connection: everything it was given is then committed, and other connections see
    /// it. What is left is the checkpointer's tidying (see `Tidying`), returned to be waited
    /// for when it suits. Dropped instead of finished, the two threads do the same on their
    /// own; but a process that ends meanwhile runs SQLCipher's exit handler, which frees
    /// what they are still using (a test that dropped its writer crashed now and then as it
    /// ended), so whatever is about to end the process finishes its writer first, and
    /// waits for its tidying.
    pub(crate) async fn finish(self) -> Tidying {
        let Self {
            jobs,
            thread,
            checkpointer,
        } = self;
        drop(jobs);
        // A writer that panicked has already failed every job waiting on it; either way
        // its end wakes the checkpointer for the last time.
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        Tidying(Some(checkpointer))
    }

    /// Queues `f` to run alone with the store; its result arrives on the returned receiver.
    pub(crate) async fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> T + Send + 'static,
    ) -> Result<oneshot::Receiver<T>, WriterGone> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Store(Box::new(move |store: &mut Store| {
            let _ = tx.send(f(store));
        })))
        .await?;
        Ok(rx)
    }

    /// Runs `f` alone and waits for its result.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> T + Send + 'static,
    ) -> Result<T, WriterGone> {
        self.submit(f).await?.await.map_err(|_| WriterGone)
    }

    /// Queues `f` to run in a transaction, shared with the transaction jobs queued beside
    /// it. Its result arrives once that transaction has committed; if any job of the group
    /// fails, or the commit does, the whole group is rolled back and every job of it gets
    /// an error.
    pub(crate) async fn submit_in_transaction<T: Send + 'static>(
        &self,
        f: impl FnOnce(&CacheTx<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<oneshot::Receiver<Result<T, WriteError>>, WriterGone> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Tx(Box::new(move |cache: &CacheTx<'_>| {
            let result = f(cache);
            let failure = result.as_ref().err().map(ToString::to_string);
            let report: Report = Box::new(move |group: Result<(), &str>| {
                let _ = tx.send(match (result, group) {
                    (Err(e), _) => Err(WriteError::Store(e)),
                    (Ok(v), Ok(())) => Ok(v),
                    (Ok(_), Err(why)) => Err(WriteError::Group(why.to_string())),
                });
            });
            (failure, report)
        })))
        .await?;
        Ok(rx)
    }

    /// Queues `job`; when the queue is full, waits for room off the async threads.
    async fn send(&self, job: Job) -> Result<(), WriterGone> {
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(_)) => Err(WriterGone),
            Err(TrySendError::Full(job)) => {
                let jobs = self.jobs.clone();
                tokio::task::spawn_blocking(move || jobs.send(job))
                    .await
                    .map_err(|_| WriterGone)?
                    .map_err(|_| WriterGone)
            }
        }
    }
}

/// The checkpointer's last work once the writer has gone: copying the last commits back
/// into the cache file, flushing it to disk, and closing its connection, which as the last
/// one removes the write-ahead log (tens of milliseconds after a large sync, most of it the
/// flush and the removal). It changes nothing any connection sees: the commits are already
/// in the log, read from there until copied. Dropping it waits for it.
pub(crate) struct Tidying(Option<std::thread::JoinHandle<()>>);

impl Tidying {
    /// Waits for it off the async threads.
    pub(crate) async fn done(self) {
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
    }
}

impl Drop for Tidying {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}

/// The writer's side of the checkpointer: each wake-up asks for one copy back, and may
/// carry a sender to answer once it is done.
struct Copier {
    wake: mpsc::SyncSender<Option<mpsc::SyncSender<()>>>,
    /// The log's length in bytes when last copied back.
    log: Arc<AtomicU64>,
}

impl Copier {
    /// After a commit: copy it back soon (a wake-up already waiting covers it too).
    fn committed(&self) {
        let _ = self.wake.try_send(None);
    }

    /// Before a transaction: if the log had grown past `limit` when last copied back, waits
    /// for a copy back of all of it, so the transaction starts the log again. (A reader
    /// holding an older snapshot can keep it from starting again: then the next
    /// transaction waits for one more copy back, and so on until the reader lets go.)
    fn keep_log_within(&self, limit: u64) {
        if self.log.load(Ordering::Relaxed) <= limit {
            return;
        }
        let (done, copied) = mpsc::sync_channel(1);
        if self.wake.send(Some(done)).is_ok() {
            let _ = copied.recv();
        }
        self.log.store(0, Ordering::Relaxed);
    }
}

/// A thread copying the write-ahead log back into the cache file through `store` each time
/// it is woken (by the writer, after a commit), and once more when the writer has gone;
/// then it closes `store`, which as the last connection also removes the log. A copy that
/// fails (a reader holding an old snapshot only makes it partial) is left to the next.
fn checkpointer(store: Store) -> (Copier, std::thread::JoinHandle<()>) {
    let (wake, woken) = mpsc::sync_channel::<Option<mpsc::SyncSender<()>>>(1);
    let log = Arc::new(AtomicU64::new(0));
    let length = Arc::clone(&log);
    let thread = std::thread::Builder::new()
        .name("lifeboat-checkpointer".into())
        .spawn(move || {
            let copy_back = || match store.checkpoint() {
                Ok(bytes) => length.store(bytes, Ordering::Relaxed),
                Err(e) => {
                    tracing::warn!(error = %e, "could not copy the cache's log back into its file yet");
                }
            };
            while let Ok(waiting) = woken.recv() {
                copy_back();
                if let Some(done) = waiting {
                    let _ = done.send(());
                }
            }
            copy_back();
        })
        .expect("the cache checkpointer thread can be started");
    (Copier { wake, log }, thread)
}

/// Cache file per `group_for` a group stays open (see `group_length`). The indexes that are
/// written again grow with the rows, not the file: since the raw JSON is stored compressed
/// (schema 7) a practice's file is about 0.6 times what it was, and this was halved with it:
/// a 100,000-patient first sync then wrote 1,366 MiB instead of 1,767 MiB.
const STRETCH_PER: u64 = 32 << 20;
/// At most this many times `group_for` (a second at the sync's 200 ms): what a crash may
/// lose, and how long progress may wait for a commit to report.
const MAX_STRETCH: u64 = 5;

/// How long a group stays open in a cache file of `cache_bytes`: `group_for` for each
/// `STRETCH_PER` of it, at least once and at most `MAX_STRETCH` times. Upstream ids are
/// random, so each commit writes again nearly every page of each index its pages went
/// into, and those indexes grow with the file: at a fixed length, a practice ten times
/// larger wrote ten times as much per commit, as often (a 100,000-patient sync wrote
/// about eight times its file).
fn group_length(cache_bytes: u64, group_for: Duration) -> Duration {
    let stretch = (cache_bytes / STRETCH_PER).clamp(1, MAX_STRETCH);
    group_for * u32::try_from(stretch).unwrap_or(1)
}

/// Runs `first` and the transaction jobs arriving within the group's length
/// (`group_length`) in one transaction, commits it if every job succeeded (else rolls it
/// back), and reports the outcome to each job. Returns `None` if it did not commit, else
/// the job that ended the group, if any.
fn run_group(
    store: &mut Store,
    first: TxJob,
    rx: &mpsc::Receiver<Job>,
    group_for: Duration,
) -> Option<Option<Job>> {
    // A size that cannot be read counts as small: the shortest group.
    let length = group_length(store.size().unwrap_or(0), group_for);
    let tx = match store.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            // Nothing can run; dropping the jobs tells each waiting side the writer failed.
            tracing::warn!(error = %e, "the cache writer could not start a transaction");
            return None;
        }
    };
    let until = Instant::now() + length;
    let mut reports = Vec::new();
    let mut failure = None;
    let mut after = None;
    let mut job = Some(first);
    while let Some(run) = job.take() {
        let (failed, report) = run(&tx);
        reports.push(report);
        if failed.is_some() {
            // The group is rolled back: nothing more joins it.
            failure = failed;
            break;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match rx.recv_timeout(left) {
            Ok(Job::Tx(f)) => job = Some(f),
            Ok(other) => after = Some(other),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
    }
    let outcome = match failure {
        Some(why) => {
            drop(tx); // rolls back
            Err(why)
        }
        None => tx.commit().map_err(|e| e.to_string()),
    };
    for report in reports {
        report(outcome.as_ref().map(|_| ()).map_err(String::as_str));
    }
    outcome.ok().map(|()| after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_store::CacheKey;

    const KEY: CacheKey = CacheKey::from_bytes([3; 32]);

    fn store(dir: &tempfile::TempDir) -> Store {
        Store::open(dir.path().join("cache.db"), &KEY).unwrap()
    }

    /// A writer as a sync has it: its own commits never copied back into the file.
    fn writer(dir: &tempfile::TempDir) -> Writer {
        writer_keeping_log_within(dir, LOG_LIMIT)
    }

    fn writer_keeping_log_within(dir: &tempfile::TempDir, log_limit: u64) -> Writer {
        let store = store(dir);
        store.relax_durability_for_refetchable_data().unwrap();
        Writer::spawn(
            store,
            self::store(dir),
            Duration::from_millis(250),
            log_limit,
        )
    }

    fn set(key: &'static str) -> impl FnOnce(&CacheTx<'_>) -> Result<(), StoreError> {
        move |tx: &CacheTx<'_>| tx.set_setting(key, "written")
    }

    #[tokio::test]
    async fn waiting_writes_commit_together_and_each_is_answered() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir);
        let mut answers = Vec::new();
        for key in ["a", "b", "c", "d"] {
            answers.push(writer.submit_in_transaction(set(key)).await.unwrap());
        }
        for answer in answers {
            answer.await.unwrap().unwrap();
        }
        let check = store(&dir);
        for key in ["a", "b", "c", "d"] {
            assert_eq!(check.setting(key).unwrap().as_deref(), Some("written"));
        }
        writer.finish().await;
    }

    #[tokio::test]
    async fn a_job_needing_the_whole_store_runs_after_the_open_group_has_committed() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir);
        let page = writer.submit_in_transaction(set("page")).await.unwrap();
        // Asked at once, well inside the group's time: another connection already sees it.
        let path = dir.path().to_path_buf();
        let seen = writer
            .run(move |_: &mut Store| {
                let other = Store::open(path.join("cache.db"), &KEY);
                other.unwrap().setting("page").unwrap()
            })
            .await
            .unwrap();
        assert_eq!(seen.as_deref(), Some("written"));
        page.await.unwrap().unwrap();
        // A lone page commits without anything after it.
        let lone = writer.submit_in_transaction(set("lone")).await.unwrap();
        lone.await.unwrap().unwrap();
        assert_eq!(
            store(&dir).setting("lone").unwrap().as_deref(),
            Some("written")
        );
        writer.finish().await;
    }

    #[tokio::test]
    async fn finish_returns_once_every_job_has_run_and_its_tidying_removes_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir);
        let page = writer.submit_in_transaction(set("page")).await.unwrap();
        // Queued, not waited for: a slow last job.
        let _slow = writer
            .submit(|store: &mut Store| {
                std::thread::sleep(Duration::from_millis(300));
                let tx = store.transaction().unwrap();
                tx.set_setting("last", "written").unwrap();
                tx.commit().unwrap();
            })
            .await
            .unwrap();
        let tidying = writer.finish().await;
        page.await.unwrap().unwrap();
        // Everything is committed, seen by another connection whether or not the tidying
        // has ended.
        assert_eq!(
            store(&dir).setting("last").unwrap().as_deref(),
            Some("written")
        );
        tidying.done().await;
        // Both connections are closed: the last to close took the log away.
        assert!(!dir.path().join("cache.db-wal").exists());
    }

    #[tokio::test]
    async fn each_commit_is_copied_back_into_the_file_without_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir);
        writer
            .submit_in_transaction(set("page"))
            .await
            .unwrap()
            .await
            .unwrap()
            .unwrap();
        // The cache file alone (copied without its log) holds only what was copied back.
        let alone = tempfile::tempdir().unwrap();
        let in_file_alone = || {
            std::fs::copy(dir.path().join("cache.db"), alone.path().join("cache.db")).unwrap();
            // A copy taken while the checkpointer was writing may be torn: not there yet.
            let copy = Store::open(alone.path().join("cache.db"), &KEY);
            copy.ok()?.setting("page").unwrap()
        };
        let waited = Instant::now();
        while in_file_alone().is_none() {
            assert!(
                waited.elapsed() < Duration::from_secs(10),
                "the commit was never copied back"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        writer.finish().await;
    }

    #[tokio::test]
    async fn nothing_queued_after_a_failed_write_lands() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir);
        let before = writer.submit_in_transaction(set("before")).await.unwrap();
        let failing = writer
            .submit_in_transaction(|tx: &CacheTx<'_>| {
                // Half its work done, then a failure (as a full disk would give).
                tx.set_setting("failing", "half")?;
                Err::<(), _>(StoreError::SchemaTooNew { found: 9, known: 4 })
            })
            .await
            .unwrap();
        // A job queued behind the failure (it cannot share its transaction) never runs:
        // the writer has stopped.
        assert!(writer.run(|_: &mut Store| ()).await.is_err());
        let after = writer.submit_in_transaction(set("after")).await;

        let _ = before.await;
        assert!(matches!(failing.await, Ok(Err(WriteError::Store(_)))));
        if let Ok(after) = after {
            assert!(!matches!(after.await, Ok(Ok(()))));
        }
        let check = store(&dir);
        assert_eq!(check.setting("failing").unwrap(), None);
        assert_eq!(check.setting("after").unwrap(), None);
        writer.finish().await;
    }

    #[tokio::test]
    async fn the_log_starts_again_once_it_has_grown_past_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer_keeping_log_within(&dir, 1 << 20);
        // One commit straight after another, as in a sync where pages queue up.
        let (mut pages, mut ends) = (Vec::new(), Vec::new());
        for n in 0..100 {
            let page = writer
                .submit_in_transaction(move |tx: &CacheTx<'_>| {
                    tx.set_setting(&format!("big {n}"), &"x".repeat(200_000))
                })
                .await
                .unwrap();
            pages.push(page);
            // Ends the group at once: one commit each.
            ends.push(writer.submit(|_: &mut Store| ()).await.unwrap());
        }
        for (page, end) in pages.into_iter().zip(ends) {
            page.await.unwrap().unwrap();
            end.await.unwrap();
        }
        let log = dir.path().join("cache.db-wal");
        let longest = std::fs::metadata(&log).unwrap().len();
        writer.finish().await;
        // Never started again, it grew past 20 MB; kept to 1 MiB, it stayed under 4 (8 here
        // leaves room for a slow machine, where the copies lag further behind).
        assert!(longest < 8 << 20, "the log grew to {longest} bytes");
        assert_eq!(
            store(&dir).setting("big 99").unwrap().map(|v| v.len()),
            Some(200_000)
        );
    }

    #[test]
    fn a_group_stays_open_longer_as_the_cache_file_grows_within_a_bound() {
        let every = Duration::from_millis(100);
        let mib = |n: u64| n << 20;
        assert_eq!(group_length(0, every), every);
        assert_eq!(group_length(mib(50), every), every);
        assert_eq!(group_length(mib(64), every), 2 * every);
        assert_eq!(group_length(mib(100), every), 3 * every);
        assert_eq!(group_length(mib(200), every), 5 * every);
        assert_eq!(group_length(mib(100_000), every), 5 * every);
    }
}
