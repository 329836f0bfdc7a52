//! The access layer driven as the app will drive it: setup, logins, lockouts, account tasks,
//! sessions, and what ends up in the audit log, the key-slot file and the logs.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use lifeboat_model::FixedClock;
use lifeboat_store::{AuditAction, AuditFilter, CacheKey, HeadCheck, Store, StoreError};

use crate::*;

const MANAGER_PASSWORD: &str = "practice manager 2024";
const RECEPTION_PASSWORD: &str = "front desk morning";
const CLINICIAN_PASSWORD: &str = "consulting room 3";

struct Practice {
    _dir: tempfile::TempDir,
    cache: PathBuf,
    clock: Arc<FixedClock>,
    access: Access,
}

fn settings() -> AccessSettings {
    AccessSettings {
        // Small so the tests run fast; the count is stored per slot, so this is exercised
        // exactly as the release count is.
        kdf_iterations: NonZeroU32::new(1_000).expect("not zero"),
        ..AccessSettings::default()
    }
}

fn practice() -> Practice {
    practice_with(settings())
}

fn practice_with(settings: AccessSettings) -> Practice {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("lifeboat.db");
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2024, 7, 19, 8, 0, 0).unwrap(),
    ));
    let access = Access::new(&cache, settings, clock.clone());
    Practice {
        _dir: dir,
        cache,
        clock,
        access,
    }
}

impl Practice {
    /// Set up with a manager, a receptionist and a clinician; returns the manager's session.
    fn staffed(&self) -> Session {
        let mut manager = self
            .access
            .setup(
                "pat.manager",
                "Pat Manager",
                &Password::new(MANAGER_PASSWORD),
                "office-pc",
            )
            .expect("setup");
        for (username, name, role, password) in [
            (
                "sam.patel",
                "Sam Patel",
                Role::Receptionist,
                RECEPTION_PASSWORD,
            ),
            (
                "dr.okafor",
                "Dr Amara Okafor",
                Role::Clinician,
                CLINICIAN_PASSWORD,
            ),
        ] {
            self.access
                .add_account(
                    &mut manager,
                    &NewAccount {
                        username: username.into(),
                        display_name: name.into(),
                        role,
                        password: Password::new(password),
                    },
                )
                .expect("add account");
        }
        manager
    }

    fn login(&self, username: &str, password: &str) -> Result<Session> {
        self.access
            .login(username, &Password::new(password), "reception-1")
    }

    fn advance(&self, seconds: i64) {
        self.clock.advance(Duration::seconds(seconds));
    }

    fn now(&self) -> chrono::DateTime<Utc> {
        use lifeboat_model::Clock;
        self.clock.now()
    }

    fn keys_text(&self) -> String {
        std::fs::read_to_string(self.access.key_slot_path()).expect("key-slot file")
    }

    /// A second, raw connection with the key: how someone with the key would tamper.
    fn raw(&self, key: &CacheKey) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(&self.cache).expect("open raw");
        let hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        c.execute_batch(&format!(
            "PRAGMA key = \"x'{hex}'\"; {}",
            lifeboat_store::CIPHER.pragmas("main")
        ))
        .expect("key");
        c
    }
}

fn actions(store: &Store) -> Vec<String> {
    store
        .audit_entries(&AuditFilter::default())
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect()
}

#[test]
fn setup_creates_the_cache_its_first_manager_and_one_key_slot() {
    let p = practice();
    assert!(!p.access.is_set_up());
    let manager = p
        .access
        .setup(
            "Pat.Manager",
            "Pat Manager",
            &Password::new(MANAGER_PASSWORD),
            "office-pc",
        )
        .unwrap();
    assert!(p.access.is_set_up());
    assert_eq!(manager.role(), Role::Manager);
    assert_eq!(manager.username(), "pat.manager");
    assert!(p.cache.exists());
    // No leftovers of the temporary build.
    let names: Vec<String> = std::fs::read_dir(p.cache.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("setting-up")), "{names:?}");

    let store = Store::open(&p.cache, manager.cache_key()).unwrap();
    let account = store.account("pat.manager").unwrap().unwrap();
    assert_eq!(account.role, "manager");
    assert_eq!(actions(&store), ["practice_set_up"]);
    assert!(store.verify_audit().unwrap().is_intact());

    // The same person logs in again with the same password and gets the same key.
    let again = p.login("pat.manager", MANAGER_PASSWORD).unwrap();
    assert_eq!(again.cache_key(), manager.cache_key());
}

#[test]
fn setup_refuses_when_a_cache_already_exists_and_leaves_it_alone() {
    let p = practice();
    std::fs::write(&p.cache, b"an older cache").unwrap();
    let err = p
        .access
        .setup("pat", "Pat", &Password::new(MANAGER_PASSWORD), "pc")
        .unwrap_err();
    assert!(matches!(err, AccessError::AlreadySetUp { .. }), "{err}");
    assert!(err.to_string().contains("already set up"));
    assert_eq!(std::fs::read(&p.cache).unwrap(), b"an older cache");
    assert!(!p.access.key_slot_path().exists());
}

#[test]
fn setup_refuses_a_second_time_and_when_only_key_slots_exist() {
    let p = practice();
    p.staffed();
    let err = p
        .access
        .setup("other", "Other", &Password::new(MANAGER_PASSWORD), "pc")
        .unwrap_err();
    assert!(matches!(err, AccessError::AlreadySetUp { .. }));
    // The key slots alone (the cache moved away) are not overwritten either.
    std::fs::rename(&p.cache, p.cache.with_extension("moved")).unwrap();
    let before = p.keys_text();
    let err = p
        .access
        .setup("other", "Other", &Password::new(MANAGER_PASSWORD), "pc")
        .unwrap_err();
    assert!(matches!(err, AccessError::AlreadySetUp { .. }));
    assert_eq!(p.keys_text(), before);
    // And logging in says what is wrong rather than making a new empty cache.
    let err = p.login("pat.manager", MANAGER_PASSWORD).unwrap_err();
    assert!(matches!(err, AccessError::CacheMissing { .. }), "{err}");
    assert!(!p.cache.exists());
}

#[test]
fn setup_with_a_weak_password_creates_nothing() {
    let p = practice();
    let err = p
        .access
        .setup("pat", "Pat", &Password::new("short"), "pc")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "a password must be at least 10 characters long"
    );
    assert!(!p.cache.exists());
    assert!(!p.access.key_slot_path().exists());
}

#[test]
fn a_wrong_password_is_refused_and_counted() {
    let p = practice();
    p.staffed();
    let err = p.login("sam.patel", "front desk evening").unwrap_err();
    assert!(matches!(err, AccessError::WrongCredentials));
    assert_eq!(err.to_string(), "wrong username or password");
    assert!(p.keys_text().contains("\"count\": 1"), "{}", p.keys_text());
    let err = p.login("sam.patel", "front desk evening").unwrap_err();
    assert!(matches!(err, AccessError::WrongCredentials));
    assert!(p.keys_text().contains("\"count\": 2"));
}

#[test]
fn an_unknown_username_gets_the_same_answer_as_a_wrong_password() {
    let p = practice();
    p.staffed();
    let unknown = p.login("nobody.here", RECEPTION_PASSWORD).unwrap_err();
    let wrong = p.login("sam.patel", "front desk evening").unwrap_err();
    assert_eq!(unknown.to_string(), wrong.to_string());
    assert_eq!(unknown.code(), wrong.code());
    let malformed = p.login("no such person!", RECEPTION_PASSWORD).unwrap_err();
    assert_eq!(malformed.to_string(), wrong.to_string());
}

#[test]
fn five_failures_lock_the_username_until_the_backoff_has_passed() {
    let p = practice();
    p.staffed();
    for _ in 0..4 {
        assert!(matches!(
            p.login("sam.patel", "not my password").unwrap_err(),
            AccessError::WrongCredentials
        ));
    }
    let fifth = p.login("sam.patel", "not my password").unwrap_err();
    assert_eq!(fifth.code(), "locked_out");
    assert!(
        fifth
            .to_string()
            .starts_with("this account is locked for 30 s after 5 failed attempts"),
        "{fifth}"
    );
    // While locked, even the right password is refused.
    p.advance(29);
    let err = p.login("sam.patel", RECEPTION_PASSWORD).unwrap_err();
    assert!(
        matches!(
            err,
            AccessError::LockedOut {
                seconds: 1,
                failures: 5
            }
        ),
        "{err}"
    );
    // Others are not affected.
    p.login("dr.okafor", CLINICIAN_PASSWORD).unwrap();
    // A further failure after the lock doubles it.
    p.advance(1);
    let sixth = p.login("sam.patel", "not my password").unwrap_err();
    assert!(
        matches!(
            sixth,
            AccessError::LockedOut {
                seconds: 60,
                failures: 6
            }
        ),
        "{sixth}"
    );
    p.advance(60);
    let session = p.login("sam.patel", RECEPTION_PASSWORD).unwrap();
    // Success clears the count, and the audit log says there were failures.
    assert!(!p.keys_text().contains("sam.patel\": {"));
    let store = Store::open(&p.cache, session.cache_key()).unwrap();
    let login = store
        .audit_entries(&AuditFilter {
            subject: Some("Account/sam.patel".into()),
            ..AuditFilter::default()
        })
        .unwrap()
        .into_iter()
        .rfind(|r| r.action == "logged_in")
        .unwrap();
    assert_eq!(
        login.detail.as_deref(),
        Some("6 failed attempts before this login")
    );
    for _ in 0..4 {
        p.login("sam.patel", "not my password").unwrap_err();
    }
    // The count started again from zero: four failures do not lock.
    p.login("sam.patel", RECEPTION_PASSWORD).unwrap();
}

#[test]
fn unknown_usernames_are_locked_out_too() {
    let p = practice();
    p.staffed();
    for _ in 0..4 {
        p.login("guess", "whatever1234").unwrap_err();
    }
    assert_eq!(
        p.login("guess", "whatever1234").unwrap_err().code(),
        "locked_out"
    );
    // What was typed as a username is not written to the readable key-slot file: people
    // type passwords into the username box.
    p.login("front.desk.morning", "whatever1234").unwrap_err();
    assert!(!p.keys_text().contains("guess"));
    assert!(!p.keys_text().contains("front.desk.morning"));
}

#[test]
fn the_role_comes_from_the_encrypted_cache() {
    let p = practice();
    p.staffed();
    assert_eq!(
        p.login("sam.patel", RECEPTION_PASSWORD).unwrap().role(),
        Role::Receptionist
    );
    assert_eq!(
        p.login("DR.OKAFOR", CLINICIAN_PASSWORD).unwrap().role(),
        Role::Clinician
    );
}

#[test]
fn a_receptionist_is_refused_clinical_data_and_account_tasks_in_the_core() {
    let p = practice();
    p.staffed();
    let mut sam = p.login("sam.patel", RECEPTION_PASSWORD).unwrap();
    sam.require(Operation::SearchPatients, p.now()).unwrap();
    sam.require(Operation::BookAppointment, p.now()).unwrap();
    let err = sam
        .require(Operation::ViewClinicalSummary, p.now())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "your role (receptionist) does not allow viewing clinical summaries"
    );
    let err = p
        .access
        .add_account(
            &mut sam,
            &NewAccount {
                username: "new.person".into(),
                display_name: "New Person".into(),
                role: Role::Manager,
                password: Password::new("a long enough password"),
            },
        )
        .unwrap_err();
    assert!(matches!(
        err,
        AccessError::NotPermitted {
            role: Role::Receptionist,
            operation: Operation::ManageAccounts
        }
    ));
    assert!(p.login("new.person", "a long enough password").is_err());
    for refused in [
        p.access.accounts(&mut sam).map(|_| ()),
        p.access
            .reset_password(&mut sam, "pat.manager", &Password::new("taken over 123"))
            .map(|_| ()),
        p.access.disable_account(&mut sam, "pat.manager"),
        p.access.verify_audit(&mut sam).map(|_| ()),
        p.access
            .export_audit(&mut sam, &AuditFilter::default())
            .map(|_| ()),
    ] {
        assert_eq!(refused.unwrap_err().code(), "not_permitted");
    }
    // The refusals changed nothing: the manager's password still works.
    p.login("pat.manager", MANAGER_PASSWORD).unwrap();
}

#[test]
fn each_role_is_refused_what_the_policy_refuses_through_a_real_session() {
    let p = practice();
    let mut manager = p.staffed();
    let mut sam = p.login("sam.patel", RECEPTION_PASSWORD).unwrap();
    let mut okafor = p.login("dr.okafor", CLINICIAN_PASSWORD).unwrap();
    for op in Operation::ALL {
        for (session, role) in [
            (&mut sam, Role::Receptionist),
            (&mut okafor, Role::Clinician),
            (&mut manager, Role::Manager),
        ] {
            let result = session.require(op, p.now());
            assert_eq!(result.is_ok(), role.permits(op), "{role} {op:?}");
            if let Err(e) = result {
                assert!(
                    matches!(e, AccessError::NotPermitted { operation, .. } if operation == op)
                );
            }
        }
    }
}

#[test]
fn a_password_change_rewraps_the_slot_old_password_refused_new_one_opens_the_cache() {
    let p = practice();
    p.staffed();
    let mut sam = p.login("sam.patel", RECEPTION_PASSWORD).unwrap();
    let key = sam.cache_key().clone();
    let err = p
        .access
        .change_password(
            &mut sam,
            &Password::new("not the current one"),
            &Password::new("new front desk pass"),
        )
        .unwrap_err();
    assert!(matches!(err, AccessError::WrongPassword), "{err}");
    let err = p
        .access
        .change_password(
            &mut sam,
            &Password::new(RECEPTION_PASSWORD),
            &Password::new("short"),
        )
        .unwrap_err();
    assert_eq!(err.code(), "weak_password");
    p.access
        .change_password(
            &mut sam,
            &Password::new(RECEPTION_PASSWORD),
            &Password::new("new front desk pass"),
        )
        .unwrap();
    assert!(matches!(
        p.login("sam.patel", RECEPTION_PASSWORD).unwrap_err(),
        AccessError::WrongCredentials
    ));
    let again = p.login("sam.patel", "new front desk pass").unwrap();
    assert_eq!(again.cache_key(), &key);
    let store = Store::open(&p.cache, again.cache_key()).unwrap();
    assert!(actions(&store).contains(&"password_changed".to_string()));
}

#[test]
fn a_manager_reset_rewraps_and_clears_a_lockout() {
    let p = practice();
    let mut manager = p.staffed();
    for _ in 0..5 {
        p.login("sam.patel", "forgotten it again").unwrap_err();
    }
    assert_eq!(
        p.login("sam.patel", RECEPTION_PASSWORD).unwrap_err().code(),
        "locked_out"
    );
    p.access
        .reset_password(
            &mut manager,
            "sam.patel",
            &Password::new("reset by the manager"),
        )
        .unwrap();
    assert!(p.login("sam.patel", RECEPTION_PASSWORD).is_err());
    let sam = p.login("sam.patel", "reset by the manager").unwrap();
    assert_eq!(sam.cache_key(), manager.cache_key());
    let err = p
        .access
        .reset_password(
            &mut manager,
            "nobody",
            &Password::new("reset by the manager"),
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "there is no account called nobody");
}

#[test]
fn a_disabled_account_can_no_longer_open_the_cache_and_others_still_can() {
    let p = practice();
    let mut manager = p.staffed();
    assert!(p.keys_text().contains("\"username\": \"sam.patel\""));
    let old_keys = p.keys_text();
    p.access.disable_account(&mut manager, "sam.patel").unwrap();
    assert!(!p.keys_text().contains("\"username\": \"sam.patel\""));
    assert!(matches!(
        p.login("sam.patel", RECEPTION_PASSWORD).unwrap_err(),
        AccessError::WrongCredentials
    ));
    p.login("dr.okafor", CLINICIAN_PASSWORD).unwrap();
    p.login("pat.manager", MANAGER_PASSWORD).unwrap();
    let accounts = p.access.accounts(&mut manager).unwrap();
    let sam = accounts.iter().find(|a| a.username == "sam.patel").unwrap();
    assert!(sam.disabled && !sam.can_log_in);

    // A key-slot file restored from before the change still opens the key (the data key
    // cannot be taken back; see docs/security.md) but Lifeboat refuses the login.
    std::fs::write(p.access.key_slot_path(), old_keys).unwrap();
    assert!(matches!(
        p.login("sam.patel", RECEPTION_PASSWORD).unwrap_err(),
        AccessError::AccountDisabled
    ));

    // Enabled again with a new password.
    let mut manager = p.login("pat.manager", MANAGER_PASSWORD).unwrap();
    p.access
        .enable_account(
            &mut manager,
            "sam.patel",
            &Password::new("back from leave 2024"),
        )
        .unwrap();
    p.login("sam.patel", "back from leave 2024").unwrap();
}

#[test]
fn a_manager_cannot_disable_themselves_and_the_last_manager_stays() {
    let p = practice();
    let mut manager = p.staffed();
    assert!(matches!(
        p.access.disable_account(&mut manager, "pat.manager"),
        Err(AccessError::CannotDisableYourself)
    ));
    p.access
        .add_account(
            &mut manager,
            &NewAccount {
                username: "deputy".into(),
                display_name: "Deputy Manager".into(),
                role: Role::Manager,
                password: Password::new("deputy manager pw"),
            },
        )
        .unwrap();
    let mut deputy = p.login("deputy", "deputy manager pw").unwrap();
    p.access
        .disable_account(&mut deputy, "pat.manager")
        .unwrap();
    assert!(p.login("pat.manager", MANAGER_PASSWORD).is_err());
    assert!(matches!(
        p.access.disable_account(&mut deputy, "deputy"),
        Err(AccessError::CannotDisableYourself)
    ));
    let err = p
        .access
        .add_account(
            &mut deputy,
            &NewAccount {
                username: "sam.patel".into(),
                display_name: "Another Sam".into(),
                role: Role::Receptionist,
                password: Password::new("another password"),
            },
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "there is already an account called sam.patel"
    );
}

#[test]
fn the_cache_is_unreadable_without_a_valid_credential() {
    let p = practice();
    let manager = p.staffed();
    // No key slot, no key: a random key does not open it, nor does plain SQLite.
    let guess = CacheKey::from_bytes([42; 32]);
    assert!(matches!(
        Store::open(&p.cache, &guess),
        Err(StoreError::WrongKeyOrNotACache(_))
    ));
    let bytes = std::fs::read(&p.cache).unwrap();
    assert!(!bytes.starts_with(b"SQLite format 3"));
    assert!(!bytes.windows(9).any(|w| w == b"sam.patel"));
    // The key-slot file holds no copy of the key.
    let hex: String = manager
        .cache_key()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!p.keys_text().contains(&hex));
    // Without the key-slot file nobody gets in.
    std::fs::remove_file(p.access.key_slot_path()).unwrap();
    assert!(matches!(
        p.login("pat.manager", MANAGER_PASSWORD).unwrap_err(),
        AccessError::NotSetUp { .. }
    ));
}

#[test]
fn a_damaged_key_slot_file_is_reported_not_panicked_on() {
    let p = practice();
    p.staffed();
    std::fs::write(p.access.key_slot_path(), "{ not json").unwrap();
    let err = p.login("pat.manager", MANAGER_PASSWORD).unwrap_err();
    assert!(
        matches!(err, AccessError::KeySlotFileDamaged { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("restore it from a backup"));
}

#[test]
fn an_idle_session_locks_after_the_timeout_and_unlocking_needs_the_password() {
    let p = practice();
    p.staffed();
    let mut sam = p.login("sam.patel", RECEPTION_PASSWORD).unwrap();
    p.advance(4 * 60 + 59);
    sam.require(Operation::ViewAppointments, p.now()).unwrap();
    // Activity restarts the clock.
    p.advance(4 * 60 + 59);
    assert!(!sam.is_idle(p.now()));
    p.advance(1);
    let err = sam
        .require(Operation::ViewAppointments, p.now())
        .unwrap_err();
    assert!(matches!(err, AccessError::Locked));
    assert_eq!(
        err.to_string(),
        "this session is locked: enter your password to carry on"
    );
    assert!(sam.is_locked());
    // Touching a locked session does not unlock it.
    sam.touch(p.now());
    assert!(sam.require(Operation::SearchPatients, p.now()).is_err());
    let err = sam
        .unlock(&Password::new("front desk evening"))
        .unwrap_err();
    assert!(matches!(err, AccessError::WrongPassword));
    assert!(sam.is_locked());
    // Someone else's password does not unlock it either.
    assert!(sam.unlock(&Password::new(CLINICIAN_PASSWORD)).is_err());
    sam.unlock(&Password::new(RECEPTION_PASSWORD)).unwrap();
    assert!(!sam.is_locked());
    sam.require(Operation::SearchPatients, p.now()).unwrap();

    let store = Store::open(&p.cache, sam.cache_key()).unwrap();
    let trail: Vec<_> = store
        .audit_entries(&AuditFilter {
            actor: Some("sam.patel".into()),
            ..AuditFilter::default()
        })
        .unwrap();
    let lock = trail.iter().find(|r| r.action == "session_locked").unwrap();
    assert_eq!(
        lock.detail.as_deref(),
        Some("locked after the idle timeout")
    );
    assert_eq!(lock.workstation, "reception-1");
    assert!(trail.iter().any(|r| r.action == "session_unlocked"));
}

#[test]
fn the_idle_timeout_comes_from_the_settings() {
    let p = practice_with(AccessSettings {
        idle_timeout: Duration::minutes(2),
        ..settings()
    });
    p.staffed();
    let mut sam = p.login("sam.patel", RECEPTION_PASSWORD).unwrap();
    assert_eq!(sam.info().idle_timeout_seconds, 120);
    p.advance(120);
    assert!(sam.lock_if_idle(p.now()).unwrap());
    assert!(!sam.lock_if_idle(p.now()).unwrap(), "already locked");
}

#[test]
fn a_locked_session_refuses_everything_until_unlocked() {
    let p = practice();
    let mut manager = p.staffed();
    manager.lock().unwrap();
    for op in Operation::ALL {
        assert!(matches!(
            manager.require(op, p.now()),
            Err(AccessError::Locked)
        ));
    }
    assert!(matches!(
        p.access.accounts(&mut manager),
        Err(AccessError::Locked)
    ));
    assert!(matches!(
        p.access.change_password(
            &mut manager,
            &Password::new(MANAGER_PASSWORD),
            &Password::new("a new manager password")
        ),
        Err(AccessError::Locked)
    ));
    manager.unlock(&Password::new(MANAGER_PASSWORD)).unwrap();
    assert!(p.access.accounts(&mut manager).is_ok());
}

#[test]
fn switching_user_locks_the_first_session_and_opens_the_second() {
    let p = practice();
    p.staffed();
    let mut sam = p.login("sam.patel", RECEPTION_PASSWORD).unwrap();
    let mut okafor = p
        .access
        .switch_user(&mut sam, "dr.okafor", &Password::new(CLINICIAN_PASSWORD))
        .unwrap();
    assert!(sam.is_locked());
    assert_eq!(okafor.workstation(), "reception-1");
    okafor
        .require(Operation::ViewClinicalSummary, p.now())
        .unwrap();
    // A failed switch leaves the first session locked.
    let err = p
        .access
        .switch_user(&mut okafor, "sam.patel", &Password::new("wrong password!"))
        .unwrap_err();
    assert!(matches!(err, AccessError::WrongCredentials));
    assert!(okafor.is_locked());
    okafor.logout().unwrap();
}

#[test]
fn unlocking_is_refused_once_the_account_is_disabled() {
    let p = practice();
    let mut manager = p.staffed();
    let mut sam = p.login("sam.patel", RECEPTION_PASSWORD).unwrap();
    sam.lock().unwrap();
    p.access.disable_account(&mut manager, "sam.patel").unwrap();
    assert!(sam.unlock(&Password::new(RECEPTION_PASSWORD)).is_err());
    assert!(sam.is_locked());
}

#[test]
fn logins_locks_and_account_changes_are_audited_with_who_and_where() {
    let p = practice();
    let manager = p.staffed();
    let mut sam = p.login("sam.patel", RECEPTION_PASSWORD).unwrap();
    sam.lock().unwrap();
    sam.unlock(&Password::new(RECEPTION_PASSWORD)).unwrap();
    sam.logout().unwrap();
    let store = Store::open(&p.cache, manager.cache_key()).unwrap();
    assert_eq!(
        actions(&store),
        [
            "practice_set_up",
            "account_added",
            "account_added",
            "logged_in",
            "session_locked",
            "session_unlocked",
            "logged_out",
        ]
    );
    let added = store
        .audit_entries(&AuditFilter {
            subject: Some("Account/dr.okafor".into()),
            ..AuditFilter::default()
        })
        .unwrap();
    assert_eq!(added[0].actor, "pat.manager");
    assert_eq!(added[0].workstation, "office-pc");
    assert_eq!(added[0].detail.as_deref(), Some("role: clinician"));
    assert!(store.verify_audit().unwrap().is_intact());
}

#[test]
fn the_chain_head_kept_with_the_key_slots_shows_deleted_newest_entries() {
    let p = practice();
    let mut manager = p.staffed();
    let mut sam = p.login("sam.patel", RECEPTION_PASSWORD).unwrap();
    sam.lock().unwrap();
    let verification = p.access.verify_audit(&mut manager).unwrap();
    assert!(verification.is_intact(), "{}", verification.describe());
    assert_eq!(verification.head, HeadCheck::Matches);

    // Someone with the key deletes the last few entries (their own lock and the check).
    let last = verification.last.unwrap().seq;
    p.raw(manager.cache_key())
        .execute("DELETE FROM audit WHERE seq >= ?1", [last - 1])
        .unwrap();
    // The remaining chain is valid on its own...
    let store = Store::open(&p.cache, manager.cache_key()).unwrap();
    assert!(store.verify_audit().unwrap().problem.is_none());
    drop(store);
    // ...and logging in again does not paper over the gap...
    let mut manager = p.login("pat.manager", MANAGER_PASSWORD).unwrap();
    // ...so the check against the recorded head reports it.
    let verification = p.access.verify_audit(&mut manager).unwrap();
    assert!(!verification.is_intact());
    assert!(
        matches!(verification.head, HeadCheck::Truncated { recorded_seq, .. } if recorded_seq == last + 1)
            || matches!(verification.head, HeadCheck::Rewritten { .. }),
        "{:?}",
        verification.head
    );
    assert!(
        verification.describe().contains("newest entries"),
        "{}",
        verification.describe()
    );

    // A manager who has looked into it accepts the log as it stands; the break is audited.
    p.access
        .accept_audit_as_it_stands(&mut manager, "entries lost in a restore; incident 42")
        .unwrap();
    assert!(p.access.verify_audit(&mut manager).unwrap().is_intact());
}

#[test]
fn a_manager_exports_the_audit_for_one_record_and_the_export_is_audited() {
    let p = practice();
    let mut manager = p.staffed();
    let mut store = Store::open(&p.cache, manager.cache_key()).unwrap();
    for subject in ["Patient/p1", "Patient/p2", "Patient/p1"] {
        store
            .append_audit(
                &manager
                    .audit_entry(p.now(), AuditAction::DemographicsViewed)
                    .subject(subject),
            )
            .unwrap();
    }
    let records = p
        .access
        .export_audit(
            &mut manager,
            &AuditFilter {
                subject: Some("Patient/p1".into()),
                ..AuditFilter::default()
            },
        )
        .unwrap();
    assert_eq!(records.len(), 2);
    assert!(
        records
            .iter()
            .all(|r| r.subject.as_deref() == Some("Patient/p1"))
    );
    assert_eq!(actions(&store).last().unwrap(), "audit_exported");
}

#[test]
fn an_older_weaker_slot_is_raised_to_the_current_iteration_count_at_login() {
    let p = practice();
    p.staffed();
    assert!(p.keys_text().contains("\"iterations\": 1000"));
    let stronger = Access::new(
        &p.cache,
        AccessSettings {
            kdf_iterations: NonZeroU32::new(2_000).unwrap(),
            ..settings()
        },
        p.clock.clone(),
    );
    stronger
        .login("sam.patel", &Password::new(RECEPTION_PASSWORD), "pc")
        .unwrap();
    assert!(p.keys_text().contains("\"iterations\": 2000"));
    // Still opens, at the new cost.
    stronger
        .login("sam.patel", &Password::new(RECEPTION_PASSWORD), "pc")
        .unwrap();
}

#[test]
fn logins_log_no_password_and_no_key() {
    let p = practice();
    let manager = p.staffed();
    let ((), logs) = crate::logging::capture(|| {
        let _ = p.login("sam.patel", "wrong but secret words");
        let _ = p.login("unknown.person", "another secret phrase");
        let mut sam = p.login("sam.patel", RECEPTION_PASSWORD).expect("login");
        sam.lock().expect("lock");
        sam.unlock(&Password::new(RECEPTION_PASSWORD))
            .expect("unlock");
        let _ = sam.require(Operation::ViewClinicalSummary, p.now());
        sam.logout().expect("logout");
    });
    assert!(logs.contains("login refused"), "{logs}");
    assert!(logs.contains("logged in"), "{logs}");
    for secret in [
        "wrong but secret words",
        "another secret phrase",
        RECEPTION_PASSWORD,
    ] {
        assert!(!logs.contains(secret), "a password was logged:\n{logs}");
    }
    let hex: String = manager
        .cache_key()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!logs.contains(&hex), "the key was logged");
}

#[test]
fn a_key_slot_file_from_another_cache_does_not_unlock_a_session() {
    // A colleague sets up their own Lifeboat with the same username and a password they
    // know, and swaps its key-slot file in while Sam's screen is locked.
    let p = practice();
    p.staffed();
    let other = practice();
    other.staffed();
    let mut sam = p.login("sam.patel", RECEPTION_PASSWORD).unwrap();
    let mut manager_elsewhere = other.login("pat.manager", MANAGER_PASSWORD).unwrap();
    other
        .access
        .reset_password(
            &mut manager_elsewhere,
            "sam.patel",
            &Password::new("chosen by a colleague"),
        )
        .unwrap();
    sam.lock().unwrap();
    std::fs::copy(other.access.key_slot_path(), p.access.key_slot_path()).unwrap();
    let err = sam
        .unlock(&Password::new("chosen by a colleague"))
        .unwrap_err();
    assert!(matches!(err, AccessError::WrongPassword), "{err}");
    assert!(sam.is_locked());
    // Nor does it log anyone in to this cache.
    assert!(p.login("sam.patel", "chosen by a colleague").is_err());
}
