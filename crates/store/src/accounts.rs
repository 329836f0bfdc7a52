//! Staff accounts as the cache holds them: username, display name, role, disabled flag.
//!
//! They live inside the encrypted file so that nobody can give themselves another role without
//! the data key. This module only stores and reads rows; it must not decide who may do what
//! (the access layer does) and never holds a password or anything derived from one (those
//! are key slots, beside the cache).

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use crate::{CacheTx, Result, Store, parse_ts, ts};

/// One account row. `role` is the stored text (`receptionist`, `clinician` or `manager`;
/// the schema refuses anything else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAccount {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
}

const SELECT: &str =
    "SELECT id, username, display_name, role, disabled, created_at, changed_at FROM account";

fn read(r: &Row<'_>) -> rusqlite::Result<StoredAccount> {
    let created: String = r.get(5)?;
    let changed: String = r.get(6)?;
    Ok(StoredAccount {
        id: r.get(0)?,
        username: r.get(1)?,
        display_name: r.get(2)?,
        role: r.get(3)?,
        disabled: r.get(4)?,
        created_at: parse_ts(&created).unwrap_or_default(),
        changed_at: parse_ts(&changed).unwrap_or_default(),
    })
}

impl CacheTx<'_> {
    /// Adds an account and returns its id. A username already taken fails (UNIQUE).
    pub fn insert_account(
        &self,
        username: &str,
        display_name: &str,
        role: &str,
        at: DateTime<Utc>,
    ) -> Result<i64> {
        self.tx.execute(
            "INSERT INTO account (username, display_name, role, disabled, created_at, changed_at)
             VALUES (?1, ?2, ?3, 0, ?4, ?4)",
            params![username, display_name, role, ts(at)],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Disables or re-enables an account; false if there is no such account.
    pub fn set_account_disabled(
        &self,
        username: &str,
        disabled: bool,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let n = self.tx.execute(
            "UPDATE account SET disabled = ?2, changed_at = ?3 WHERE username = ?1",
            params![username, disabled, ts(at)],
        )?;
        Ok(n == 1)
    }

    /// Notes that an account changed outside this table (its password, in its key slot).
    pub fn mark_account_changed(&self, username: &str, at: DateTime<Utc>) -> Result<bool> {
        let n = self.tx.execute(
            "UPDATE account SET changed_at = ?2 WHERE username = ?1",
            params![username, ts(at)],
        )?;
        Ok(n == 1)
    }

    pub fn account(&self, username: &str) -> Result<Option<StoredAccount>> {
        Ok(self
            .tx
            .query_row(&format!("{SELECT} WHERE username = ?1"), [username], read)
            .optional()?)
    }

    /// Enabled accounts with this role: the access layer keeps at least one manager.
    pub fn count_enabled_with_role(&self, role: &str) -> Result<u64> {
        let n: i64 = self.tx.query_row(
            "SELECT count(*) FROM account WHERE role = ?1 AND disabled = 0",
            [role],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }
}

impl Store {
    pub fn account(&self, username: &str) -> Result<Option<StoredAccount>> {
        Ok(self
            .conn
            .query_row(&format!("{SELECT} WHERE username = ?1"), [username], read)
            .optional()?)
    }

    /// Every account, disabled ones included, by username.
    pub fn accounts(&self) -> Result<Vec<StoredAccount>> {
        let mut stmt = self.conn.prepare(&format!("{SELECT} ORDER BY username"))?;
        let rows = stmt
            .query_map([], read)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::open_temp;
    use chrono::TimeZone;

    #[test]
    fn accounts_are_stored_read_back_and_disabled_not_deleted() {
        let (_dir, mut store) = open_temp();
        let at = chrono::Utc.with_ymd_and_hms(2024, 7, 19, 8, 0, 0).unwrap();
        let tx = store.transaction().unwrap();
        let id = tx
            .insert_account("sam.patel", "Sam Patel", "receptionist", at)
            .unwrap();
        assert!(tx.set_account_disabled("sam.patel", true, at).unwrap());
        assert!(!tx.set_account_disabled("nobody", true, at).unwrap());
        assert_eq!(tx.count_enabled_with_role("receptionist").unwrap(), 0);
        tx.commit().unwrap();
        let a = store.account("sam.patel").unwrap().unwrap();
        assert_eq!(a.id, id);
        assert!(a.disabled);
        assert_eq!(a.created_at, at);
        assert_eq!(store.accounts().unwrap().len(), 1);
    }

    #[test]
    fn the_schema_refuses_an_unknown_role_and_a_duplicate_username() {
        let (_dir, mut store) = open_temp();
        let at = chrono::Utc.with_ymd_and_hms(2024, 7, 19, 8, 0, 0).unwrap();
        let tx = store.transaction().unwrap();
        assert!(tx.insert_account("a.b", "A B", "superuser", at).is_err());
        tx.insert_account("a.b", "A B", "manager", at).unwrap();
        assert!(tx.insert_account("a.b", "A B", "clinician", at).is_err());
    }
}
