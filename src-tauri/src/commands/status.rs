//! Status and mode: the banner's status, outages, sync, drills.

use lifeboat_app::Desk;
use lifeboat_app::desk::{DrillSummary, StatusView, SyncSummary};
use tauri::State;

use super::Result;

#[tauri::command(async)]
pub fn status(desk: State<'_, Desk>) -> Result<StatusView> {
    desk.status()
}

#[tauri::command(async)]
pub fn declare_outage(desk: State<'_, Desk>) -> Result<StatusView> {
    desk.declare_outage()
}

#[tauri::command(async)]
pub fn end_outage(desk: State<'_, Desk>) -> Result<StatusView> {
    desk.end_outage()
}

#[tauri::command]
pub async fn sync_now(desk: State<'_, Desk>) -> Result<SyncSummary> {
    desk.sync_now().await
}

#[tauri::command(async)]
pub fn start_drill(desk: State<'_, Desk>) -> Result<StatusView> {
    desk.start_drill()
}

#[tauri::command(async)]
pub fn end_drill(desk: State<'_, Desk>) -> Result<DrillSummary> {
    desk.end_drill()
}
