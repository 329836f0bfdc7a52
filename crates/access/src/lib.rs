//! Who may open the practice's cache, and what each member of staff may do once in.
//!
//! This crate owns staff accounts (usable offline), the key slots that unlock the encrypted
//! cache with a staff password, the role table every core operation is checked against,
//! idle-locking sessions, and the log file set-up. It writes the audit entries for logging
//! in and out, locking and account changes; the app writes the rest.
//!
//! It must not be bypassed: the app checks `Session::require` before every use case, so a
//! refusal does not depend on a screen hiding a button. It must never write the data key or
//! a password anywhere, nor log a password or patient data. See `docs/security.md`.

mod access;
mod error;
mod keyslot;
pub mod logging;
mod password;
mod role;
mod session;
#[cfg(test)]
mod tests;

use std::num::NonZeroU32;

use chrono::Duration;

pub use access::{Access, Account, NewAccount};
pub use error::{AccessError, Result};
pub use keyslot::key_slot_path;
pub use password::{MIN_PASSWORD_CHARS, Password, normalise_username};
pub use role::{Operation, Role};
pub use session::{LockReason, Session, SessionInfo};

/// PBKDF2 iterations for new key slots: OWASP's 2023 figure for PBKDF2-HMAC-SHA256.
pub const DEFAULT_KDF_ITERATIONS: u32 = 600_000;

/// The practice's access settings. `Default` is what a practice gets; tests lower the
/// iteration count so they run in milliseconds.
#[derive(Debug, Clone)]
pub struct AccessSettings {
    /// PBKDF2 iterations for slots made from now on (each slot keeps its own count).
    pub kdf_iterations: NonZeroU32,
    /// Failed logins in a row that lock a username.
    pub max_failed_logins: u32,
    /// The first lockout; each further failure doubles it.
    pub first_lockout: Duration,
    pub lockout_cap: Duration,
    /// A session with no activity for this long locks.
    pub idle_timeout: Duration,
}

impl Default for AccessSettings {
    fn default() -> Self {
        Self {
            kdf_iterations: NonZeroU32::new(DEFAULT_KDF_ITERATIONS)
                .expect("the default iteration count is not zero"),
            max_failed_logins: 5,
            first_lockout: Duration::seconds(30),
            lockout_cap: Duration::minutes(15),
            idle_timeout: Duration::minutes(5),
        }
    }
}
