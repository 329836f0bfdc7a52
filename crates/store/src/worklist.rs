//! The back-entry worklist: what a person must still do by hand once the upstream is back
//! (file offline notes, enter changes that became past, handle conflicts marked manual),
//! each item ticked off with who did it and when. Items are never deleted.

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;

use crate::{CacheTx, Result, Store, parse_ts, ts};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkItem {
    pub id: i64,
    pub journal_id: String,
    /// `note`, `past_change` or `manual`.
    pub kind: String,
    pub patient_id: Option<String>,
    pub summary: String,
    pub created_at: DateTime<Utc>,
    pub done_by: Option<String>,
    pub done_at: Option<DateTime<Utc>>,
}

impl CacheTx<'_> {
    /// Adds an item for a journal entry; a second call for the same entry changes nothing
    /// (a re-run of reconciliation must not list anything twice).
    pub fn add_work_item(
        &self,
        journal_id: &str,
        kind: &str,
        patient_id: Option<&str>,
        summary: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO worklist (journal_id, kind, patient_id, summary, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (journal_id) DO NOTHING",
            )?
            .execute(params![journal_id, kind, patient_id, summary, ts(at)])?;
        Ok(())
    }

    /// Ticks an item off. Returns false if it was already done (or does not exist).
    /// An arrival, did-not-attend or cancellation it asked to be entered by hand stops
    /// showing over the appointment: from now on the upstream's record of it is the one shown
    /// (brought by the next sync), never a stale offline mark over it.
    pub fn complete_work_item(&self, id: i64, by: &str, at: DateTime<Utc>) -> Result<bool> {
        let n = self
            .tx
            .prepare_cached(
                "UPDATE worklist SET done_by = ?2, done_at = ?3 WHERE id = ?1 AND done_at IS NULL",
            )?
            .execute(params![id, by, ts(at)])?;
        if n == 1 {
            self.tx
                .prepare_cached(
                    "DELETE FROM offline_appointment_change
                     WHERE journal_id = (SELECT journal_id FROM worklist WHERE id = ?1)",
                )?
                .execute([id])?;
        }
        Ok(n == 1)
    }

    /// An offline booking has become an upstream appointment (or will never be one): it
    /// stops showing as an offline booking and stops holding its slot.
    pub fn retire_offline_booking(&self, journal_id: &str, reconciled_as: &str) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE offline_booking SET reconciled_as = ?2 WHERE journal_id = ?1")?
            .execute(params![journal_id, reconciled_as])?;
        Ok(())
    }

    /// An offline change to an upstream appointment is settled (applied or dropped).
    pub fn retire_appointment_change(&self, appointment_id: &str) -> Result<()> {
        self.tx
            .prepare_cached("DELETE FROM offline_appointment_change WHERE appointment_id = ?1")?
            .execute([appointment_id])?;
        Ok(())
    }
}

impl Store {
    /// The worklist, oldest first; done items too when `include_done`.
    pub fn worklist(&self, include_done: bool) -> Result<Vec<WorkItem>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, journal_id, kind, patient_id, summary, created_at, done_by, done_at
             FROM worklist WHERE ?1 OR done_at IS NULL ORDER BY id",
        )?;
        let rows = stmt
            .query_map([include_done], |r| {
                Ok(WorkItem {
                    id: r.get(0)?,
                    journal_id: r.get(1)?,
                    kind: r.get(2)?,
                    patient_id: r.get(3)?,
                    summary: r.get(4)?,
                    created_at: parse_ts(&r.get::<_, String>(5)?).unwrap_or_default(),
                    done_by: r.get(6)?,
                    done_at: r.get::<_, Option<String>>(7)?.as_deref().and_then(parse_ts),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}
