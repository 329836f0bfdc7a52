//! Session: first-run setup, log in, lock, unlock, log out.

use lifeboat_app::Desk;
use lifeboat_app::desk::{SessionState, UserInfo};
use tauri::State;

use super::Result;

#[tauri::command]
pub fn session_state(desk: State<'_, Desk>) -> SessionState {
    desk.session_state()
}

// Setup, login and unlock derive keys (deliberately slow): off the main thread.
#[tauri::command(async)]
pub fn setup(
    desk: State<'_, Desk>,
    username: String,
    display_name: String,
    password: String,
) -> Result<UserInfo> {
    desk.setup(&username, &display_name, &password)
}

#[tauri::command(async)]
pub fn login(desk: State<'_, Desk>, username: String, password: String) -> Result<UserInfo> {
    desk.login(&username, &password)
}

#[tauri::command]
pub fn lock(desk: State<'_, Desk>) -> Result<()> {
    desk.lock()
}

#[tauri::command(async)]
pub fn unlock(desk: State<'_, Desk>, password: String) -> Result<UserInfo> {
    desk.unlock(&password)
}

#[tauri::command]
pub fn logout(desk: State<'_, Desk>) -> Result<()> {
    desk.logout()
}

/// Typing or scrolling that is not itself a use case keeps the session from idling out.
#[tauri::command]
pub fn touch(desk: State<'_, Desk>) {
    desk.touch();
}
