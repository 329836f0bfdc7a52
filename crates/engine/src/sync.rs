//! Sync: keeps the cache a faithful copy of the upstream.
//!
//! Per resource type, a first (initial) pass pages through everything in scope, each page
//! written in one transaction together with its checkpoint (the next page's URL), so a sync
//! that is killed resumes from the last committed page and never half-writes. Later passes
//! are incremental: `_lastUpdated=gt<checkpoint>`, then a cheap id listing to find deletions
//! (neither Medplum nor GP Connect offers type-level history). Slots and appointments are
//! kept for a window around today. The checkpoint is the upstream's own clock, never ours:
//! the newest `lastUpdated` seen, but never later than the pass's start by the upstream's
//! `Date` header, so a change made while we page is not skipped. (`Date` has whole seconds:
//! a change made in the second a pass starts is fetched once more by the next pass, which is
//! harmless.)
//!
//! Initial sync runs three streams side by side, so the upstream always has a request
//! waiting: one fetches the day's work (schedules, slots and appointments, then the summaries
//! of the patients booked in the next few days, for the types not yet complete); the others
//! take the patients and their clinical entries a type at a time, and the first joins them
//! when the day's work is done. Each type keeps its own checkpoint, so the streams
//! interleave safely and resume apart.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use lifeboat_model::{CachedResource, Clock, ResourceKind};
use lifeboat_store::{CacheKey, CacheTx, CompressedJson, Store, StoreError, SyncState};
use lifeboat_upstream::{SearchPage, Upstream, UpstreamError};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};

use crate::writer::{LOG_LIMIT, Tidying, WriteError, Writer, WriterGone};

/// The order types are fetched in: the day's appointment book first.
const SYNC_ORDER: [ResourceKind; 14] = [
    ResourceKind::Practitioner,
    ResourceKind::Location,
    ResourceKind::Schedule,
    ResourceKind::Slot,
    ResourceKind::Appointment,
    ResourceKind::Patient,
    ResourceKind::Flag,
    ResourceKind::AllergyIntolerance,
    ResourceKind::MedicationStatement,
    ResourceKind::MedicationRequest,
    ResourceKind::Condition,
    ResourceKind::Observation,
    ResourceKind::Immunization,
    ResourceKind::Encounter,
];

/// Pages the sync's writer keeps in memory: a 10,000-patient practice's whole cache, so
/// building a deferred index once its table is complete (`Store::defer_indexes`) reads
/// back nothing it must decrypt again. With the usual 32 MiB, smaller than that practice's
/// clinical entries alone, the build of their index, at the very end of the sync, took
/// 78 ms on average instead of 43. Freed when the sync ends.
const WRITER_MEMORY: u64 = 128 << 20;

const PHASE_INITIAL: &str = "initial";
/// Page size when listing ids to find deletions.
const ID_PAGE: u32 = 1_000;
/// Settings: when the last complete sync started (what "data as of" means), and the last
/// sync failure (empty once a sync succeeds).
pub const DATA_AS_OF: &str = "sync.data_as_of";
pub const LAST_ERROR: &str = "sync.last_error";
const PHASE_COMPLETE: &str = "complete";

#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub page_size: u32,
    /// Slots and appointments are kept from this many days back...
    pub days_back: i64,
    /// ...to this many days ahead.
    pub days_ahead: i64,
    /// Patients booked within this many days get their summaries fetched first.
    pub priority_days: i64,
    /// Pages arriving within this long of each other's transaction share it, up to five
    /// times as long in a large cache (see `writer`): at most that much work is fetched
    /// again after a crash.
    pub commit_every: std::time::Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            page_size: 500,
            days_back: 14,
            days_ahead: 42,
            priority_days: 3,
            commit_every: std::time::Duration::from_millis(200),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PassKind {
    /// First copy (or its resumption).
    Initial,
    /// Booked patients' summaries, ahead of the full patient list.
    Priority,
    Incremental,
    /// Listing ids to find what the upstream deleted.
    Deletions,
}

/// Reported after every page, for progress bars.
#[derive(Debug, Clone, Serialize)]
pub struct SyncProgress {
    pub kind: ResourceKind,
    pub pass: PassKind,
    pub done: u64,
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct KindReport {
    pub fetched: u64,
    pub written: u64,
    pub rejected: u64,
    pub removed: u64,
    pub requests: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub kinds: Vec<(ResourceKind, PassKind, KindReport)>,
    pub elapsed_ms: u64,
}

impl SyncReport {
    pub fn total(&self) -> KindReport {
        self.kinds
            .iter()
            .fold(KindReport::default(), |mut t, (_, _, k)| {
                t.fetched += k.fetched;
                t.written += k.written;
                t.rejected += k.rejected;
                t.removed += k.removed;
                t.requests += k.requests;
                t
            })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("sync of {kind} stopped: {source}")]
    Upstream {
        kind: ResourceKind,
        #[source]
        source: UpstreamError,
    },
    #[error("sync stopped: {0}")]
    Store(#[from] StoreError),
    #[error("sync stopped: the cache writer stopped unexpectedly")]
    WriterGone,
    #[error("sync stopped: a page was not written to the cache: {0}")]
    NotWritten(String),
}

impl From<WriteError> for SyncError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Store(e) => Self::Store(e),
            WriteError::Group(why) => Self::NotWritten(why),
        }
    }
}

impl From<WriterGone> for SyncError {
    fn from(_: WriterGone) -> Self {
        Self::WriterGone
    }
}

/// Ends a run: builds the indexes a first sync left until its rows were in (see
/// `Store::defer_indexes`), whether or not the run succeeded, since an outage that cuts a
/// first sync short leaves the cache as all there is; then records how the run ended.
fn end_run(store: &mut Store, outcome: &(&str, String)) -> Result<(), StoreError> {
    if let Err(e) = store.build_deferred_indexes(None) {
        tracing::warn!(error = %e, "could not build the cache's indexes; the next sync will");
    }
    record_outcome(store, outcome)
}

/// Records how a run ended: the data's new "as of" time, or the error.
fn record_outcome(store: &mut Store, outcome: &(&str, String)) -> Result<(), StoreError> {
    let tx = store.transaction()?;
    tx.set_setting(outcome.0, &outcome.1)?;
    if outcome.0 == DATA_AS_OF {
        tx.set_setting(LAST_ERROR, "")?;
    }
    tx.commit()
}

/// Runs syncs of one cache against one upstream.
pub struct Syncer {
    upstream: Arc<Upstream>,
    db: std::path::PathBuf,
    key: CacheKey,
    clock: Arc<dyn Clock>,
    settings: SyncSettings,
    /// The last run's tidying of the cache file (see `Syncer::tidied`); dropping the
    /// syncer waits for it.
    tidying: std::sync::Mutex<Option<Tidying>>,
}

/// The window slots and appointments are kept for.
#[derive(Debug, Clone, Copy)]
struct Window {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Syncer {
    pub fn new(
        upstream: Arc<Upstream>,
        db: impl Into<std::path::PathBuf>,
        key: CacheKey,
        clock: Arc<dyn Clock>,
        settings: SyncSettings,
    ) -> Self {
        Self {
            upstream,
            db: db.into(),
            key,
            clock,
            settings,
            tidying: std::sync::Mutex::default(),
        }
    }

    /// Waits for the last run's tidying: its last commits copied back into the cache file
    /// and the write-ahead log removed. A run returns as soon as everything it fetched is
    /// committed and seen by other connections; this follows in the background (tens of
    /// milliseconds), and the next run, or dropping the syncer, waits for it.
    pub async fn tidied(&self) {
        let tidying = self
            .tidying
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(tidying) = tidying {
            tidying.done().await;
        }
    }

    /// One sync of every type: initial where a type has never completed (resuming where it
    /// stopped), incremental otherwise.
    pub async fn run(
        &self,
        progress: Option<mpsc::UnboundedSender<SyncProgress>>,
    ) -> Result<SyncReport, SyncError> {
        self.tidied().await;
        let started = Instant::now();
        let as_of = self.clock.now();
        let mut store = Store::open(&self.db, &self.key)?;
        store.relax_durability_for_refetchable_data()?;
        store.keep_in_memory(WRITER_MEMORY)?;
        store.defer_indexes()?;
        let checkpoints = Store::open(&self.db, &self.key)?;
        let writer = Writer::spawn(store, checkpoints, self.settings.commit_every, LOG_LIMIT);
        let run = Run {
            syncer: self,
            writer,
            progress,
            window: self.window(),
            in_flight: std::sync::Mutex::default(),
            finished: std::sync::Mutex::default(),
        };
        let result = run.all_kinds().await;
        let outcome = match &result {
            Ok(_) => (DATA_AS_OF, ts(as_of)),
            Err(e) => (LAST_ERROR, format!("{} {e}", ts(as_of))),
        };
        let sent = outcome.clone();
        let recorded = match run
            .writer
            .run(move |store: &mut Store| end_run(store, &sent))
            .await
        {
            Ok(recorded) => recorded,
            // The writer stopped on a failed write: end on a connection of our own.
            Err(WriterGone) => {
                Store::open(&self.db, &self.key).and_then(|mut store| end_run(&mut store, &outcome))
            }
        };
        if recorded.is_err() {
            tracing::warn!("could not record the sync outcome in the cache");
        }
        let tidying = run.writer.finish().await;
        *self.tidying.lock().unwrap_or_else(|p| p.into_inner()) = Some(tidying);
        Ok(SyncReport {
            kinds: result?,
            elapsed_ms: started.elapsed().as_millis() as u64,
        })
    }

    fn window(&self) -> Window {
        let today = self.clock.today_in_london();
        let midnight = |d: chrono::NaiveDate| {
            lifeboat_model::time::london_to_utc(d.and_hms_opt(0, 0, 0).expect("midnight exists"))
        };
        Window {
            from: midnight(today - chrono::Days::new(self.settings.days_back as u64)),
            to: midnight(today + chrono::Days::new(self.settings.days_ahead as u64 + 1)),
        }
    }

    /// The search URL for a type, in scope (window) and with the page size.
    fn search_url(&self, kind: ResourceKind, window: Window, extra: &str) -> String {
        self.search_url_sized(kind, window, extra, self.settings.page_size)
    }

    fn search_url_sized(
        &self,
        kind: ResourceKind,
        window: Window,
        extra: &str,
        count: u32,
    ) -> String {
        let scope = match kind {
            ResourceKind::Slot => format!("&start=ge{}&start=lt{}", ts(window.from), ts(window.to)),
            ResourceKind::Appointment => {
                format!("&date=ge{}&date=lt{}", ts(window.from), ts(window.to))
            }
            _ => String::new(),
        };
        self.upstream
            .url(&format!("{kind}?_count={count}{scope}{extra}"))
    }
}

fn states_complete(states: &[SyncState], kind: ResourceKind) -> bool {
    states
        .iter()
        .any(|s| s.kind == kind && s.phase == PHASE_COMPLETE)
}

/// One sync run: the writer thread and the progress channel.
struct Run<'a> {
    syncer: &'a Syncer,
    writer: Writer,
    progress: Option<mpsc::UnboundedSender<SyncProgress>>,
    window: Window,
    /// Pages handed to the writer and not yet known to be committed, oldest first. They
    /// may still be landing while the next type downloads; the run waits for all of them
    /// before it counts as finished.
    in_flight: std::sync::Mutex<VecDeque<InFlight>>,
    /// Types whose initial pass is complete: before this run, or fetched to the end by it.
    finished: std::sync::Mutex<BTreeSet<ResourceKind>>,
}

async fn fetch(
    upstream: &Upstream,
    kind: ResourceKind,
    url: &str,
) -> Result<SearchPage, SyncError> {
    upstream
        .search_page(url)
        .await
        .map_err(|source| SyncError::Upstream { kind, source })
}

/// Pages of one search, downloaded on their own task following `next` links, up to
/// `DOWNLOAD_AHEAD` pages ahead of the parsing and writing: the next request goes out as
/// soon as a page has arrived, however busy the writer. Abandoned (the request dropped)
/// if the sync stops first; ends after the last page or the first error.
struct Download {
    pages: mpsc::Receiver<Result<SearchPage, SyncError>>,
    task: tokio::task::JoinHandle<()>,
}

/// Downloaded pages waiting to be parsed: a few hundred KiB of JSON each.
const DOWNLOAD_AHEAD: usize = 4;

impl Download {
    fn start(upstream: Arc<Upstream>, kind: ResourceKind, url: String) -> Self {
        let (tx, pages) = mpsc::channel(DOWNLOAD_AHEAD);
        let task = tokio::spawn(async move {
            let mut url = Some(url);
            while let Some(this) = url.take() {
                let page = fetch(&upstream, kind, &this).await;
                url = page.as_ref().ok().and_then(|p| p.next.clone());
                if tx.send(page).await.is_err() {
                    break; // the sync stopped
                }
            }
        });
        Self { pages, task }
    }

    /// The next page; `None` after the last (or an error). A panic on the download task is
    /// the caller's.
    async fn next(&mut self) -> Option<Result<SearchPage, SyncError>> {
        let page = self.pages.recv().await;
        if page.is_none()
            && let Err(e) = (&mut self.task).await
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
        page
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        self.task.abort(); // nothing to do if it has finished
    }
}

/// How many streams of types a sync runs side by side (`Run::all_kinds`: the day's book and
/// two more), for progress displays that show one line for each.
pub const STREAMS: usize = 3;

/// Pages handed to the writer and not yet committed: enough for the download never to wait
/// on a group the writer holds open for more (see `writer`), up to a second in a large
/// cache, and a fast upstream serves well over a hundred pages a second. Once the writer
/// has run a page, what is left of it here is its answer, not its resources.
const AHEAD: usize = 256;

/// A page handed to the writer: its commit, and the progress it completes.
struct InFlight {
    committed: oneshot::Receiver<Result<(), WriteError>>,
    kind: ResourceKind,
    pass: PassKind,
    done: u64,
    total: Option<u64>,
}

impl Run<'_> {
    /// Every type, in `STREAMS` streams side by side, so the upstream always has a request
    /// waiting while another's answer is on its way back or being written (one stream alone
    /// leaves it idle in between). The first stream fetches the day's book (practitioners to
    /// appointments, then the booked patients' summaries), in `SYNC_ORDER`; the others take
    /// the patients and their clinical entries one type at a time, in `SYNC_ORDER`, each
    /// taking the next type as soon as it finishes one, and the first joins them once the
    /// book is done. So the streams end close together: a stream that owned a fixed share of
    /// types (the clinical entries are three-fifths of a practice) ran alone for half the
    /// sync, one request at a time.
    async fn all_kinds(&self) -> Result<Vec<(ResourceKind, PassKind, KindReport)>, SyncError> {
        let states = self.after_pages(|s: &mut Store| s.sync_states()).await??;
        self.finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(
                states
                    .iter()
                    .filter(|s| s.phase == PHASE_COMPLETE)
                    .map(|s| s.kind),
            );
        let shared: std::sync::Mutex<VecDeque<ResourceKind>> = std::sync::Mutex::new(
            SYNC_ORDER
                .into_iter()
                .filter(|k| *k == ResourceKind::Patient || k.is_clinical())
                .collect(),
        );
        let book = async {
            let mut kinds = Vec::new();
            for kind in SYNC_ORDER
                .into_iter()
                .filter(|k| !k.is_clinical() && *k != ResourceKind::Patient)
            {
                kinds.push(self.kind(&states, kind).await?);
                if kind == ResourceKind::Appointment
                    && !states_complete(&states, ResourceKind::Patient)
                {
                    kinds.push(self.priority().await?);
                }
            }
            kinds.extend(self.lane(&states, &shared).await?);
            Ok(kinds)
        };
        let (mut kinds, second, third) = tokio::try_join!(
            book,
            self.lane(&states, &shared),
            self.lane(&states, &shared),
        )?;
        kinds.extend(second);
        kinds.extend(third);
        // Reported in fetch order, whichever stream fetched them: the booked patients'
        // summaries before the patients' own pass.
        kinds.sort_by_key(|(kind, pass, _)| {
            let at = SYNC_ORDER.iter().position(|k| k == kind);
            (at, *pass != PassKind::Priority)
        });
        self.after_pages(|_: &mut Store| ()).await?;
        Ok(kinds)
    }

    /// Types from `shared`, one after another, until none is left.
    async fn lane(
        &self,
        states: &[SyncState],
        shared: &std::sync::Mutex<VecDeque<ResourceKind>>,
    ) -> Result<Vec<(ResourceKind, PassKind, KindReport)>, SyncError> {
        let mut kinds = Vec::new();
        loop {
            let next = shared.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
            let Some(kind) = next else {
                return Ok(kinds);
            };
            kinds.push(self.kind(states, kind).await?);
        }
    }

    /// One type: its initial pass (or the rest of it), or, once that is complete, an
    /// incremental pass and the search for deletions.
    async fn kind(
        &self,
        states: &[SyncState],
        kind: ResourceKind,
    ) -> Result<(ResourceKind, PassKind, KindReport), SyncError> {
        let state = states.iter().find(|s| s.kind == kind).cloned();
        Ok(match state {
            Some(s) if s.phase == PHASE_COMPLETE => {
                let mut report = self.incremental(kind, s).await?;
                report.removed += self.deletions(kind, &mut report).await?;
                (kind, PassKind::Incremental, report)
            }
            resumable => (
                kind,
                PassKind::Initial,
                self.initial(kind, resumable).await?,
            ),
        })
    }

    fn report(&self, kind: ResourceKind, pass: PassKind, done: u64, total: Option<u64>) {
        if let Some(p) = &self.progress {
            let _ = p.send(SyncProgress {
                kind,
                pass,
                done,
                total,
            });
        }
    }

    /// Pages from `url` to the end, each page written with `state` advanced. Downloading
    /// (`Download`) runs ahead of parsing, and parsing ahead of the writer's commits by up
    /// to `AHEAD` pages, across types too: the last pages may still be landing when this
    /// returns the final state (see `land_oldest`).
    async fn pages(
        &self,
        kind: ResourceKind,
        pass: PassKind,
        url: String,
        mut state: SyncState,
        persist: bool,
        report: &mut KindReport,
    ) -> Result<SyncState, SyncError> {
        let now = self.syncer.clock.now();
        let mut download = Download::start(self.syncer.upstream.clone(), kind, url);
        while let Some(page) = download.next().await {
            let page = page?;
            report.requests += 1;
            report.fetched += page.resources.len() as u64;
            if state.started_at.is_none() {
                // The upstream's clock, so the checkpoint never depends on ours.
                state.started_at = Some(page.server_time.unwrap_or(now));
            }
            if state.total.is_none() {
                state.total = page.total;
            }
            let next = page.next.clone();
            let parsed = parse_page(kind, page.resources);
            state.next_url = next.clone();
            if next.is_none() && persist {
                state.phase = PHASE_COMPLETE.to_string();
                state.completed_at = Some(now);
            }
            let (valid, refused) = advance(&mut state, &parsed);
            let checkpoint = state.clone();
            // A pass's last page also records how far ahead it fetched, in the same commit
            // as its checkpoint: an incremental sync extends the window from there.
            let window = (persist && next.is_none())
                .then(|| self.window_setting(kind))
                .flatten();
            let committed = self
                .writer
                .submit_in_transaction(move |tx: &CacheTx<'_>| {
                    write_page(tx, kind, parsed, &checkpoint, window, now, persist)
                })
                .await?;
            // Counted now: if the write fails the whole sync fails with it.
            report.written += valid;
            report.rejected += refused;
            self.in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push_back(InFlight {
                    committed,
                    kind,
                    pass,
                    done: state.done,
                    total: state.total,
                });
            self.land_committed()?;
            while self.pages_in_flight() > AHEAD {
                self.land_oldest().await?;
            }
        }
        Ok(state)
    }

    /// Waits for the oldest page in flight to be committed, and reports it. Returns false
    /// if none was in flight.
    async fn land_oldest(&self) -> Result<bool, SyncError> {
        let oldest = self
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        let Some(page) = oldest else {
            return Ok(false);
        };
        page.committed.await.map_err(|_| SyncError::WriterGone)??;
        self.report(page.kind, page.pass, page.done, page.total);
        Ok(true)
    }

    /// Reports the pages in flight that have already committed, oldest first, without
    /// waiting for any.
    fn land_committed(&self) -> Result<(), SyncError> {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(page) = in_flight.front_mut() {
            let outcome = match page.committed.try_recv() {
                Err(oneshot::error::TryRecvError::Empty) => return Ok(()),
                Err(oneshot::error::TryRecvError::Closed) => Err(SyncError::WriterGone),
                Ok(written) => written.map_err(SyncError::from),
            };
            let page = in_flight.pop_front().expect("the front page is there");
            outcome?;
            self.report(page.kind, page.pass, page.done, page.total);
        }
        Ok(())
    }

    /// Runs `f` on the writer once every page handed to it so far has committed: a failed
    /// page is reported as itself, and nothing after it (a checkpoint, a removal) is written.
    /// (Queued, `f` also ends the writer's open group, so those pages commit now; pages the
    /// other stream hands over meanwhile are not waited for.)
    async fn after_pages<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> T + Send + 'static,
    ) -> Result<T, SyncError> {
        let answer = self.writer.submit(f).await?;
        match answer.await {
            Ok(done) => {
                self.land_committed()?;
                Ok(done)
            }
            Err(_) => {
                // The writer stopped: on a failed page, which is the error to give.
                while self.land_oldest().await? {}
                Err(SyncError::WriterGone)
            }
        }
    }

    fn pages_in_flight(&self) -> usize {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    async fn initial(
        &self,
        kind: ResourceKind,
        resumable: Option<SyncState>,
    ) -> Result<KindReport, SyncError> {
        let mut report = KindReport::default();
        let (url, state) = match resumable {
            Some(s) if s.phase == PHASE_INITIAL && s.next_url.is_some() => {
                tracing::info!(%kind, done = s.done, "resuming initial sync");
                (s.next_url.clone().unwrap_or_default(), s)
            }
            _ => (
                self.syncer.search_url(kind, self.window, ""),
                blank_state(kind, PHASE_INITIAL),
            ),
        };
        self.pages(kind, PassKind::Initial, url, state, true, &mut report)
            .await?;
        let table_complete = {
            let mut finished = self.finished.lock().unwrap_or_else(|p| p.into_inner());
            finished.insert(kind);
            // The clinical types share one table.
            !kind.is_clinical()
                || SYNC_ORDER
                    .iter()
                    .all(|k| !k.is_clinical() || finished.contains(k))
        };
        if table_complete {
            self.build_indexes(kind).await?;
        }
        Ok(report)
    }

    /// Has the writer build the indexes this run's first sync deferred on `kind`'s table,
    /// now complete (see `Store::defer_indexes`), after the pages queued before; the
    /// downloads go on meanwhile. One that fails is left to the end of the run.
    async fn build_indexes(&self, kind: ResourceKind) -> Result<(), SyncError> {
        self.writer
            .submit(move |store: &mut Store| {
                if let Err(e) = store.build_deferred_indexes(Some(kind)) {
                    tracing::warn!(%kind, error = %e, "could not build the cache's indexes yet");
                }
            })
            .await?;
        Ok(())
    }

    async fn incremental(
        &self,
        kind: ResourceKind,
        prior: SyncState,
    ) -> Result<KindReport, SyncError> {
        let mut report = KindReport::default();
        let since = prior.high_water.or(prior.started_at);
        let extra = since
            .map(|t| format!("&_lastUpdated=gt{}", ts(t)))
            .unwrap_or_default();
        let url = self.syncer.search_url(kind, self.window, &extra);
        let state = SyncState {
            done: 0,
            total: None,
            started_at: None,
            next_url: None,
            ..prior.clone()
        };
        // Not persisted page by page: a pass cut short starts again from the old checkpoint.
        let end = self
            .pages(kind, PassKind::Incremental, url, state, false, &mut report)
            .await?;
        // Restore the cumulative count; keep the new checkpoint.
        let final_state = SyncState {
            done: prior.done + report.written,
            total: None,
            ..end
        };
        self.after_pages(move |store: &mut Store| {
            let tx = store.transaction()?;
            tx.save_sync_state(&final_state)?;
            tx.commit()
        })
        .await??;
        report.requests += self.extend_window(kind, &mut report).await?;
        Ok(report)
    }

    /// Windowed types: when today's window reaches further ahead than what was fetched,
    /// fetch the new days (they may hold slots nobody has touched, so `_lastUpdated`
    /// would never bring them), and forget what fell out behind.
    async fn extend_window(
        &self,
        kind: ResourceKind,
        report: &mut KindReport,
    ) -> Result<u64, SyncError> {
        if !kind.is_windowed() {
            return Ok(0);
        }
        let key = window_key(kind);
        let fetched_to = self
            .after_pages(move |store: &mut Store| store.setting(&key))
            .await??
            .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
            .map(|t| t.with_timezone(&Utc));
        let before = report.requests;
        if let Some(fetched_to) = fetched_to.filter(|t| *t < self.window.to) {
            let gap = Window {
                from: fetched_to.max(self.window.from),
                to: self.window.to,
            };
            let url = self.syncer.search_url(kind, gap, "");
            let scratch = blank_state(kind, PHASE_COMPLETE);
            self.pages(kind, PassKind::Incremental, url, scratch, false, report)
                .await?;
        }
        let from = self.window.from;
        report.removed += self
            .after_pages(move |store: &mut Store| {
                let tx = store.transaction()?;
                let n = tx.remove_starting_before(kind, from)?;
                tx.commit()?;
                Ok::<_, StoreError>(n)
            })
            .await??;
        self.remember_window(kind).await?;
        Ok(report.requests - before)
    }

    /// For a windowed type, the setting (key, value) that records how far ahead this run
    /// fetches it.
    fn window_setting(&self, kind: ResourceKind) -> Option<(String, String)> {
        kind.is_windowed()
            .then(|| (window_key(kind), ts(self.window.to)))
    }

    async fn remember_window(&self, kind: ResourceKind) -> Result<(), SyncError> {
        let Some((key, to)) = self.window_setting(kind) else {
            return Ok(());
        };
        self.after_pages(move |store: &mut Store| {
            let tx = store.transaction()?;
            tx.set_setting(&key, &to)?;
            tx.commit()
        })
        .await??;
        Ok(())
    }

    /// Removes cached resources the upstream no longer has (in scope). It first asks only how
    /// many the upstream has. Once this pass's changes have landed, every resource the
    /// upstream has in scope is cached or stands refused (a resource created after the pass
    /// aside), so the upstream's count equal to the cache's plus the refused means nothing
    /// cached was deleted. Otherwise (or with no total, or an upstream that will not count)
    /// it lists the upstream's ids, removes what it no longer has, and forgets refusals of
    /// resources gone from it. A practice of 100,000 patients has 640,000 ids to list.
    async fn deletions(
        &self,
        kind: ResourceKind,
        report: &mut KindReport,
    ) -> Result<u64, SyncError> {
        let window = self.window;
        let held = self
            .after_pages(move |store: &mut Store| {
                let cached = store.count_in_scope(kind, window.from, window.to)?;
                Ok::<_, StoreError>(cached + store.rejected_ids(kind)?.len() as u64)
            })
            .await??;
        let url = self
            .syncer
            .search_url_sized(kind, window, "&_total=accurate", 0);
        let counted = fetch(&self.syncer.upstream, kind, &url).await;
        report.requests += 1;
        match counted {
            Ok(counted) if counted.total == Some(held) => {
                self.report(kind, PassKind::Deletions, held, counted.total);
                return Ok(0);
            }
            // No total, a different one, or an upstream that will not count: list.
            Ok(_)
            | Err(SyncError::Upstream {
                source: UpstreamError::Refused { .. },
                ..
            }) => {}
            Err(e) => return Err(e),
        }
        let mut upstream_ids = BTreeSet::new();
        // Ids alone are small: list them in pages of at least 1,000 (GP Connect's and the
        // test upstream's largest page), however small the configured page.
        let count = self.syncer.settings.page_size.max(ID_PAGE);
        let mut url = self
            .syncer
            .search_url_sized(kind, window, "&_elements=id", count);
        loop {
            let page = fetch(&self.syncer.upstream, kind, &url).await?;
            report.requests += 1;
            for raw in &page.resources {
                if let Some(id) = resource_id(raw.get()) {
                    upstream_ids.insert(id);
                }
            }
            self.report(
                kind,
                PassKind::Deletions,
                upstream_ids.len() as u64,
                page.total,
            );
            match page.next {
                Some(n) => url = n,
                None => break,
            }
        }
        let removed = self
            .after_pages(move |store: &mut Store| {
                let cached = store.ids_in_scope(kind, window.from, window.to)?;
                let refused = store.rejected_ids(kind)?;
                let tx = store.transaction()?;
                let mut removed = 0;
                for id in cached.iter().filter(|id| !upstream_ids.contains(*id)) {
                    removed += u64::from(tx.remove_resource(kind, id)?);
                }
                for id in refused.iter().filter(|id| !upstream_ids.contains(*id)) {
                    tx.clear_rejection(kind, id)?;
                }
                tx.commit()?;
                Ok::<_, StoreError>(removed)
            })
            .await??;
        Ok(removed)
    }

    /// Summaries of the patients booked in the next few days, so a practice that goes down
    /// mid-sync still has what the day needs: each type as yet incomplete is fetched for
    /// them ahead of its full pass (a type whose full pass has finished has them already).
    async fn priority(&self) -> Result<(ResourceKind, PassKind, KindReport), SyncError> {
        let now = self.syncer.clock.now();
        let until = now + chrono::Duration::days(self.syncer.settings.priority_days);
        let ids = self
            .after_pages(move |store: &mut Store| store.patients_booked_between(now, until))
            .await??;
        let mut report = KindReport::default();
        for chunk in ids.chunks(50) {
            for kind in SYNC_ORDER
                .into_iter()
                .filter(|k| (*k == ResourceKind::Patient || k.is_clinical()) && !self.finished(*k))
            {
                let filter = if kind == ResourceKind::Patient {
                    format!("&_id={}", chunk.join(","))
                } else {
                    let refs: Vec<String> =
                        chunk.iter().map(|id| format!("Patient/{id}")).collect();
                    format!("&patient={}", refs.join(","))
                };
                let url = self.syncer.search_url(kind, self.window, &filter);
                let scratch = blank_state(kind, PHASE_INITIAL);
                self.pages(kind, PassKind::Priority, url, scratch, false, &mut report)
                    .await?;
            }
        }
        Ok((ResourceKind::Patient, PassKind::Priority, report))
    }

    /// Whether `kind`'s initial pass is complete, or this run has handed all its pages to
    /// the writer.
    fn finished(&self, kind: ResourceKind) -> bool {
        self.finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&kind)
    }
}

fn blank_state(kind: ResourceKind, phase: &str) -> SyncState {
    SyncState {
        kind,
        phase: phase.to_string(),
        next_url: None,
        high_water: None,
        done: 0,
        total: None,
        started_at: None,
        completed_at: None,
    }
}

fn window_key(kind: ResourceKind) -> String {
    format!("sync.window_to.{kind}")
}

fn resource_id(raw: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: Option<String>,
    }
    serde_json::from_str::<IdOnly>(raw).ok()?.id
}

/// One resource of a page, parsed, validated and its raw JSON compressed (off the writer
/// thread, so this work on the next page overlaps with writing this one).
enum Arrived {
    Valid(Box<(CachedResource, CompressedJson)>),
    Refused { id: String, reason: String },
}

fn parse_page(kind: ResourceKind, resources: Vec<Box<RawValue>>) -> Vec<Arrived> {
    resources
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let refused = |raw: &str, reason: String| Arrived::Refused {
                id: resource_id(raw).unwrap_or_else(|| format!("(no id, entry {})", i + 1)),
                reason,
            };
            // The page's own text becomes the resource's, uncopied.
            match CachedResource::from_owned_json(Box::<str>::from(raw).into()) {
                Ok(r) if r.kind == kind => match CompressedJson::of(&r) {
                    Ok(compressed) => Arrived::Valid(Box::new((r, compressed))),
                    Err(e) => refused(&r.raw, e.to_string()),
                },
                Ok(r) => refused(&r.raw, format!("a {} arrived in a {kind} search", r.kind)),
                Err((e, raw)) => refused(&raw, e.to_string()),
            }
        })
        .collect()
}

/// Moves `state` past a parsed page (the page's checkpoint): resources done, and the
/// `_lastUpdated` high-water mark. Returns the page's (valid, refused) counts.
fn advance(state: &mut SyncState, page: &[Arrived]) -> (u64, u64) {
    let valid = page
        .iter()
        .filter(|a| matches!(a, Arrived::Valid(_)))
        .count() as u64;
    let refused = page.len() as u64 - valid;
    let max_seen = page
        .iter()
        .filter_map(|a| match a {
            Arrived::Valid(r) => Some(r.0.last_updated),
            Arrived::Refused { .. } => None,
        })
        .max()
        .max(state.high_water);
    state.done += valid + refused;
    state.high_water = if state.phase == PHASE_COMPLETE && state.next_url.is_none() {
        // Pass finished: the checkpoint may not pass the pass's start on the upstream's
        // clock, or a change made while we paged could fall behind it.
        match (max_seen, state.started_at) {
            (Some(seen), Some(start)) => Some(seen.min(start)),
            (seen, start) => seen.or(start),
        }
    } else {
        max_seen
    };
    (valid, refused)
}

/// Writes one page in the writer's transaction: every well-formed resource, a rejection
/// record for each malformed one, (when `persist`) the page's checkpoint, and the `window`
/// setting (key, value) a pass's last page completes, so the page, its checkpoint and the
/// window commit together or not at all.
fn write_page(
    tx: &CacheTx<'_>,
    kind: ResourceKind,
    page: Vec<Arrived>,
    checkpoint: &SyncState,
    window: Option<(String, String)>,
    now: DateTime<Utc>,
    persist: bool,
) -> Result<(), StoreError> {
    // A resource refused before that now arrives well-formed is no longer a rejection.
    let had_rejections = tx.has_rejections(kind)?;
    let mut upserts = tx.upserts(now);
    for arrived in page {
        match arrived {
            Arrived::Valid(r) => {
                let (r, compressed) = *r;
                upserts.upsert(&r, &compressed)?;
                if had_rejections {
                    tx.clear_rejection(kind, &r.id)?;
                }
            }
            Arrived::Refused { id, reason } => {
                tracing::warn!(%kind, %reason, "refused a resource from the upstream");
                tx.record_rejection(kind, &id, &reason, now)?;
            }
        }
    }
    if persist {
        tx.save_sync_state(checkpoint)?;
    }
    if let Some((key, to)) = window {
        tx.set_setting(&key, &to)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_store::CacheKey;

    /// The page that completes a pass of slots carries the window the pass fetched in its
    /// own transaction: rolled back (a sync stopped before its commit), neither the pass's
    /// completion nor its window is in the cache; committed, both are (hazard H31).
    #[test]
    fn a_pass_completes_with_its_window_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            Store::open(dir.path().join("cache.db"), &CacheKey::from_bytes([5; 32])).unwrap();
        let last_page = blank_state(ResourceKind::Slot, PHASE_COMPLETE);
        let key = window_key(ResourceKind::Slot);
        let window = (key.clone(), "2027-01-13T00:00:00.000Z".to_string());
        for commit in [false, true] {
            let tx = store.transaction().unwrap();
            write_page(
                &tx,
                ResourceKind::Slot,
                Vec::new(),
                &last_page,
                Some(window.clone()),
                Utc::now(),
                true,
            )
            .unwrap();
            if commit {
                tx.commit().unwrap();
            } else {
                drop(tx);
            }
            let complete = store
                .sync_states()
                .unwrap()
                .iter()
                .any(|s| s.kind == ResourceKind::Slot && s.phase == PHASE_COMPLETE);
            let fetched_to = store.setting(&key).unwrap();
            assert_eq!(complete, commit);
            assert_eq!(fetched_to, commit.then(|| window.1.clone()));
        }
    }

    /// A resource too large to cache is refused and reported like a malformed one, and the
    /// rest of its page is kept.
    #[test]
    fn a_resource_too_large_to_cache_is_refused_and_the_rest_of_its_page_kept() {
        let location = |id: &str, note: &str| {
            let json = serde_json::json!({
                "resourceType": "Location", "id": id,
                "meta": {"versionId": "1", "lastUpdated": "2024-07-01T08:00:00.000Z"},
                "name": "Main surgery", "description": note
            });
            RawValue::from_string(json.to_string()).unwrap()
        };
        let page = vec![
            location("small", "ground floor"),
            location("huge", &"x".repeat(64 << 20)),
        ];
        let arrived = parse_page(ResourceKind::Location, page);
        assert!(matches!(&arrived[0], Arrived::Valid(r) if r.0.id == "small"));
        let Arrived::Refused { id, reason } = &arrived[1] else {
            panic!("the huge one was accepted")
        };
        assert_eq!(id, "huge");
        assert!(reason.contains("too large to cache"), "{reason}");
    }
}
