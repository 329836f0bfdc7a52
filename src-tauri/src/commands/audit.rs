//! The audit log (manager): verify the hash chain, export as CSV.

use lifeboat_app::desk::AuditCheck;
use lifeboat_store::AuditFilter;

use super::{DeskState, Result, instant};

#[tauri::command(async)]
pub fn audit_verify(desk: DeskState<'_>) -> Result<AuditCheck> {
    desk.audit_verify()
}

/// `from` and `to` are instants or London dates (`to` inclusive of its whole day).
#[tauri::command(async)]
pub fn audit_export(
    desk: DeskState<'_>,
    from: Option<String>,
    to: Option<String>,
    patient_id: Option<String>,
) -> Result<String> {
    desk.audit_export(&AuditFilter {
        subject: patient_id.map(|id| format!("Patient/{id}")),
        from: from.map(|f| instant(&f, false)).transpose()?,
        until: to.map(|t| instant(&t, true)).transpose()?,
        ..AuditFilter::default()
    })
}
