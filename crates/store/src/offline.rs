//! The appointment book as staff see it during an outage: cached slots and appointments
//! with the offline overlay (bookings, cancellations, arrivals, notes) laid over them.
//! Reads work on a `Store` or inside a `CacheTx`, so booking rules can check and write in
//! one transaction.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use crate::{CacheTx, Result, Store, parse_ts, ts};

/// A slot is free for an offline booking when no live offline booking holds it and either
/// the upstream said free, or the only appointments on it were cancelled offline.
const AVAILABLE: &str = "(NOT EXISTS (SELECT 1 FROM offline_booking ob WHERE ob.slot_id = s.id AND ob.status != 'cancelled'
                AND ob.reconciled_as IS NULL)
  AND (s.status = 'free'
       OR (s.status = 'busy'
           AND EXISTS (SELECT 1 FROM appointment a JOIN offline_appointment_change c ON c.appointment_id = a.id
                       WHERE a.slot_id = s.id AND c.status = 'cancelled')
           AND NOT EXISTS (SELECT 1 FROM appointment a WHERE a.slot_id = s.id
                           AND a.status NOT IN ('cancelled', 'entered-in-error')
                           AND NOT EXISTS (SELECT 1 FROM offline_appointment_change c
                                           WHERE c.appointment_id = a.id AND c.status = 'cancelled')))))";

const SLOT_SELECT: &str = "SELECT s.id, s.version_id, s.schedule_id, sc.practitioner_id, pr.name, sc.location_id, lo.name,
        s.start, s.\"end\", s.service_type, s.status, s.synced_at";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotView {
    pub id: String,
    pub version_id: String,
    pub schedule_id: String,
    pub practitioner_id: Option<String>,
    pub practitioner_name: Option<String>,
    pub location_id: Option<String>,
    pub location_name: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub service_type: Option<String>,
    /// What the upstream said at the last sync.
    pub cached_status: String,
    /// Free for an offline booking now (cache and offline changes together).
    pub available: bool,
    pub synced_at: DateTime<Utc>,
}

fn slot_from_row(r: &Row<'_>) -> rusqlite::Result<SlotView> {
    Ok(SlotView {
        id: r.get(0)?,
        version_id: r.get(1)?,
        schedule_id: r.get(2)?,
        practitioner_id: r.get(3)?,
        practitioner_name: r.get(4)?,
        location_id: r.get(5)?,
        location_name: r.get(6)?,
        start: time(r, 7)?,
        end: time(r, 8)?,
        service_type: r.get(9)?,
        cached_status: r.get(10)?,
        available: r.get(12)?,
        synced_at: time(r, 11)?,
    })
}

fn time(r: &Row<'_>, i: usize) -> rusqlite::Result<DateTime<Utc>> {
    parse_ts(&r.get::<_, String>(i)?).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            "not a time".into(),
        )
    })
}

/// Who an appointment is for, as a confirmation shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PatientBrief {
    pub id: String,
    pub title: Option<String>,
    pub family: String,
    pub given: String,
    pub birth_date: Option<NaiveDate>,
    pub nhs_number: Option<String>,
    pub phone: Option<String>,
    pub deceased: bool,
    pub version_id: String,
}

impl PatientBrief {
    /// "SMITH, John (born 12 Mar 1958, NHS 999 176 8378)": enough to tell two people apart.
    pub fn label(&self) -> String {
        format!(
            "{}, {} (born {}, NHS {})",
            self.family.to_uppercase(),
            self.given,
            self.birth_date
                .map(lifeboat_model::time::format_uk_date)
                .unwrap_or_else(|| "-".into()),
            lifeboat_model::display_nhs_number(self.nhs_number.as_deref())
        )
    }
}

/// Where an appointment came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentSource {
    /// Cached from the upstream (its id is the upstream's).
    Upstream,
    /// Booked offline (its id is the journal entry's).
    Offline,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppointmentView {
    pub id: String,
    pub source: AppointmentSource,
    /// Status now: the upstream's, or the offline change laid over it.
    pub status: String,
    /// Set when the status is an offline change not yet reconciled.
    pub changed_offline: bool,
    pub version_id: Option<String>,
    pub slot_id: Option<String>,
    pub patient: Option<PatientBrief>,
    pub practitioner_id: Option<String>,
    pub practitioner_name: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub description: Option<String>,
    pub comment: Option<String>,
}

/// A line of the day's book: a slot and who is in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiaryLine {
    pub slot: SlotView,
    pub appointment: Option<AppointmentView>,
}

/// What a free-slot search asks for.
#[derive(Debug, Clone, Default)]
pub struct SlotQuery {
    pub practitioner_id: Option<String>,
    pub service_type: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: usize,
}

fn patient_brief(conn: &Connection, id: &str) -> Result<Option<PatientBrief>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, title, family, given, birth_date, nhs_number, phone, deceased, version_id FROM patient WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok(PatientBrief {
                id: r.get(0)?,
                title: r.get(1)?,
                family: r.get(2)?,
                given: r.get(3)?,
                birth_date: r
                    .get::<_, Option<String>>(4)?
                    .and_then(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok()),
                nhs_number: r.get(5)?,
                phone: r.get(6)?,
                deceased: r.get(7)?,
                version_id: r.get(8)?,
            })
        })
        .optional()?)
}

fn slot(conn: &Connection, id: &str) -> Result<Option<SlotView>> {
    let sql = format!(
        "{SLOT_SELECT}, {AVAILABLE} FROM slot s JOIN schedule sc ON sc.id = s.schedule_id
         LEFT JOIN practitioner pr ON pr.id = sc.practitioner_id LEFT JOIN location lo ON lo.id = sc.location_id
         WHERE s.id = ?1"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], slot_from_row)
        .optional()?)
}

fn slots_between(conn: &Connection, q: &SlotQuery, only_available: bool) -> Result<Vec<SlotView>> {
    let sql = format!(
        "{SLOT_SELECT}, {AVAILABLE} AS available FROM slot s JOIN schedule sc ON sc.id = s.schedule_id
         LEFT JOIN practitioner pr ON pr.id = sc.practitioner_id LEFT JOIN location lo ON lo.id = sc.location_id
         WHERE s.start >= ?1 AND s.start < ?2
           AND (?3 IS NULL OR sc.practitioner_id = ?3)
           AND (?4 IS NULL OR s.service_type = ?4 OR sc.service_type = ?4)
           AND (?5 = 0 OR {AVAILABLE})
         ORDER BY s.start, pr.name, s.id
         LIMIT ?6"
    );
    let from = q.from.map(ts).unwrap_or_else(|| "0000".into());
    let to = q.to.map(ts).unwrap_or_else(|| "9999".into());
    let limit = if q.limit == 0 {
        i64::MAX
    } else {
        q.limit as i64
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(
            params![
                from,
                to,
                q.practitioner_id,
                q.service_type,
                only_available,
                limit
            ],
            slot_from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Live appointments (upstream with offline changes applied, and offline bookings).
fn appointments(
    conn: &Connection,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<AppointmentView>> {
    let sql = format!(
        "SELECT * FROM (
            SELECT a.id, 'upstream' AS source, COALESCE(c.status, a.status) AS status, c.status IS NOT NULL,
                   a.version_id, a.slot_id, a.patient_id, a.practitioner_id, pr.name, a.start, a.\"end\",
                   a.description, a.comment
            FROM appointment a LEFT JOIN offline_appointment_change c ON c.appointment_id = a.id
            LEFT JOIN practitioner pr ON pr.id = a.practitioner_id
            WHERE a.start IS NOT NULL
            UNION ALL
            SELECT ob.journal_id, 'offline', ob.status, 1, NULL, ob.slot_id, ob.patient_id, ob.practitioner_id,
                   pr.name, ob.start, ob.\"end\", ob.description, ob.comment
            FROM offline_booking ob LEFT JOIN practitioner pr ON pr.id = ob.practitioner_id
            WHERE ob.reconciled_as IS NULL
         ) WHERE {filter} ORDER BY start, id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(args, |r| {
            Ok((
                AppointmentView {
                    id: r.get(0)?,
                    source: if r.get::<_, String>(1)? == "offline" {
                        AppointmentSource::Offline
                    } else {
                        AppointmentSource::Upstream
                    },
                    status: r.get(2)?,
                    changed_offline: r.get(3)?,
                    version_id: r.get(4)?,
                    slot_id: r.get(5)?,
                    patient: None,
                    practitioner_id: r.get(7)?,
                    practitioner_name: r.get(8)?,
                    start: time(r, 9)?,
                    end: time(r, 10)?,
                    description: r.get(11)?,
                    comment: r.get(12)?,
                },
                r.get::<_, Option<String>>(6)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(mut a, patient_id)| {
            if let Some(pid) = patient_id {
                a.patient = patient_brief(conn, &pid)?;
            }
            Ok(a)
        })
        .collect()
}

fn appointment(conn: &Connection, id: &str) -> Result<Option<AppointmentView>> {
    Ok(appointments(conn, "id = ?1", &[&id])?.into_iter().next())
}

fn day_book(
    conn: &Connection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    practitioner_id: Option<&str>,
) -> Result<Vec<DiaryLine>> {
    let q = SlotQuery {
        practitioner_id: practitioner_id.map(str::to_string),
        from: Some(from),
        to: Some(to),
        ..SlotQuery::default()
    };
    let slots = slots_between(conn, &q, false)?;
    let booked = appointments(
        conn,
        "start >= ?1 AND start < ?2 AND status NOT IN ('cancelled', 'entered-in-error')",
        &[&ts(from), &ts(to)],
    )?;
    Ok(slots
        .into_iter()
        .map(|slot| {
            let appointment = booked
                .iter()
                .find(|a| a.slot_id.as_deref() == Some(slot.id.as_str()))
                .cloned();
            DiaryLine { slot, appointment }
        })
        .collect())
}

/// A patient's live appointments from `from` on.
fn patient_appointments(
    conn: &Connection,
    patient_id: &str,
    from: DateTime<Utc>,
) -> Result<Vec<AppointmentView>> {
    let all = appointments(conn, "start >= ?1", &[&ts(from)])?;
    Ok(all
        .into_iter()
        .filter(|a| a.patient.as_ref().is_some_and(|p| p.id == patient_id))
        .collect())
}

/// An offline clinical note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OfflineNote {
    pub journal_id: String,
    pub patient_id: String,
    pub appointment_id: Option<String>,
    pub author: String,
    pub text: String,
    pub written_at: DateTime<Utc>,
}

fn notes(
    conn: &Connection,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<OfflineNote>> {
    let sql = format!(
        "SELECT n.journal_id, n.patient_id, n.appointment_id, n.author, n.text, n.written_at
         FROM offline_note n LEFT JOIN worklist w ON w.journal_id = n.journal_id
         WHERE {filter} ORDER BY n.written_at, n.journal_id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(args, |r| {
            Ok(OfflineNote {
                journal_id: r.get(0)?,
                patient_id: r.get(1)?,
                appointment_id: r.get(2)?,
                author: r.get(3)?,
                text: r.get(4)?,
                written_at: time(r, 5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// A line of a patient's clinical summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryLine {
    /// The FHIR resource type it came from (e.g. `AllergyIntolerance`).
    pub kind: String,
    pub text: String,
    pub detail: Option<String>,
    pub status: Option<String>,
    pub date: Option<String>,
}

/// Reads shared by `Store` and `CacheTx`.
macro_rules! book_reads {
    ($t:ty, $conn:ident) => {
        impl $t {
            pub fn slot(&self, id: &str) -> Result<Option<SlotView>> {
                slot(&self.$conn, id)
            }
            pub fn patient_brief(&self, id: &str) -> Result<Option<PatientBrief>> {
                patient_brief(&self.$conn, id)
            }
            pub fn appointment(&self, id: &str) -> Result<Option<AppointmentView>> {
                appointment(&self.$conn, id)
            }
        }
    };
}

book_reads!(Store, conn);
book_reads!(CacheTx<'_>, tx);

impl Store {
    /// Slots free for an offline booking, soonest first.
    pub fn free_slots(&self, q: &SlotQuery) -> Result<Vec<SlotView>> {
        slots_between(&self.conn, q, true)
    }

    /// Every slot in `[from, to)` with whoever is booked into it.
    pub fn day_book(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        practitioner_id: Option<&str>,
    ) -> Result<Vec<DiaryLine>> {
        day_book(&self.conn, from, to, practitioner_id)
    }

    pub fn patient_appointments(
        &self,
        patient_id: &str,
        from: DateTime<Utc>,
    ) -> Result<Vec<AppointmentView>> {
        patient_appointments(&self.conn, patient_id, from)
    }

    pub fn notes_for_patient(&self, patient_id: &str) -> Result<Vec<OfflineNote>> {
        notes(&self.conn, "n.patient_id = ?1", &[&patient_id])
    }

    /// A patient's cached clinical entries, newest first within each kind.
    pub fn clinical_entries(&self, patient_id: &str) -> Result<Vec<SummaryLine>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT kind, text, detail, status, date FROM clinical_entry WHERE patient_id = ?1
             ORDER BY kind, date DESC, text",
        )?;
        let rows = stmt
            .query_map([patient_id], |r| {
                Ok(SummaryLine {
                    kind: r.get(0)?,
                    text: r.get(1)?,
                    detail: r.get(2)?,
                    status: r.get(3)?,
                    date: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The clinicians with a schedule, by name.
    pub fn practitioners(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT pr.id, pr.name FROM practitioner pr JOIN schedule sc ON sc.practitioner_id = pr.id ORDER BY pr.name",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Notes not yet ticked off as filed in the clinical record.
    pub fn unfiled_notes(&self) -> Result<Vec<OfflineNote>> {
        notes(&self.conn, "w.done_at IS NULL", &[])
    }
}

/// A new offline booking's details.
#[derive(Debug, Clone)]
pub struct NewOfflineBooking<'a> {
    pub journal_id: &'a str,
    pub slot: &'a SlotView,
    pub patient_id: &'a str,
    pub description: Option<&'a str>,
    pub comment: Option<&'a str>,
    pub at: DateTime<Utc>,
}

impl CacheTx<'_> {
    pub fn insert_offline_booking(&self, b: &NewOfflineBooking<'_>) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO offline_booking (journal_id, slot_id, slot_version, patient_id, practitioner_id, location_id,
                   start, \"end\", description, comment, status, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'booked', ?11, ?11)",
            )?
            .execute(params![
                b.journal_id,
                b.slot.id,
                b.slot.version_id,
                b.patient_id,
                b.slot.practitioner_id,
                b.slot.location_id,
                ts(b.slot.start),
                ts(b.slot.end),
                b.description,
                b.comment,
                ts(b.at),
            ])?;
        Ok(())
    }

    /// Sets an offline booking's status (arrived, noshow, cancelled with a reason).
    pub fn set_offline_booking_status(
        &self,
        journal_id: &str,
        status: &str,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE offline_booking SET status = ?2, cancel_reason = ?3, updated_at = ?4 WHERE journal_id = ?1")?
            .execute(params![journal_id, status, reason, ts(at)])?;
        Ok(())
    }

    /// Moves an offline booking to another slot.
    pub fn move_offline_booking(
        &self,
        journal_id: &str,
        to: &SlotView,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE offline_booking SET slot_id = ?2, slot_version = ?3, practitioner_id = ?4, location_id = ?5,
                   start = ?6, \"end\" = ?7, updated_at = ?8 WHERE journal_id = ?1",
            )?
            .execute(params![journal_id, to.id, to.version_id, to.practitioner_id, to.location_id, ts(to.start), ts(to.end), ts(at)])?;
        Ok(())
    }

    /// Lays an offline status over an upstream appointment.
    pub fn set_appointment_change(
        &self,
        appointment_id: &str,
        status: &str,
        reason: Option<&str>,
        journal_id: &str,
        based_on: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO offline_appointment_change (appointment_id, status, reason, journal_id, based_on, changed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (appointment_id) DO UPDATE SET status = excluded.status, reason = excluded.reason,
                   journal_id = excluded.journal_id, changed_at = excluded.changed_at",
            )?
            .execute(params![appointment_id, status, reason, journal_id, based_on, ts(at)])?;
        Ok(())
    }

    pub fn insert_offline_note(&self, n: &OfflineNote) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO offline_note (journal_id, patient_id, appointment_id, author, text, written_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![n.journal_id, n.patient_id, n.appointment_id, n.author, n.text, ts(n.written_at)])?;
        Ok(())
    }
}
