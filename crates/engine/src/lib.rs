//! Lifeboat's engine: the work that moves data between the upstream and the cache.
//!
//! `sync` pulls the practice's data into the cache (initial, incremental and resumable).
//! Modes, offline booking and reconciliation join it here. The engine never talks to
//! screens: it reports progress through channels and returns typed results.

pub mod sync;
mod writer;

pub use sync::{KindReport, PassKind, SyncError, SyncProgress, SyncReport, SyncSettings, Syncer};
