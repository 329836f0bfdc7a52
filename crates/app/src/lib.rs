//! The one API every door uses (the `lifeboat` CLI and the desktop app): one function per
//! use case. Errors cross the door as `AppError { code, message }`: a stable code a screen
//! can branch on and a sentence a person can read.

pub mod background;
pub mod config;
pub mod desk;
pub mod downtime;
mod pdf;

use serde::Serialize;

pub use config::{Config, ConfigError};
pub use desk::Desk;

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
    lifeboat_store::SearchError => "validation",
    lifeboat_store::ImportError => "import",
    lifeboat_engine::SyncError => "upstream",
    lifeboat_upstream::UpstreamError => "upstream",
    ConfigError => "config",
}

impl From<lifeboat_access::AccessError> for AppError {
    fn from(e: lifeboat_access::AccessError) -> Self {
        let code = match e {
            lifeboat_access::AccessError::Locked => "locked",
            _ => e.code(),
        };
        AppError::new(code, e.to_string())
    }
}

impl From<lifeboat_engine::booking::BookingError> for AppError {
    fn from(e: lifeboat_engine::booking::BookingError) -> Self {
        AppError::new(e.code(), e.to_string())
    }
}

impl From<lifeboat_engine::ModeError> for AppError {
    fn from(e: lifeboat_engine::ModeError) -> Self {
        AppError::new("wrong_mode", e.to_string())
    }
}

impl From<lifeboat_engine::reconcile::ReconcileError> for AppError {
    fn from(e: lifeboat_engine::reconcile::ReconcileError) -> Self {
        use lifeboat_engine::reconcile::ReconcileError as R;
        let code = match &e {
            R::Drill => "drill",
            R::Upstream(_) => "upstream",
            R::Store(_) => "cache",
            R::ReasonRequired | R::ChoiceNotOffered(_) => "validation",
            R::NoSuchEntry | R::NotInConflict => "not_found",
            R::Interrupted => "interrupted",
        };
        AppError::new(code, e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, AppError>;
