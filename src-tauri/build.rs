//! Declares the app's own commands so that `capabilities/default.json` can allow exactly
//! these and nothing else (with an app manifest, Tauri refuses any command not granted).

const COMMANDS: &[&str] = &[
    "session_state",
    "setup",
    "login",
    "lock",
    "unlock",
    "logout",
    "touch",
    "status",
    "declare_outage",
    "end_outage",
    "sync_now",
    "search_patients",
    "patient_overview",
    "patient_summary",
    "write_note",
    "practitioners",
    "day_book",
    "free_slots",
    "book",
    "cancel_appointment",
    "move_appointment",
    "mark_attendance",
    "journal",
    "reconcile",
    "conflicts",
    "resolve_conflict",
    "worklist",
    "complete_work_item",
    "accounts",
    "add_account",
    "disable_account",
    "reset_password",
    "audit_verify",
    "audit_export",
    "start_drill",
    "end_drill",
];

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri-build failed");
}
