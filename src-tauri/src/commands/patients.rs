//! Patients: search, overview (all roles), clinical summary and offline notes (clinicians).

use lifeboat_app::desk::{ClinicalSummary, PatientOverview};
use lifeboat_store::{OfflineNote, PatientMatch};

use super::{DeskState, Result};

#[tauri::command(async)]
pub fn search_patients(
    desk: DeskState<'_>,
    query: String,
    limit: Option<usize>,
) -> Result<Vec<PatientMatch>> {
    desk.search_patients(&query, limit.unwrap_or(20))
}

#[tauri::command(async)]
pub fn patient_overview(desk: DeskState<'_>, patient_id: String) -> Result<PatientOverview> {
    desk.patient_overview(&patient_id)
}

#[tauri::command(async)]
pub fn patient_summary(desk: DeskState<'_>, patient_id: String) -> Result<ClinicalSummary> {
    desk.patient_summary(&patient_id)
}

#[tauri::command(async)]
pub fn write_note(
    desk: DeskState<'_>,
    patient_id: String,
    appointment_id: Option<String>,
    text: String,
) -> Result<OfflineNote> {
    desk.write_note(&patient_id, appointment_id.as_deref(), &text)
}
