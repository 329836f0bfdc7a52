//! Session: first-run setup, log in, lock, unlock, log out.

use lifeboat_app::desk::{SessionState, UserInfo};

use super::{DeskState, Result};

#[tauri::command]
pub fn session_state(desk: DeskState<'_>) -> SessionState {
    desk.session_state()
}

// Setup, login and unlock derive keys (deliberately slow): off the main thread.
#[tauri::command(async)]
pub fn setup(
    desk: DeskState<'_>,
    username: String,
    display_name: String,
    password: String,
) -> Result<UserInfo> {
    desk.setup(&username, &display_name, &password)
}

#[tauri::command(async)]
pub fn login(desk: DeskState<'_>, username: String, password: String) -> Result<UserInfo> {
    desk.login(&username, &password)
}

#[tauri::command]
pub fn lock(desk: DeskState<'_>) -> Result<()> {
    desk.lock()
}

#[tauri::command(async)]
pub fn unlock(desk: DeskState<'_>, password: String) -> Result<UserInfo> {
    desk.unlock(&password)
}

#[tauri::command]
pub fn logout(desk: DeskState<'_>) -> Result<()> {
    desk.logout()
}

/// Typing or scrolling that is not itself a use case keeps the session from idling out.
#[tauri::command]
pub fn touch(desk: DeskState<'_>) {
    desk.touch();
}
