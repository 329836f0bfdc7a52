//! The access layer's one error type. Messages are sentences a receptionist can act on, and
//! never contain a password, a key or patient data. A wrong password and an unknown username
//! read the same, so the login screen does not tell a stranger which usernames exist.

use std::path::PathBuf;

use crate::role::{Operation, Role};

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("wrong username or password")]
    WrongCredentials,
    /// Unlocking a session or changing one's own password: the username is already known.
    #[error("wrong password")]
    WrongPassword,
    #[error(
        "this account is locked for {seconds} s after {failures} failed attempts; try again then, or ask a practice manager to reset the password"
    )]
    LockedOut { seconds: i64, failures: u32 },
    #[error("this account has been disabled; ask a practice manager")]
    AccountDisabled,
    #[error("this session is locked: enter your password to carry on")]
    Locked,
    #[error("your role ({role}) does not allow {operation}")]
    NotPermitted { role: Role, operation: Operation },

    #[error("a password must be at least {min} characters long")]
    PasswordTooShort { min: usize },
    #[error("a password must be at most {max} characters long")]
    PasswordTooLong { max: usize },
    #[error("a password must not be the same as the username")]
    PasswordIsUsername,
    #[error(
        "a username is 2 to 32 characters: letters, digits, '.', '-' or '_', starting with a letter or digit"
    )]
    InvalidUsername,
    #[error("a display name is needed (up to 100 characters, no line breaks)")]
    InvalidDisplayName,

    #[error("there is already an account called {username}")]
    UsernameTaken { username: String },
    #[error("there is no account called {username}")]
    NoSuchAccount { username: String },
    #[error("the account {username} is disabled: enable it with a new password instead")]
    AccountIsDisabled { username: String },
    #[error("the account {username} is not disabled")]
    AccountNotDisabled { username: String },
    #[error("you cannot disable your own account; ask another manager")]
    CannotDisableYourself,
    #[error("{username} is the last manager who can log in; add another manager first")]
    LastManager { username: String },
    #[error("the account {username} has a role Lifeboat does not know ({role}) in the cache")]
    UnknownRole { username: String, role: String },

    #[error(
        "Lifeboat is already set up here ({}) exists; log in instead, or move it aside to start again",
        path.display()
    )]
    AlreadySetUp { path: PathBuf },
    #[error(
        "Lifeboat is not set up here: there is no key-slot file at {}; run setup first",
        path.display()
    )]
    NotSetUp { path: PathBuf },
    #[error(
        "the cache file {} is missing although its key slots exist: restore it from a backup, or move the key-slot file aside and run setup again",
        path.display()
    )]
    CacheMissing { path: PathBuf },
    #[error(
        "the key-slot file {} is damaged ({reason}); restore it from a backup",
        path.display()
    )]
    KeySlotFileDamaged { path: PathBuf, reason: String },
    #[error("cannot read or write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the system's random number generator failed, so Lifeboat cannot make keys")]
    RandomUnavailable,
    #[error(transparent)]
    Store(#[from] lifeboat_store::StoreError),
    #[error("cannot start the log file: {0}")]
    Logging(String),
}

impl AccessError {
    /// A stable code a screen can branch on (the message is for people and may change).
    pub fn code(&self) -> &'static str {
        use AccessError::*;
        match self {
            WrongCredentials | WrongPassword => "wrong_credentials",
            LockedOut { .. } => "locked_out",
            AccountDisabled => "account_disabled",
            Locked => "session_locked",
            NotPermitted { .. } => "not_permitted",
            PasswordTooShort { .. } | PasswordTooLong { .. } | PasswordIsUsername => {
                "weak_password"
            }
            InvalidUsername | InvalidDisplayName => "invalid_account_details",
            UsernameTaken { .. } => "username_taken",
            NoSuchAccount { .. } => "no_such_account",
            AccountIsDisabled { .. } | AccountNotDisabled { .. } => "account_state",
            CannotDisableYourself | LastManager { .. } => "would_lock_out_managers",
            UnknownRole { .. } => "unknown_role",
            AlreadySetUp { .. } => "already_set_up",
            NotSetUp { .. } => "not_set_up",
            CacheMissing { .. } => "cache_missing",
            KeySlotFileDamaged { .. } => "key_slots_damaged",
            Io { .. } => "io",
            RandomUnavailable => "random_unavailable",
            Store(_) => "cache",
            Logging(_) => "logging",
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| AccessError::Io { path, source }
    }
}

pub type Result<T, E = AccessError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_sentences_a_person_can_act_on() {
        let e = AccessError::NotPermitted {
            role: Role::Receptionist,
            operation: Operation::ViewClinicalSummary,
        };
        assert_eq!(
            e.to_string(),
            "your role (receptionist) does not allow viewing clinical summaries"
        );
        let e = AccessError::LockedOut {
            seconds: 60,
            failures: 5,
        };
        assert!(
            e.to_string()
                .starts_with("this account is locked for 60 s after 5 failed attempts")
        );
        assert_eq!(
            AccessError::WrongCredentials.to_string(),
            "wrong username or password"
        );
        assert!(
            AccessError::PasswordTooShort { min: 10 }
                .to_string()
                .contains("at least 10 characters")
        );
    }
}
