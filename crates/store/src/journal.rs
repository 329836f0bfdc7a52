//! The offline journal: every change made while the upstream is down, in the order it was
//! made, each row written in the same transaction as the cache change it causes. Rows are
//! never deleted; reconciliation moves them through their states.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{CacheTx, Result, Store, parse_ts, ts};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalKind {
    Book,
    Move,
    Cancel,
    Arrived,
    DidNotAttend,
    Note,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalState {
    Pending,
    Applied,
    Conflict,
    Failed,
    Superseded,
    Discarded,
}

macro_rules! text_enum {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s { $($s => Ok(Self::$v),)* other => Err(format!("unknown value {other:?}")) }
            }
        }
    };
}

text_enum!(JournalKind {
    Book => "book",
    Move => "move",
    Cancel => "cancel",
    Arrived => "arrived",
    DidNotAttend => "did_not_attend",
    Note => "note",
});

text_enum!(JournalState {
    Pending => "pending",
    Applied => "applied",
    Conflict => "conflict",
    Failed => "failed",
    Superseded => "superseded",
    Discarded => "discarded",
});

/// One offline change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    pub seq: i64,
    /// UUID v7: sorts by creation time; carried upstream as an identifier so a replay
    /// can tell whether it already happened.
    pub id: String,
    pub kind: JournalKind,
    pub payload: Value,
    pub author: String,
    pub workstation: String,
    pub created_at: DateTime<Utc>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// The upstream `versionId` the change was based on.
    pub based_on_version: Option<String>,
    pub state: JournalState,
    pub outcome: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// What a new journal row says; the store fills in id, seq and state.
#[derive(Debug, Clone)]
pub struct NewJournalEntry<'a> {
    pub kind: JournalKind,
    pub payload: Value,
    pub author: &'a str,
    pub workstation: &'a str,
    pub at: DateTime<Utc>,
    pub target_type: Option<&'a str>,
    pub target_id: Option<&'a str>,
    pub based_on_version: Option<&'a str>,
}

const COLUMNS: &str = "seq, id, kind, payload, author, workstation, created_at, target_type, target_id, based_on_version, state, outcome, updated_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<JournalEntry> {
    let text_err = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    Ok(JournalEntry {
        seq: r.get(0)?,
        id: r.get(1)?,
        kind: r.get::<_, String>(2)?.parse().map_err(|e| text_err(2, e))?,
        payload: serde_json::from_str(&r.get::<_, String>(3)?)
            .map_err(|e| text_err(3, e.to_string()))?,
        author: r.get(4)?,
        workstation: r.get(5)?,
        created_at: parse_ts(&r.get::<_, String>(6)?).unwrap_or_default(),
        target_type: r.get(7)?,
        target_id: r.get(8)?,
        based_on_version: r.get(9)?,
        state: r
            .get::<_, String>(10)?
            .parse()
            .map_err(|e| text_err(10, e))?,
        outcome: r.get(11)?,
        updated_at: r
            .get::<_, Option<String>>(12)?
            .as_deref()
            .and_then(parse_ts),
    })
}

fn unsettled_count(conn: &rusqlite::Connection) -> Result<u64> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM journal WHERE state IN ('pending', 'failed', 'conflict')",
        [],
        |r| r.get(0),
    )?;
    Ok(n as u64)
}

impl CacheTx<'_> {
    /// Appends a journal row (state `pending`) and returns it.
    pub fn append_journal(&self, e: &NewJournalEntry<'_>) -> Result<JournalEntry> {
        let id = uuid::Uuid::now_v7().to_string();
        self.tx
            .prepare_cached(
                "INSERT INTO journal (id, kind, payload, author, workstation, created_at, target_type, target_id, based_on_version, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending')",
            )?
            .execute(params![
                id,
                e.kind.as_str(),
                e.payload.to_string(),
                e.author,
                e.workstation,
                ts(e.at),
                e.target_type,
                e.target_id,
                e.based_on_version,
            ])?;
        Ok(self
            .journal_entry(&id)?
            .expect("the row just inserted is readable in its own transaction"))
    }

    pub fn journal_entry(&self, id: &str) -> Result<Option<JournalEntry>> {
        Ok(self
            .tx
            .prepare_cached(&format!("SELECT {COLUMNS} FROM journal WHERE id = ?1"))?
            .query_row([id], from_row)
            .optional()?)
    }

    pub fn unsettled_journal_count(&self) -> Result<u64> {
        unsettled_count(&self.tx)
    }

    /// Moves a row to `state`, recording the outcome (an upstream id, a reason, an error code).
    pub fn set_journal_state(
        &self,
        id: &str,
        state: JournalState,
        outcome: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE journal SET state = ?2, outcome = ?3, updated_at = ?4 WHERE id = ?1",
            )?
            .execute(params![id, state.as_str(), outcome, ts(at)])?;
        Ok(())
    }
}

impl Store {
    /// Journal rows in the given states (all if empty), oldest first.
    pub fn journal(&self, states: &[JournalState]) -> Result<Vec<JournalEntry>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM journal ORDER BY seq"))?;
        let rows = stmt
            .query_map([], from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows
            .into_iter()
            .filter(|e| states.is_empty() || states.contains(&e.state))
            .collect())
    }

    pub fn journal_entry(&self, id: &str) -> Result<Option<JournalEntry>> {
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM journal WHERE id = ?1"))?
            .query_row([id], from_row)
            .optional()?)
    }

    /// Changes not yet settled upstream (pending, failed or in conflict).
    pub fn unsettled_journal_count(&self) -> Result<u64> {
        unsettled_count(&self.conn)
    }
}
