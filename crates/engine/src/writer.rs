//! The cache's single writer during a sync: a blocking thread that owns one `Store`
//! connection and runs jobs in the order they are sent, so downloading the next page
//! overlaps with parsing and writing the last one. Readers elsewhere use their own
//! connections (WAL), so a sync never blocks them.

use lifeboat_store::Store;
use tokio::sync::{mpsc, oneshot};

type Job = Box<dyn FnOnce(&mut Store) + Send>;

pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

/// The writer thread went away (it panicked or its connection failed hard).
#[derive(Debug)]
pub(crate) struct WriterGone;

impl Writer {
    pub(crate) fn spawn(mut store: Store) -> Self {
        // Two jobs queued at most: enough to overlap download and write, bounded memory.
        let (jobs, mut rx) = mpsc::channel::<Job>(2);
        std::thread::Builder::new()
            .name("lifeboat-cache-writer".into())
            .spawn(move || {
                while let Some(job) = rx.blocking_recv() {
                    job(&mut store);
                }
            })
            .expect("the cache writer thread can be started");
        Self { jobs }
    }

    /// Queues `f`; its result arrives on the returned receiver once it has run.
    pub(crate) async fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> T + Send + 'static,
    ) -> Result<oneshot::Receiver<T>, WriterGone> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move |store: &mut Store| {
                let _ = tx.send(f(store));
            }))
            .await
            .map_err(|_| WriterGone)?;
        Ok(rx)
    }

    /// Runs `f` and waits for its result.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> T + Send + 'static,
    ) -> Result<T, WriterGone> {
        self.submit(f).await?.await.map_err(|_| WriterGone)
    }
}
