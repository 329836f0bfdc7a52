//! The appointment book: the day view, free slots, and offline changes to appointments.

use chrono::NaiveDate;
use lifeboat_app::desk::{DayBook, Practitioner, SlotSearch};
use lifeboat_engine::booking::{Attendance, BookRequest, Confirmation};
use lifeboat_store::{JournalEntry, SlotView};

use super::{DeskState, Result, instant};

#[tauri::command(async)]
pub fn practitioners(desk: DeskState<'_>) -> Result<Vec<Practitioner>> {
    desk.practitioners()
}

#[tauri::command(async)]
pub fn day_book(
    desk: DeskState<'_>,
    date: NaiveDate,
    practitioner_id: Option<String>,
) -> Result<DayBook> {
    desk.day_book(date, practitioner_id.as_deref())
}

/// `from` may be an instant or a London date (`YYYY-MM-DD`).
#[tauri::command(async)]
pub fn free_slots(
    desk: DeskState<'_>,
    practitioner_id: Option<String>,
    from: Option<String>,
    days: Option<i64>,
    limit: Option<usize>,
) -> Result<Vec<SlotView>> {
    let from = from.map(|f| instant(&f, false)).transpose()?;
    desk.free_slots(&SlotSearch {
        practitioner_id,
        from,
        days,
        limit,
    })
}

#[tauri::command(async)]
pub fn book(
    desk: DeskState<'_>,
    slot_id: String,
    patient_id: String,
    description: Option<String>,
    comment: Option<String>,
) -> Result<Confirmation> {
    desk.book(&BookRequest {
        slot_id,
        patient_id,
        description,
        comment,
    })
}

#[tauri::command(async)]
pub fn cancel_appointment(
    desk: DeskState<'_>,
    appointment_id: String,
    reason: String,
) -> Result<Confirmation> {
    desk.cancel_appointment(&appointment_id, &reason)
}

#[tauri::command(async)]
pub fn move_appointment(
    desk: DeskState<'_>,
    appointment_id: String,
    slot_id: String,
) -> Result<Confirmation> {
    desk.move_appointment(&appointment_id, &slot_id)
}

#[tauri::command(async)]
pub fn mark_attendance(
    desk: DeskState<'_>,
    appointment_id: String,
    attendance: Attendance,
) -> Result<Confirmation> {
    desk.mark_attendance(&appointment_id, attendance)
}

#[tauri::command(async)]
pub fn journal(desk: DeskState<'_>) -> Result<Vec<JournalEntry>> {
    desk.journal()
}
