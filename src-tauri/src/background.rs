//! The background work the desk needs a door to drive while the app runs: the upstream
//! health watch, the scheduled sync and the idle lock (the desk's own loops,
//! `lifeboat_app::background`), on Tauri's runtime. Each does nothing while nobody is
//! logged in.

use std::sync::Arc;

use lifeboat_app::{Desk, background};

pub fn start(desk: &Arc<Desk>) {
    tauri::async_runtime::spawn(background::watch_health(desk.clone()));
    tauri::async_runtime::spawn(background::schedule_sync(desk.clone()));
    tauri::async_runtime::spawn(background::lock_when_idle(desk.clone()));
}
