//! A member of staff's session on one workstation: who they are, their role, and whether the
//! screen is locked.
//!
//! This module owns the check made before every core operation (`require`), the idle lock
//! and unlocking with the password again. It must not decide permissions itself (that is
//! `Role::permits`) and must not keep the password: unlocking re-derives the key from the
//! key slot and checks it against the key the session already holds.

use chrono::{DateTime, Duration, Utc};
use lifeboat_store::{AuditAction, AuditEntry, CacheKey};
use serde::Serialize;

use crate::access::Access;
use crate::error::{AccessError, Result};
use crate::password::Password;
use crate::role::{Operation, Role};

/// Why a session was locked, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LockReason {
    /// The person locked the screen (or stepped away and pressed "switch user").
    ByUser,
    /// No activity for the idle timeout.
    Idle,
}

impl LockReason {
    fn as_str(self) -> &'static str {
        match self {
            LockReason::ByUser => "locked by the user",
            LockReason::Idle => "locked after the idle timeout",
        }
    }
}

/// A logged-in member of staff. Holds the unwrapped data key, so the app can open the cache
/// for them; the key stays in memory while the screen is locked because background sync
/// carries on (see `docs/security.md`).
#[derive(Debug)]
pub struct Session {
    access: Access,
    key: CacheKey,
    account_id: i64,
    username: String,
    display_name: String,
    role: Role,
    workstation: String,
    last_activity: DateTime<Utc>,
    idle_timeout: Duration,
    locked: bool,
}

/// What a screen shows about the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub workstation: String,
    pub locked: bool,
    pub last_activity: DateTime<Utc>,
    pub idle_timeout_seconds: i64,
}

impl Session {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        access: Access,
        key: CacheKey,
        account_id: i64,
        username: String,
        display_name: String,
        role: Role,
        workstation: String,
        now: DateTime<Utc>,
    ) -> Self {
        let idle_timeout = access.settings().idle_timeout;
        Self {
            access,
            key,
            account_id,
            username,
            display_name,
            role,
            workstation,
            last_activity: now,
            idle_timeout,
            locked: false,
        }
    }

    pub fn account_id(&self) -> i64 {
        self.account_id
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn workstation(&self) -> &str {
        &self.workstation
    }

    pub fn last_activity(&self) -> DateTime<Utc> {
        self.last_activity
    }

    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    pub fn is_locked(&self) -> bool {
        self.locked
    }

    /// The cache's data key, for the app to open the store. Available while locked too:
    /// locking is about the person at the screen, and the core's own work (scheduled sync)
    /// must go on. Every use case must still pass `require` first.
    pub fn cache_key(&self) -> &CacheKey {
        &self.key
    }

    pub fn info(&self) -> SessionInfo {
        SessionInfo {
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            role: self.role,
            workstation: self.workstation.clone(),
            locked: self.locked,
            last_activity: self.last_activity,
            idle_timeout_seconds: self.idle_timeout.num_seconds(),
        }
    }

    /// An audit entry by this session's person at `at`, for the app to fill in and append.
    pub fn audit_entry(&self, at: DateTime<Utc>, action: AuditAction) -> AuditEntry {
        AuditEntry::new(at, &self.username, &self.workstation, action)
    }

    /// The check before every core operation: refuses a locked session, a session idle for
    /// the timeout (locking it), and a role that does not permit `op`. A permitted operation
    /// counts as activity.
    pub fn require(&mut self, op: Operation, now: DateTime<Utc>) -> Result<()> {
        self.require_unlocked(now)?;
        if !self.role.permits(op) {
            tracing::info!(
                username = %self.username,
                role = %self.role,
                operation = ?op,
                "operation refused for this role"
            );
            return Err(AccessError::NotPermitted {
                role: self.role,
                operation: op,
            });
        }
        self.touch(now);
        Ok(())
    }

    /// As `require` without an operation: for what every member of staff may do to their
    /// own session (change their password, log out).
    pub(crate) fn require_unlocked(&mut self, now: DateTime<Utc>) -> Result<()> {
        if self.locked {
            return Err(AccessError::Locked);
        }
        match self.lock_if_idle(now) {
            Ok(false) => Ok(()),
            Ok(true) => Err(AccessError::Locked),
            // Locked all the same; the person needs to hear that, not about the audit write.
            Err(e) => {
                tracing::error!(error = %e, "idle lock could not be written to the audit log");
                Err(AccessError::Locked)
            }
        }
    }

    pub fn is_idle(&self, now: DateTime<Utc>) -> bool {
        now - self.last_activity >= self.idle_timeout
    }

    /// Activity at the screen (a key press, a click): keeps the session from idling.
    pub fn touch(&mut self, now: DateTime<Utc>) {
        if !self.locked && now > self.last_activity {
            self.last_activity = now;
        }
    }

    /// Locks the session if it has been idle for the timeout; true if it locked it now. For
    /// the screen's timer. The session is locked even if writing the audit entry fails.
    pub fn lock_if_idle(&mut self, now: DateTime<Utc>) -> Result<bool> {
        if self.locked || !self.is_idle(now) {
            return Ok(false);
        }
        self.lock_for(LockReason::Idle, now)?;
        Ok(true)
    }

    /// Locks the screen now. The session is locked even if writing the audit entry fails
    /// (the error says so): a lock must never be refused.
    pub fn lock(&mut self) -> Result<()> {
        let now = self.access.now();
        self.lock_for(LockReason::ByUser, now)
    }

    fn lock_for(&mut self, reason: LockReason, now: DateTime<Utc>) -> Result<()> {
        if self.locked {
            return Ok(());
        }
        self.locked = true;
        tracing::info!(username = %self.username, reason = reason.as_str(), "session locked");
        let entry = self
            .audit_entry(now, AuditAction::SessionLocked)
            .detail(reason.as_str());
        self.access.append_audit(&self.key, &entry)
    }

    /// Unlocks with the password, checked against this account's key slot (the same path
    /// and lockout as logging in). Refused if the account was disabled meanwhile.
    pub fn unlock(&mut self, password: &Password) -> Result<()> {
        let now = self.access.now();
        let key = match self.access.unwrap_for(&self.username, password, now) {
            Ok(unwrapped) => unwrapped.key,
            Err(AccessError::WrongCredentials) => return Err(AccessError::WrongPassword),
            Err(e) => return Err(e),
        };
        if key != self.key {
            // A different key: the key-slot file no longer belongs to this cache.
            return Err(AccessError::WrongPassword);
        }
        let account = self.access.account_in_cache(&self.key, &self.username)?;
        if account.disabled {
            return Err(AccessError::AccountDisabled);
        }
        // The role may have changed while locked; the cache is the authority.
        self.role = account.role;
        self.locked = false;
        self.last_activity = now;
        tracing::info!(username = %self.username, "session unlocked");
        let entry = self.audit_entry(now, AuditAction::SessionUnlocked);
        self.access.append_audit(&self.key, &entry)
    }

    /// Ends the session, recording it in the audit log.
    pub fn logout(self) -> Result<()> {
        let now = self.access.now();
        tracing::info!(username = %self.username, "logged out");
        let entry = self.audit_entry(now, AuditAction::LoggedOut);
        self.access.append_audit(&self.key, &entry)
    }
}
