//! Offline booking over the cache: book, move, cancel, mark arrived or did-not-attend, and
//! write clinical notes, each as one journal row and its overlay change in ONE transaction.
//!
//! Rules: only into a slot free in the cache (and not taken offline), never in the past,
//! never for a deceased patient, never twice into one slot (checked inside an IMMEDIATE
//! transaction and enforced again by a unique index, so racing writers on one cache file
//! cannot both win). GP Connect's limits apply up front: description at most 100
//! characters, comment at most 500. This module does not check modes or roles: the app
//! layer does, before calling in.

use chrono::{DateTime, Utc};
use lifeboat_model::time::{format_uk, london_date};
use lifeboat_store::{
    AppointmentSource, AppointmentView, AuditAction, AuditEntry, CacheTx, JournalEntry,
    JournalKind, NewJournalEntry, NewOfflineBooking, OfflineNote, SlotView, Store, StoreError,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub const MAX_DESCRIPTION: usize = 100;
pub const MAX_COMMENT: usize = 500;
pub const MAX_NOTE: usize = 10_000;

/// Who is making the change, and where.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub user: &'a str,
    pub workstation: &'a str,
}

impl Actor<'_> {
    /// Audits a change in the same transaction as the change itself.
    fn audit(
        &self,
        tx: &CacheTx<'_>,
        now: DateTime<Utc>,
        action: AuditAction,
        subject: &str,
        journal: &JournalEntry,
    ) -> Result<(), StoreError> {
        tx.append_audit(
            &AuditEntry::new(now, self.user, self.workstation, action)
                .subject(subject)
                .detail(format!("offline change {}", journal.id)),
        )?;
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    #[error("that slot is not in the cached appointment book")]
    SlotNotFound,
    #[error("that slot is no longer free: choose another")]
    SlotNoLongerFree,
    #[error("that slot ({0}) has already started or passed: choose a later one")]
    SlotInPast(String),
    #[error("that patient is not in the cache")]
    PatientNotFound,
    #[error("the patient is recorded as deceased: no appointment can be booked")]
    PatientDeceased,
    #[error(
        "the reason for the appointment is too long ({0} characters; at most {MAX_DESCRIPTION})"
    )]
    DescriptionTooLong(usize),
    #[error("the comment is too long ({0} characters; at most {MAX_COMMENT})")]
    CommentTooLong(usize),
    #[error("that appointment is not in the cache")]
    AppointmentNotFound,
    #[error("that appointment ({0}) has already started or passed and cannot be changed")]
    AppointmentInPast(String),
    #[error("that appointment is {0}, so it cannot be {1}")]
    AppointmentNotLive(String, &'static str),
    #[error("arrival and did-not-attend are recorded on the day of the appointment only")]
    NotToday,
    #[error("a patient cannot be marked as not attending before the appointment starts")]
    NotYetStarted,
    #[error("give a reason for cancelling")]
    ReasonRequired,
    #[error("the note is empty")]
    NoteEmpty,
    #[error("the note is too long ({0} characters; at most {MAX_NOTE})")]
    NoteTooLong(usize),
    #[error("could not save the change: {0}")]
    Store(#[from] StoreError),
}

impl BookingError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::SlotNotFound => "slot_not_found",
            Self::SlotNoLongerFree => "slot_no_longer_free",
            Self::SlotInPast(_) => "slot_in_past",
            Self::PatientNotFound => "patient_not_found",
            Self::PatientDeceased => "patient_deceased",
            Self::DescriptionTooLong(_) => "description_too_long",
            Self::CommentTooLong(_) => "comment_too_long",
            Self::AppointmentNotFound => "appointment_not_found",
            Self::AppointmentInPast(_) => "appointment_in_past",
            Self::AppointmentNotLive(..) => "appointment_not_live",
            Self::NotToday => "not_today",
            Self::NotYetStarted => "not_yet_started",
            Self::ReasonRequired => "reason_required",
            Self::NoteEmpty => "note_empty",
            Self::NoteTooLong(_) => "note_too_long",
            Self::Store(_) => "cache",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct BookRequest {
    pub slot_id: String,
    pub patient_id: String,
    pub description: Option<String>,
    pub comment: Option<String>,
}

/// What a confirmation screen shows: the journal row and the appointment as now booked
/// (with the patient's name, date of birth and NHS number).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Confirmation {
    pub journal: JournalEntry,
    pub appointment: Option<AppointmentView>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attendance {
    Arrived,
    DidNotAttend,
}

fn chars(s: &Option<String>) -> usize {
    s.as_deref().map_or(0, |s| s.chars().count())
}

fn trimmed(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A slot that may be booked now: in the cache, free (with offline changes), not started.
fn bookable_slot(
    tx: &CacheTx<'_>,
    slot_id: &str,
    now: DateTime<Utc>,
) -> Result<SlotView, BookingError> {
    let slot = tx.slot(slot_id)?.ok_or(BookingError::SlotNotFound)?;
    if slot.start <= now {
        return Err(BookingError::SlotInPast(format_uk(slot.start)));
    }
    if !slot.available {
        return Err(BookingError::SlotNoLongerFree);
    }
    Ok(slot)
}

/// An appointment that may still be changed: live and not yet started.
fn changeable(
    tx: &CacheTx<'_>,
    id: &str,
    now: DateTime<Utc>,
    doing: &'static str,
) -> Result<AppointmentView, BookingError> {
    let a = tx
        .appointment(id)?
        .ok_or(BookingError::AppointmentNotFound)?;
    if a.status != "booked" {
        return Err(BookingError::AppointmentNotLive(a.status, doing));
    }
    if a.start <= now {
        return Err(BookingError::AppointmentInPast(format_uk(a.start)));
    }
    Ok(a)
}

/// A unique-index violation on the offline booking table means another writer took the
/// slot between our check and our insert.
fn slot_taken_race(e: StoreError) -> BookingError {
    match &e {
        StoreError::Sqlite(rusqlite_error) if rusqlite_error.to_string().contains("UNIQUE") => {
            BookingError::SlotNoLongerFree
        }
        _ => BookingError::Store(e),
    }
}

/// Books a patient into a free slot.
pub fn book(
    store: &mut Store,
    actor: Actor<'_>,
    req: &BookRequest,
    now: DateTime<Utc>,
) -> Result<Confirmation, BookingError> {
    let description = trimmed(&req.description);
    let comment = trimmed(&req.comment);
    if chars(&description) > MAX_DESCRIPTION {
        return Err(BookingError::DescriptionTooLong(chars(&description)));
    }
    if chars(&comment) > MAX_COMMENT {
        return Err(BookingError::CommentTooLong(chars(&comment)));
    }
    let tx = store.transaction()?;
    let slot = bookable_slot(&tx, &req.slot_id, now)?;
    let patient = tx
        .patient_brief(&req.patient_id)?
        .ok_or(BookingError::PatientNotFound)?;
    if patient.deceased {
        return Err(BookingError::PatientDeceased);
    }
    let journal = tx.append_journal(&NewJournalEntry {
        kind: JournalKind::Book,
        payload: json!({
            "slot_id": slot.id, "slot_version": slot.version_id,
            "patient_id": patient.id, "patient_version": patient.version_id,
            "practitioner_id": slot.practitioner_id, "location_id": slot.location_id,
            "start": slot.start, "end": slot.end,
            "description": description, "comment": comment,
        }),
        author: actor.user,
        workstation: actor.workstation,
        at: now,
        target_type: Some("Slot"),
        target_id: Some(&slot.id),
        based_on_version: Some(&slot.version_id),
    })?;
    tx.insert_offline_booking(&NewOfflineBooking {
        journal_id: &journal.id,
        slot: &slot,
        patient_id: &patient.id,
        description: description.as_deref(),
        comment: comment.as_deref(),
        at: now,
    })
    .map_err(slot_taken_race)?;
    let appointment = tx.appointment(&journal.id)?;
    tx.commit()?;
    Ok(Confirmation {
        journal,
        appointment,
    })
}

/// Cancels an appointment (cached or booked offline), with a reason.
pub fn cancel(
    store: &mut Store,
    actor: Actor<'_>,
    appointment_id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Confirmation, BookingError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(BookingError::ReasonRequired);
    }
    let tx = store.transaction()?;
    let a = changeable(&tx, appointment_id, now, "cancelled")?;
    let journal = tx.append_journal(&NewJournalEntry {
        kind: JournalKind::Cancel,
        payload: json!({"appointment_id": a.id, "source": a.source, "reason": reason, "start": a.start}),
        author: actor.user,
        workstation: actor.workstation,
        at: now,
        target_type: Some(target_type(&a)),
        target_id: Some(&a.id),
        based_on_version: a.version_id.as_deref(),
    })?;
    set_status(&tx, &a, "cancelled", Some(reason), &journal, now)?;
    let appointment = tx.appointment(&a.id)?;
    tx.commit()?;
    Ok(Confirmation {
        journal,
        appointment,
    })
}

/// Moves an appointment to another free slot (upstream: a cancellation and a new booking,
/// as GP Connect has no reschedule).
pub fn move_appointment(
    store: &mut Store,
    actor: Actor<'_>,
    appointment_id: &str,
    to_slot_id: &str,
    now: DateTime<Utc>,
) -> Result<Confirmation, BookingError> {
    let tx = store.transaction()?;
    let a = changeable(&tx, appointment_id, now, "moved")?;
    let to = bookable_slot(&tx, to_slot_id, now)?;
    let patient_id = a
        .patient
        .as_ref()
        .map(|p| p.id.clone())
        .ok_or(BookingError::PatientNotFound)?;
    let journal = tx.append_journal(&NewJournalEntry {
        kind: JournalKind::Move,
        payload: json!({
            "appointment_id": a.id, "source": a.source, "from_slot_id": a.slot_id, "from_start": a.start,
            "slot_id": to.id, "slot_version": to.version_id, "patient_id": patient_id,
            "practitioner_id": to.practitioner_id, "location_id": to.location_id,
            "start": to.start, "end": to.end, "description": a.description, "comment": a.comment,
        }),
        author: actor.user,
        workstation: actor.workstation,
        at: now,
        target_type: Some(target_type(&a)),
        target_id: Some(&a.id),
        based_on_version: a.version_id.as_deref(),
    })?;
    let moved_id = match a.source {
        AppointmentSource::Offline => {
            tx.move_offline_booking(&a.id, &to, now)
                .map_err(slot_taken_race)?;
            a.id.clone()
        }
        AppointmentSource::Upstream => {
            set_status(
                &tx,
                &a,
                "cancelled",
                Some("moved to another slot"),
                &journal,
                now,
            )?;
            tx.insert_offline_booking(&NewOfflineBooking {
                journal_id: &journal.id,
                slot: &to,
                patient_id: &patient_id,
                description: a.description.as_deref(),
                comment: a.comment.as_deref(),
                at: now,
            })
            .map_err(slot_taken_race)?;
            journal.id.clone()
        }
    };
    actor.audit(
        &tx,
        now,
        AuditAction::AppointmentMoved,
        &patient_subject(&a),
        &journal,
    )?;
    let appointment = tx.appointment(&moved_id)?;
    tx.commit()?;
    Ok(Confirmation {
        journal,
        appointment,
    })
}

/// Marks an appointment arrived or did-not-attend, on its day.
pub fn mark_attendance(
    store: &mut Store,
    actor: Actor<'_>,
    appointment_id: &str,
    attendance: Attendance,
    now: DateTime<Utc>,
) -> Result<Confirmation, BookingError> {
    let tx = store.transaction()?;
    let a = tx
        .appointment(appointment_id)?
        .ok_or(BookingError::AppointmentNotFound)?;
    let doing = match attendance {
        Attendance::Arrived => "marked arrived",
        Attendance::DidNotAttend => "marked did not attend",
    };
    if a.status != "booked" {
        return Err(BookingError::AppointmentNotLive(a.status, doing));
    }
    if london_date(a.start) != london_date(now) {
        return Err(BookingError::NotToday);
    }
    if attendance == Attendance::DidNotAttend && a.start > now {
        return Err(BookingError::NotYetStarted);
    }
    let (kind, status) = match attendance {
        Attendance::Arrived => (JournalKind::Arrived, "arrived"),
        Attendance::DidNotAttend => (JournalKind::DidNotAttend, "noshow"),
    };
    let journal = tx.append_journal(&NewJournalEntry {
        kind,
        payload: json!({"appointment_id": a.id, "source": a.source, "start": a.start}),
        author: actor.user,
        workstation: actor.workstation,
        at: now,
        target_type: Some(target_type(&a)),
        target_id: Some(&a.id),
        based_on_version: a.version_id.as_deref(),
    })?;
    set_status(&tx, &a, status, None, &journal, now)?;
    let appointment = tx.appointment(&a.id)?;
    tx.commit()?;
    Ok(Confirmation {
        journal,
        appointment,
    })
}

/// A clinician's free-text note against a patient (and optionally an appointment).
pub fn write_note(
    store: &mut Store,
    actor: Actor<'_>,
    patient_id: &str,
    appointment_id: Option<&str>,
    text: &str,
    now: DateTime<Utc>,
) -> Result<OfflineNote, BookingError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(BookingError::NoteEmpty);
    }
    let len = text.chars().count();
    if len > MAX_NOTE {
        return Err(BookingError::NoteTooLong(len));
    }
    let tx = store.transaction()?;
    let patient = tx
        .patient_brief(patient_id)?
        .ok_or(BookingError::PatientNotFound)?;
    if let Some(id) = appointment_id {
        tx.appointment(id)?
            .ok_or(BookingError::AppointmentNotFound)?;
    }
    let journal = tx.append_journal(&NewJournalEntry {
        kind: JournalKind::Note,
        payload: json!({"patient_id": patient.id, "appointment_id": appointment_id, "text": text}),
        author: actor.user,
        workstation: actor.workstation,
        at: now,
        target_type: Some("Patient"),
        target_id: Some(&patient.id),
        based_on_version: Some(&patient.version_id),
    })?;
    actor.audit(
        &tx,
        now,
        AuditAction::ClinicalNoteWritten,
        &format!("Patient/{}", patient.id),
        &journal,
    )?;
    let note = OfflineNote {
        journal_id: journal.id,
        patient_id: patient.id,
        appointment_id: appointment_id.map(str::to_string),
        author: actor.user.to_string(),
        text: text.to_string(),
        written_at: now,
    };
    tx.insert_offline_note(&note)?;
    tx.commit()?;
    Ok(note)
}

/// Lays a new status over an appointment: on the offline booking itself, or as an offline
/// change beside the cached upstream appointment (which sync may rewrite at any time).
fn set_status(
    tx: &CacheTx<'_>,
    a: &AppointmentView,
    status: &str,
    reason: Option<&str>,
    journal: &JournalEntry,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    match a.source {
        AppointmentSource::Offline => tx.set_offline_booking_status(&a.id, status, reason, now),
        AppointmentSource::Upstream => tx.set_appointment_change(
            &a.id,
            status,
            reason,
            &journal.id,
            a.version_id.as_deref().unwrap_or_default(),
            now,
        ),
    }
}

fn patient_subject(a: &AppointmentView) -> String {
    a.patient.as_ref().map_or_else(
        || format!("Appointment/{}", a.id),
        |p| format!("Patient/{}", p.id),
    )
}

fn target_type(a: &AppointmentView) -> &'static str {
    match a.source {
        AppointmentSource::Upstream => "Appointment",
        AppointmentSource::Offline => "OfflineBooking",
    }
}
