//! `lifeboat-desktop`: the desktop door. A thin Tauri 2 shell: it loads the practice's
//! config, opens one `Desk`, registers the commands in `commands/` (each a few lines over a
//! desk method), forwards the desk's events to the window and runs the background work the
//! desk needs a door for (upstream health checks, scheduled sync, the idle lock).
//! Nothing here decides clinical behaviour.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod background;
mod commands;
mod config;
mod events;

use std::sync::Arc;

use lifeboat_app::Desk;
use lifeboat_model::SystemClock;
use tauri::Manager;

fn main() {
    // The HTTP client uses rustls with ring; install it once for the process.
    lifeboat_upstream::install_crypto_provider();
    tauri::Builder::default()
        // First, so a second launch hands over to the running one before anything opens.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            if let Some(w) = app.get_webview_window("main") {
                let _ = w.unminimize();
                let _ = w.set_focus();
            }
        }))
        .setup(|app| {
            let loaded = config::load(app.handle())?;
            if let Some(dir) = &loaded.log_dir {
                match lifeboat_access::logging::init(dir) {
                    Ok(guard) => {
                        app.manage(guard);
                    }
                    Err(e) => eprintln!("lifeboat-desktop: logging is off: {e}"),
                }
            }
            tracing::info!(config = %loaded.source, "starting");
            let desk = Arc::new(Desk::open(loaded.config, Arc::new(SystemClock)));
            background::start(&desk);
            app.manage(desk);
            events::forward(app.handle().clone());
            Ok(())
        })
        .invoke_handler(commands::handler())
        .run(tauri::generate_context!())
        .unwrap_or_else(|e| {
            eprintln!("lifeboat-desktop: {e}");
            std::process::exit(1);
        });
}
