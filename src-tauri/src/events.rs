//! The desk's events, forwarded to the window under the contract's names
//! (docs/ui-contract.md): status, sync progress, reconcile progress, idle lock.

use std::sync::Arc;

use lifeboat_app::Desk;
use lifeboat_app::desk::DeskEvent;
use tauri::{AppHandle, Emitter, Manager};
use tokio::sync::broadcast::error::RecvError;

pub fn forward(app: AppHandle) {
    let mut rx = app.state::<Arc<Desk>>().subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            let sent = match rx.recv().await {
                Ok(DeskEvent::Status(s)) => app.emit("lifeboat://status", s),
                Ok(DeskEvent::SyncProgress(p)) => app.emit("lifeboat://sync-progress", p),
                Ok(DeskEvent::ReconcileProgress { index, steps }) => app.emit(
                    "lifeboat://reconcile-progress",
                    serde_json::json!({ "index": index, "steps": steps }),
                ),
                Ok(DeskEvent::Locked { reason }) => {
                    app.emit("lifeboat://locked", serde_json::json!({ "reason": reason }))
                }
                // Progress events can be dropped under load; the next status catches up.
                Err(RecvError::Lagged(_)) => Ok(()),
                Err(RecvError::Closed) => return,
            };
            if let Err(e) = sent {
                tracing::warn!("could not send an event to the window: {e}");
            }
        }
    });
}
