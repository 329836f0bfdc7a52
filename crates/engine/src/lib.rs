//! Lifeboat's engine: the work that moves data between the upstream and the cache, and the
//! rules for working offline.
//!
//! `sync` pulls the practice's data into the cache (initial, incremental and resumable);
//! `health` notices an outage; `modes` is the state machine; `booking` is offline work over
//! the cache. The engine never talks to screens: it reports through channels and returns
//! typed results. Roles are checked by the app layer before it calls in.

pub mod booking;
pub mod health;
pub mod modes;
pub mod reconcile;
pub mod sync;
mod writer;

pub use modes::{Mode, ModeController, ModeError, ModeEvent, ModeState, Transition};
pub use sync::{KindReport, PassKind, SyncError, SyncProgress, SyncReport, SyncSettings, Syncer};
