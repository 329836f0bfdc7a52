//! The front door: first-run setup, logging in, and the practice manager's account tasks.
//!
//! This module owns the order in which the cache and the key-slot file change together, so
//! that a crash between the two leaves something a manager can mend (an account without a
//! slot is fixed by a password reset) and never a slot that outlives a disabled account in
//! the cache's eyes. It must not hold keys beyond a call: the session does that.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lifeboat_model::Clock;
use lifeboat_store::{
    AuditAction, AuditEntry, AuditFilter, AuditRecord, AuditVerification, CacheKey, HeadCheck,
    Store, StoredAccount,
};
use serde::Serialize;

use crate::AccessSettings;
use crate::error::{AccessError, Result};
use crate::keyslot::{self, FailureBook, KeySlotFile, key_slot_path};
use crate::password::{Password, normalise_display_name, normalise_username};
use crate::role::{Operation, Role};
use crate::session::Session;

/// Lifeboat's access layer for one cache file. Cheap to clone.
#[derive(Clone)]
pub struct Access {
    cache: PathBuf,
    keys: PathBuf,
    settings: AccessSettings,
    clock: Arc<dyn Clock>,
    /// Failed logins for usernames with no key slot: in memory only (see `FailureBook`).
    unknown_usernames: Arc<Mutex<FailureBook>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("cache", &self.cache)
            .field("keys", &self.keys)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// An account to create. The password is checked against the policy.
#[derive(Debug)]
pub struct NewAccount {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub password: Password,
}

/// A staff account as a manager sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    /// Enabled and with a key slot. False for an enabled account only if a crash came
    /// between adding it and writing its slot: a password reset mends it.
    pub can_log_in: bool,
    pub created_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
}

impl Account {
    fn from_stored(a: StoredAccount, has_slot: bool) -> Result<Self> {
        let role = Role::parse(&a.role).ok_or_else(|| AccessError::UnknownRole {
            username: a.username.clone(),
            role: a.role.clone(),
        })?;
        Ok(Self {
            id: a.id,
            can_log_in: !a.disabled && has_slot,
            username: a.username,
            display_name: a.display_name,
            role,
            disabled: a.disabled,
            created_at: a.created_at,
            changed_at: a.changed_at,
        })
    }
}

/// The outcome of checking a password against a key slot.
pub(crate) struct Unwrapped {
    pub key: CacheKey,
    pub username: String,
    pub previous_failures: u32,
}

fn account_ref(username: &str) -> String {
    format!("Account/{username}")
}

impl Access {
    /// The access layer for the cache at `cache`; its key slots are at `<cache>.keys`.
    pub fn new(cache: impl Into<PathBuf>, settings: AccessSettings, clock: Arc<dyn Clock>) -> Self {
        let cache = cache.into();
        Self {
            keys: key_slot_path(&cache),
            cache,
            settings,
            clock,
            unknown_usernames: Arc::default(),
        }
    }

    pub fn cache_path(&self) -> &Path {
        &self.cache
    }

    pub fn key_slot_path(&self) -> &Path {
        &self.keys
    }

    pub fn settings(&self) -> &AccessSettings {
        &self.settings
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Whether first-run setup has been done here (a key-slot file exists).
    pub fn is_set_up(&self) -> bool {
        self.keys.exists()
    }

    fn iterations(&self) -> NonZeroU32 {
        self.settings.kdf_iterations
    }

    /// First run: makes the cache's random data key, creates the encrypted cache with its
    /// first manager, and writes that manager's key slot. Refused if a cache or a key-slot
    /// file is already here: setup never replaces either (a cache may hold unreconciled
    /// clinical changes, and a key-slot file may be the only way into a backup).
    pub fn setup(
        &self,
        username: &str,
        display_name: &str,
        password: &Password,
        workstation: &str,
    ) -> Result<Session> {
        for existing in [&self.cache, &self.keys] {
            if existing.exists() {
                return Err(AccessError::AlreadySetUp {
                    path: existing.clone(),
                });
            }
        }
        let username = normalise_username(username)?;
        let display_name = normalise_display_name(display_name)?;
        password.check_policy(&username)?;
        let now = self.now();
        let key = keyslot::new_data_key()?;

        // Build the cache under a temporary name, so that an interrupted setup never leaves
        // a file at the real path that no key slot opens.
        let mut tmp_name = self.cache.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".setting-up");
        let tmp = self.cache.with_file_name(tmp_name);
        for leftover in lifeboat_store::cache_files(&tmp) {
            // Only an interrupted setup makes this file: it holds one account, no patients.
            if let Err(e) = std::fs::remove_file(&leftover)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(AccessError::io(leftover)(e));
            }
        }
        let (account_id, head) = {
            let mut store = Store::open(&tmp, &key)?;
            let tx = store.transaction()?;
            let id = tx.insert_account(&username, &display_name, Role::Manager.as_str(), now)?;
            tx.append_audit(
                &AuditEntry::new(now, &username, workstation, AuditAction::PracticeSetUp)
                    .subject(account_ref(&username))
                    .detail("Lifeboat set up; first manager account created"),
            )?;
            tx.commit()?;
            (id, store.audit_head()?)
        };

        let mut slots = KeySlotFile::new();
        slots.put_slot(keyslot::wrap(
            &key,
            &username,
            password,
            self.iterations(),
            now,
        )?);
        slots.set_head(head);
        // Key slots first: a cache at the real path without them could never be opened.
        if self.keys.exists() {
            return Err(AccessError::AlreadySetUp {
                path: self.keys.clone(),
            });
        }
        slots.save(&self.keys)?;
        for (from, to) in lifeboat_store::cache_files(&tmp)
            .into_iter()
            .zip(lifeboat_store::cache_files(&self.cache))
        {
            if from.exists() {
                std::fs::rename(&from, &to).map_err(AccessError::io(&to))?;
            }
        }
        restrict_to_owner(&self.cache)?;
        tracing::info!(username = %username, workstation, "Lifeboat set up");
        Ok(Session::new(
            self.clone(),
            key,
            account_id,
            username,
            display_name,
            Role::Manager,
            workstation.to_string(),
            now,
        ))
    }

    /// Logs a member of staff in: their password unwraps the cache key from their key slot;
    /// their role comes from the (encrypted) cache. Unknown usernames and wrong passwords get
    /// the same answer and take the same time, and both count towards the lockout.
    pub fn login(&self, username: &str, password: &Password, workstation: &str) -> Result<Session> {
        let now = self.now();
        let unwrapped = self.unwrap_for(username, password, now)?;
        let mut store = self.open_store(&unwrapped.key)?;
        let Some(stored) = store.account(&unwrapped.username)? else {
            // A slot with no account: the file does not belong with this cache.
            tracing::warn!(username = %unwrapped.username, "key slot opens but the cache has no such account");
            return Err(AccessError::WrongCredentials);
        };
        let account = Account::from_stored(stored, true)?;
        if account.disabled {
            // Only reachable with a slot restored from an old copy of the key-slot file.
            tracing::warn!(username = %account.username, "login refused: account disabled");
            return Err(AccessError::AccountDisabled);
        }
        let mut entry = AuditEntry::new(now, &account.username, workstation, AuditAction::LoggedIn)
            .subject(account_ref(&account.username));
        if unwrapped.previous_failures > 0 {
            entry = entry.detail(format!(
                "{} failed attempts before this login",
                unwrapped.previous_failures
            ));
        }
        store.append_audit(&entry)?;
        self.advance_recorded_head(&store)?;
        tracing::info!(username = %account.username, role = %account.role, workstation, "logged in");
        Ok(Session::new(
            self.clone(),
            unwrapped.key,
            account.id,
            account.username,
            account.display_name,
            account.role,
            workstation.to_string(),
            now,
        ))
    }

    /// Quick change of person at a shared reception PC: locks the current session (it stays
    /// locked if the new login fails) and logs the other person in.
    pub fn switch_user(
        &self,
        current: &mut Session,
        username: &str,
        password: &Password,
    ) -> Result<Session> {
        let lock_result = current.lock();
        let next = self.login(username, password, current.workstation())?;
        lock_result?;
        Ok(next)
    }

    /// Checks `password` against `username`'s slot, applying and counting lockouts.
    pub(crate) fn unwrap_for(
        &self,
        username: &str,
        password: &Password,
        now: DateTime<Utc>,
    ) -> Result<Unwrapped> {
        let Ok(username) = normalise_username(username) else {
            // Cannot be an account; still take the time a real check takes.
            keyslot::spend_equal_time(password, self.iterations());
            return Err(AccessError::WrongCredentials);
        };
        let mut slots = KeySlotFile::load(&self.keys)?;
        let mut unknown = self
            .unknown_usernames
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let has_slot = slots.slot(&username).is_some();
        let book = if has_slot {
            &mut slots.failed_logins
        } else {
            &mut *unknown
        };
        if let Some(lockout) = book.lockout(&username, now) {
            // Refused without trying the password, and not counted: a locked account is not
            // locked for longer by someone else hammering it.
            return Err(lockout.into_error());
        }
        let (opened, stored_iterations) = match slots.slot(&username) {
            Some(slot) => (
                keyslot::unwrap(slot, password, &self.keys)?,
                slot.iterations,
            ),
            None => {
                keyslot::spend_equal_time(password, self.iterations());
                (None, 0)
            }
        };
        let Some(key) = opened else {
            let (lockout, failures) = if has_slot {
                let lockout = slots
                    .failed_logins
                    .record_failure(&username, now, &self.settings);
                slots.save(&self.keys)?;
                (lockout, slots.failed_logins.failures(&username))
            } else {
                let lockout = unknown.record_failure(&username, now, &self.settings);
                (lockout, unknown.failures(&username))
            };
            tracing::warn!(
                username = %username,
                failures,
                "login refused: wrong username or password"
            );
            return Err(lockout.map_or(AccessError::WrongCredentials, |l| l.into_error()));
        };
        drop(unknown);
        let previous_failures = slots.failed_logins.clear_failures(&username);
        let weaker = stored_iterations < self.iterations().get();
        if weaker {
            // Raise an old slot to the current cost while the password is at hand.
            slots.put_slot(keyslot::wrap(
                &key,
                &username,
                password,
                self.iterations(),
                now,
            )?);
        }
        if weaker || previous_failures > 0 {
            slots.save(&self.keys)?;
        }
        Ok(Unwrapped {
            key,
            username,
            previous_failures,
        })
    }

    fn open_store(&self, key: &CacheKey) -> Result<Store> {
        // Store::open creates a missing file; here that would hide a lost cache behind a new
        // empty one.
        if !self.cache.exists() {
            return Err(AccessError::CacheMissing {
                path: self.cache.clone(),
            });
        }
        Ok(Store::open(&self.cache, key)?)
    }

    pub(crate) fn account_in_cache(&self, key: &CacheKey, username: &str) -> Result<Account> {
        let store = self.open_store(key)?;
        let stored = store
            .account(username)?
            .ok_or_else(|| AccessError::NoSuchAccount {
                username: username.to_string(),
            })?;
        Account::from_stored(stored, true)
    }

    /// Appends a standalone entry and moves the recorded chain head on.
    pub(crate) fn append_audit(&self, key: &CacheKey, entry: &AuditEntry) -> Result<()> {
        let mut store = self.open_store(key)?;
        store.append_audit(entry)?;
        self.advance_recorded_head(&store)
    }

    /// Records the log's current head in the key-slot file, but only if the log still
    /// reaches the head recorded before: otherwise the old head is kept as evidence that the
    /// newest entries were deleted or rewritten, and `audit verify` keeps saying so.
    fn advance_recorded_head(&self, store: &Store) -> Result<()> {
        let mut slots = KeySlotFile::load(&self.keys)?;
        if let Some(recorded) = slots.recorded_head(&self.keys)? {
            let check = store.check_audit_head(&recorded)?;
            if check != HeadCheck::Matches {
                tracing::warn!(
                    recorded_seq = recorded.seq,
                    "the audit log no longer reaches the recorded head; keeping it as evidence"
                );
                return Ok(());
            }
        }
        slots.set_head(store.audit_head()?);
        slots.save(&self.keys)
    }

    /// Records the chain head now (the app may call this after a busy spell of appends, so
    /// a deletion of those entries shows too). Each login, lock and logout does it anyway.
    pub fn record_audit_head(&self, session: &Session) -> Result<()> {
        let store = self.open_store(session.cache_key())?;
        self.advance_recorded_head(&store)
    }

    /// Every account, for the manager's staff list.
    pub fn accounts(&self, by: &mut Session) -> Result<Vec<Account>> {
        by.require(Operation::ManageAccounts, self.now())?;
        let store = self.open_store(by.cache_key())?;
        let slots = KeySlotFile::load(&self.keys)?;
        store
            .accounts()?
            .into_iter()
            .map(|a| {
                let has_slot = slots.slot(&a.username).is_some();
                Account::from_stored(a, has_slot)
            })
            .collect()
    }

    /// Adds a member of staff with their first password.
    pub fn add_account(&self, by: &mut Session, new: &NewAccount) -> Result<Account> {
        let now = self.now();
        by.require(Operation::ManageAccounts, now)?;
        let username = normalise_username(&new.username)?;
        let display_name = normalise_display_name(&new.display_name)?;
        new.password.check_policy(&username)?;
        let mut store = self.open_store(by.cache_key())?;
        if store.account(&username)?.is_some() {
            return Err(AccessError::UsernameTaken { username });
        }
        // The slow key derivation runs before the write transaction, not inside it.
        let slot = keyslot::wrap(
            by.cache_key(),
            &username,
            &new.password,
            self.iterations(),
            now,
        )?;
        let tx = store.transaction()?;
        tx.insert_account(&username, &display_name, new.role.as_str(), now)?;
        tx.append_audit(
            &by.audit_entry(now, AuditAction::AccountAdded)
                .subject(account_ref(&username))
                .detail(format!("role: {}", new.role)),
        )?;
        tx.commit()?;
        let mut slots = KeySlotFile::load(&self.keys)?;
        slots.put_slot(slot);
        slots.failed_logins.clear_failures(&username);
        slots.save(&self.keys)?;
        self.advance_recorded_head(&store)?;
        tracing::info!(username = %username, role = %new.role, by = %by.username(), "account added");
        let stored = store
            .account(&username)?
            .ok_or_else(|| AccessError::NoSuchAccount {
                username: username.clone(),
            })?;
        Account::from_stored(stored, true)
    }

    /// Disables an account: marked in the cache (kept, since the audit log names it) and its
    /// key slot removed, so that password no longer opens the cache.
    pub fn disable_account(&self, by: &mut Session, username: &str) -> Result<()> {
        let now = self.now();
        by.require(Operation::ManageAccounts, now)?;
        let username = self.known_username(username)?;
        if username == by.username() {
            return Err(AccessError::CannotDisableYourself);
        }
        let mut store = self.open_store(by.cache_key())?;
        let account = self.stored_account(&store, &username)?;
        let tx = store.transaction()?;
        if account.role == Role::Manager.as_str()
            && !account.disabled
            && tx.count_enabled_with_role(Role::Manager.as_str())? <= 1
        {
            return Err(AccessError::LastManager { username });
        }
        if !account.disabled {
            tx.set_account_disabled(&username, true, now)?;
            tx.append_audit(
                &by.audit_entry(now, AuditAction::AccountDisabled)
                    .subject(account_ref(&username)),
            )?;
        }
        tx.commit()?;
        // Also when already disabled: a slot left by an earlier crash goes now.
        let mut slots = KeySlotFile::load(&self.keys)?;
        slots.remove_slot(&username);
        slots.failed_logins.clear_failures(&username);
        slots.save(&self.keys)?;
        self.advance_recorded_head(&store)?;
        tracing::info!(username = %username, by = %by.username(), "account disabled");
        Ok(())
    }

    /// Re-enables a disabled account with a new password (the old slot is gone).
    pub fn enable_account(
        &self,
        by: &mut Session,
        username: &str,
        password: &Password,
    ) -> Result<()> {
        let now = self.now();
        by.require(Operation::ManageAccounts, now)?;
        let username = self.known_username(username)?;
        let mut store = self.open_store(by.cache_key())?;
        let account = self.stored_account(&store, &username)?;
        if !account.disabled {
            return Err(AccessError::AccountNotDisabled { username });
        }
        password.check_policy(&username)?;
        let slot = keyslot::wrap(by.cache_key(), &username, password, self.iterations(), now)?;
        let tx = store.transaction()?;
        tx.set_account_disabled(&username, false, now)?;
        tx.append_audit(
            &by.audit_entry(now, AuditAction::AccountEnabled)
                .subject(account_ref(&username)),
        )?;
        tx.commit()?;
        self.replace_slot(slot)?;
        self.advance_recorded_head(&store)?;
        tracing::info!(username = %username, by = %by.username(), "account enabled");
        Ok(())
    }

    /// A manager sets a new password for someone who has forgotten theirs (or is locked
    /// out): the slot is re-wrapped and failed attempts are cleared.
    pub fn reset_password(
        &self,
        by: &mut Session,
        username: &str,
        new_password: &Password,
    ) -> Result<()> {
        let now = self.now();
        by.require(Operation::ManageAccounts, now)?;
        let username = self.known_username(username)?;
        let mut store = self.open_store(by.cache_key())?;
        let account = self.stored_account(&store, &username)?;
        if account.disabled {
            return Err(AccessError::AccountIsDisabled { username });
        }
        new_password.check_policy(&username)?;
        let slot = keyslot::wrap(
            by.cache_key(),
            &username,
            new_password,
            self.iterations(),
            now,
        )?;
        let tx = store.transaction()?;
        tx.mark_account_changed(&username, now)?;
        tx.append_audit(
            &by.audit_entry(now, AuditAction::PasswordReset)
                .subject(account_ref(&username)),
        )?;
        tx.commit()?;
        self.replace_slot(slot)?;
        self.advance_recorded_head(&store)?;
        tracing::info!(username = %username, by = %by.username(), "password reset");
        Ok(())
    }

    /// Anyone changes their own password, giving the current one.
    pub fn change_password(
        &self,
        session: &mut Session,
        current: &Password,
        new_password: &Password,
    ) -> Result<()> {
        let now = self.now();
        session.require_unlocked(now)?;
        new_password.check_policy(session.username())?;
        let unwrapped = match self.unwrap_for(session.username(), current, now) {
            Err(AccessError::WrongCredentials) => return Err(AccessError::WrongPassword),
            other => other?,
        };
        if &unwrapped.key != session.cache_key() {
            return Err(AccessError::WrongPassword);
        }
        let slot = keyslot::wrap(
            session.cache_key(),
            session.username(),
            new_password,
            self.iterations(),
            now,
        )?;
        let mut store = self.open_store(session.cache_key())?;
        let tx = store.transaction()?;
        tx.mark_account_changed(session.username(), now)?;
        tx.append_audit(
            &session
                .audit_entry(now, AuditAction::PasswordChanged)
                .subject(account_ref(session.username())),
        )?;
        tx.commit()?;
        self.replace_slot(slot)?;
        self.advance_recorded_head(&store)?;
        session.touch(now);
        tracing::info!(username = %session.username(), "password changed");
        Ok(())
    }

    fn replace_slot(&self, slot: keyslot::KeySlot) -> Result<()> {
        let mut slots = KeySlotFile::load(&self.keys)?;
        slots.failed_logins.clear_failures(&slot.username);
        slots.put_slot(slot);
        slots.save(&self.keys)
    }

    fn known_username(&self, typed: &str) -> Result<String> {
        normalise_username(typed).map_err(|_| AccessError::NoSuchAccount {
            username: typed.trim().to_string(),
        })
    }

    fn stored_account(&self, store: &Store, username: &str) -> Result<StoredAccount> {
        store
            .account(username)?
            .ok_or_else(|| AccessError::NoSuchAccount {
                username: username.to_string(),
            })
    }

    /// `lifeboat audit verify`: walks the hash chain and compares its end with the head
    /// recorded in the key-slot file. The check itself is audited.
    pub fn verify_audit(&self, by: &mut Session) -> Result<AuditVerification> {
        let now = self.now();
        by.require(Operation::ViewAudit, now)?;
        let mut store = self.open_store(by.cache_key())?;
        let recorded = KeySlotFile::load(&self.keys)?.recorded_head(&self.keys)?;
        let verification = store.verify_audit_against(recorded.as_ref())?;
        let outcome = match &verification.problem {
            Some(p) => format!("broken at entry {} ({})", p.seq, p.kind.as_str()),
            None if verification.is_intact() => "intact".to_string(),
            None => "newest entries missing or rewritten".to_string(),
        };
        store.append_audit(
            &by.audit_entry(now, AuditAction::AuditVerified)
                .detail(outcome),
        )?;
        self.advance_recorded_head(&store)?;
        tracing::info!(intact = verification.is_intact(), "audit log verified");
        Ok(verification)
    }

    /// After a manager has looked into a reported break, records the log's end as it now
    /// stands, so later checks compare against it. The break stays in the log and this
    /// decision is itself audited with the manager's reason (no patient details, please).
    pub fn accept_audit_as_it_stands(&self, by: &mut Session, reason: &str) -> Result<()> {
        let now = self.now();
        by.require(Operation::ViewAudit, now)?;
        let mut store = self.open_store(by.cache_key())?;
        store.append_audit(
            &by.audit_entry(now, AuditAction::AuditVerified)
                .detail(format!("manager accepted the log as it stands: {reason}")),
        )?;
        let mut slots = KeySlotFile::load(&self.keys)?;
        slots.set_head(store.audit_head()?);
        slots.save(&self.keys)
    }

    /// A manager's export of the audit log for a patient (`subject`) or a time range; the
    /// export is itself audited.
    pub fn export_audit(&self, by: &mut Session, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let now = self.now();
        by.require(Operation::ExportAudit, now)?;
        let mut store = self.open_store(by.cache_key())?;
        let records = store.audit_entries(filter)?;
        let mut entry = by
            .audit_entry(now, AuditAction::AuditExported)
            .detail(format!("{} entries", records.len()));
        if let Some(subject) = &filter.subject {
            entry = entry.subject(subject.clone());
        }
        store.append_audit(&entry)?;
        self.advance_recorded_head(&store)?;
        Ok(records)
    }
}

fn restrict_to_owner(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(AccessError::io(path))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
