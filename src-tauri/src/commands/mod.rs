//! The app's commands, one module per area of docs/ui-contract.md. Each command is a few
//! lines over one `Desk` method; errors reach the window as the contract's `AppError`.

mod appointments;
mod audit;
mod patients;
mod reconcile;
mod session;
mod staff;
mod status;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use lifeboat_app::{AppError, Desk};
use lifeboat_model::time::london_to_utc;

pub type Result<T> = std::result::Result<T, AppError>;

/// The one desk, registered with `manage` (shared with the background work, hence the Arc).
pub type DeskState<'a> = tauri::State<'a, Arc<Desk>>;

/// Every command the window may call (and, through build.rs and capabilities/, only these).
pub fn handler() -> impl Fn(tauri::ipc::Invoke) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        session::session_state,
        session::setup,
        session::login,
        session::lock,
        session::unlock,
        session::logout,
        session::touch,
        status::status,
        status::declare_outage,
        status::end_outage,
        status::sync_now,
        status::start_drill,
        status::end_drill,
        patients::search_patients,
        patients::patient_overview,
        patients::patient_summary,
        patients::write_note,
        appointments::practitioners,
        appointments::day_book,
        appointments::free_slots,
        appointments::book,
        appointments::cancel_appointment,
        appointments::move_appointment,
        appointments::mark_attendance,
        appointments::journal,
        reconcile::reconcile,
        reconcile::conflicts,
        reconcile::resolve_conflict,
        reconcile::worklist,
        reconcile::complete_work_item,
        staff::accounts,
        staff::add_account,
        staff::disable_account,
        staff::reset_password,
        audit::audit_verify,
        audit::audit_export,
    ]
}

/// An instant from the window: RFC 3339, or a `YYYY-MM-DD` date meaning the start of that
/// London day (or, with `end_of_day`, the start of the next one).
pub fn instant(value: &str, end_of_day: bool) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| AppError::new("validation", format!("not a date: {value}")))?;
    let day = if end_of_day {
        date.succ_opt().unwrap_or(date)
    } else {
        date
    };
    Ok(london_to_utc(day.and_hms_opt(0, 0, 0).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_means_the_london_day() {
        // 19 July is in BST: the London day starts at 23:00 UTC the evening before.
        assert_eq!(
            instant("2024-07-19", false).unwrap().to_rfc3339(),
            "2024-07-18T23:00:00+00:00"
        );
        assert_eq!(
            instant("2024-07-19", true).unwrap().to_rfc3339(),
            "2024-07-19T23:00:00+00:00"
        );
        assert_eq!(
            instant("2024-01-19", false).unwrap().to_rfc3339(),
            "2024-01-19T00:00:00+00:00"
        );
        assert_eq!(
            instant("2024-07-19T08:40:00Z", true).unwrap().to_rfc3339(),
            "2024-07-19T08:40:00+00:00"
        );
        assert_eq!(instant("19/07/2024", false).unwrap_err().code, "validation");
    }
}
