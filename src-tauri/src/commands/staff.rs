//! Staff accounts (manager).

use lifeboat_access::{Account, Role};
use serde::Serialize;

use super::{DeskState, Result};

/// An account as the contract shows it (camelCase, no internal ids or timestamps).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    username: String,
    display_name: String,
    role: Role,
    disabled: bool,
}

impl From<Account> for AccountView {
    fn from(a: Account) -> Self {
        Self {
            username: a.username,
            display_name: a.display_name,
            role: a.role,
            disabled: a.disabled,
        }
    }
}

#[tauri::command(async)]
pub fn accounts(desk: DeskState<'_>) -> Result<Vec<AccountView>> {
    Ok(desk.accounts()?.into_iter().map(Into::into).collect())
}

#[tauri::command(async)]
pub fn add_account(
    desk: DeskState<'_>,
    username: String,
    display_name: String,
    role: Role,
    password: String,
) -> Result<AccountView> {
    Ok(desk
        .add_account(&username, &display_name, role, &password)?
        .into())
}

#[tauri::command(async)]
pub fn disable_account(desk: DeskState<'_>, username: String) -> Result<Vec<AccountView>> {
    Ok(desk
        .disable_account(&username)?
        .into_iter()
        .map(Into::into)
        .collect())
}

#[tauri::command(async)]
pub fn reset_password(desk: DeskState<'_>, username: String, password: String) -> Result<()> {
    desk.reset_password(&username, &password)
}
