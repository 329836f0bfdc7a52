//! The one API every door uses (the `lifeboat` CLI and the desktop app): one function per
//! use case. Errors cross the door as `AppError { code, message }`: a stable code a screen
//! can branch on and a sentence a person can read.

pub mod config;

use std::path::Path;
use std::sync::Arc;

use lifeboat_engine::{SyncProgress, SyncReport, Syncer};
use lifeboat_model::time::format_uk;
use lifeboat_model::{Clock, DataAge, ResourceKind};
use lifeboat_store::{CacheKey, ImportReport, PatientMatch, Store};
use lifeboat_upstream::Upstream;
use serde::Serialize;
use tokio::sync::mpsc;

pub use config::{Config, ConfigError};

/// An error as a door shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: &'static str,
    pub message: String,
}

impl AppError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

macro_rules! app_error_from {
    ($($t:ty => $code:expr),* $(,)?) => {$(
        impl From<$t> for AppError {
            fn from(e: $t) -> Self {
                AppError::new($code, e.to_string())
            }
        }
    )*};
}

app_error_from! {
    lifeboat_store::StoreError => "cache",
    lifeboat_store::SearchError => "search",
    lifeboat_store::ImportError => "import",
    lifeboat_engine::SyncError => "sync",
    lifeboat_upstream::UpstreamError => "upstream",
    ConfigError => "config",
}

pub type Result<T> = std::result::Result<T, AppError>;

/// How the cache stands: what is cached, how old it is, what went wrong.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub data_age: Option<DataAge>,
    /// "data as of Fri 19 Jul 2024 09:40 (5 min ago)", or that nothing has synced yet.
    pub data_as_of: String,
    pub kinds: Vec<KindStatus>,
    pub rejected: Vec<Rejection>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KindStatus {
    pub kind: ResourceKind,
    pub cached: u64,
    pub phase: Option<String>,
    pub done: u64,
    pub total: Option<u64>,
    pub last_completed: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    pub kind: String,
    pub id: String,
    pub reason: String,
}

/// Lifeboat on one workstation: its config, the unlocked cache key and the clock.
pub struct App {
    config: Config,
    key: CacheKey,
    clock: Arc<dyn Clock>,
}

impl App {
    pub fn new(config: Config, key: CacheKey, clock: Arc<dyn Clock>) -> Self {
        Self { config, key, clock }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn store(&self) -> Result<Store> {
        Ok(Store::open(&self.config.cache, &self.key)?)
    }

    /// Loads a practice from NDJSON files (fixtures or a bulk export).
    pub fn import(&self, dir: &Path) -> Result<ImportReport> {
        Ok(self.store()?.import_ndjson_dir(dir, self.clock.now())?)
    }

    pub fn search_patients(&self, query: &str, limit: usize) -> Result<Vec<PatientMatch>> {
        Ok(self
            .store()?
            .search_patients(query, limit, self.clock.today_in_london())?)
    }

    /// One sync against the configured upstream; progress goes to `progress` if given.
    pub async fn sync(
        &self,
        progress: Option<mpsc::UnboundedSender<SyncProgress>>,
    ) -> Result<SyncReport> {
        let upstream = Arc::new(Upstream::new(self.config.upstream_config()?)?);
        let syncer = Syncer::new(
            upstream,
            &self.config.cache,
            self.key.clone(),
            self.clock.clone(),
            self.config.sync_settings(),
        );
        Ok(syncer.run(progress).await?)
    }

    pub fn status(&self) -> Result<Status> {
        let store = self.store()?;
        let now = self.clock.now();
        let states = store.sync_states()?;
        let kinds = ResourceKind::ALL
            .into_iter()
            .map(|kind| {
                let state = states.iter().find(|s| s.kind == kind);
                Ok(KindStatus {
                    kind,
                    cached: store.count(kind)?,
                    phase: state.map(|s| s.phase.clone()),
                    done: state.map_or(0, |s| s.done),
                    total: state.and_then(|s| s.total),
                    last_completed: state.and_then(|s| s.completed_at).map(format_uk),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let data_age = store
            .setting(lifeboat_engine::sync::DATA_AS_OF)?
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(&s).ok())
            .map(|t| DataAge::new(t.with_timezone(&chrono::Utc), now));
        let rejected = store
            .rejections()?
            .into_iter()
            .map(|(kind, id, reason, _)| Rejection { kind, id, reason })
            .collect();
        Ok(Status {
            data_as_of: data_age.map_or_else(
                || "no complete sync yet: the cache may be incomplete".to_string(),
                |a| a.describe(),
            ),
            data_age,
            kinds,
            rejected,
            last_error: store
                .setting(lifeboat_engine::sync::LAST_ERROR)?
                .filter(|s| !s.is_empty()),
        })
    }
}
