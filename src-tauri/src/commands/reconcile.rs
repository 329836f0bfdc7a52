//! Reconciliation (manager): replay, conflicts and their resolution, the back-entry worklist.

use std::sync::Arc;

use lifeboat_app::Desk;
use lifeboat_app::desk::ConflictView;
use lifeboat_engine::reconcile::{Choice, Decision, ReconcileReport};
use lifeboat_store::{JournalEntry, WorkItem};
use tauri::{AppHandle, Manager};

use super::{DeskState, Result};

/// Runs `f` on a blocking thread of the async runtime. The desk's replay keeps the cache
/// open across awaits, so its futures cannot move between threads (not `Send`); here they
/// run to completion on one thread, off the window's main thread.
async fn on_own_thread<T: Send + 'static>(
    app: AppHandle,
    f: impl FnOnce(&Desk) -> Result<T> + Send + 'static,
) -> Result<T> {
    tauri::async_runtime::spawn_blocking(move || f(&app.state::<Arc<Desk>>()))
        .await
        .map_err(|e| lifeboat_app::AppError::new("internal", format!("the task stopped: {e}")))?
}

#[tauri::command]
pub async fn reconcile(app: AppHandle, dry_run: bool) -> Result<ReconcileReport> {
    on_own_thread(app, move |desk| {
        tauri::async_runtime::block_on(desk.reconcile(dry_run))
    })
    .await
}

#[tauri::command]
pub async fn conflicts(desk: DeskState<'_>) -> Result<Vec<ConflictView>> {
    desk.conflicts().await
}

#[tauri::command]
pub async fn resolve_conflict(
    app: AppHandle,
    journal_id: String,
    choice: Choice,
    slot_id: Option<String>,
    reason: Option<String>,
) -> Result<JournalEntry> {
    let decision = Decision {
        choice,
        slot_id,
        reason,
    };
    on_own_thread(app, move |desk| {
        tauri::async_runtime::block_on(desk.resolve_conflict(&journal_id, &decision))
    })
    .await
}

#[tauri::command(async)]
pub fn worklist(desk: DeskState<'_>, include_done: Option<bool>) -> Result<Vec<WorkItem>> {
    desk.worklist(include_done.unwrap_or(false))
}

#[tauri::command(async)]
pub fn complete_work_item(desk: DeskState<'_>, id: i64) -> Result<Vec<WorkItem>> {
    desk.complete_work_item(id)
}
