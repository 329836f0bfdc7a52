//! Status and mode: the banner's status, outages, sync, drills.

use lifeboat_app::desk::{DrillSummary, StatusView, SyncSummary};

use super::{DeskState, Result};

#[tauri::command(async)]
pub fn status(desk: DeskState<'_>) -> Result<StatusView> {
    desk.status()
}

#[tauri::command(async)]
pub fn declare_outage(desk: DeskState<'_>) -> Result<StatusView> {
    desk.declare_outage()
}

#[tauri::command(async)]
pub fn end_outage(desk: DeskState<'_>) -> Result<StatusView> {
    desk.end_outage()
}

#[tauri::command]
pub async fn sync_now(desk: DeskState<'_>) -> Result<SyncSummary> {
    desk.sync_now().await
}

#[tauri::command(async)]
pub fn start_drill(desk: DeskState<'_>) -> Result<StatusView> {
    desk.start_drill()
}

#[tauri::command(async)]
pub fn end_drill(desk: DeskState<'_>) -> Result<DrillSummary> {
    desk.end_drill()
}
