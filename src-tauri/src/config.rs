//! Which config the desktop app runs with: the same `lifeboat.toml` the CLI reads, found
//! through `LIFEBOAT_CONFIG` or in the app's config folder, with the two overrides the demo
//! and the end-to-end tests use (`LIFEBOAT_DB`, `LIFEBOAT_UPSTREAM`). The cache goes in the
//! app's data folder unless the config or the environment says where.

use std::path::PathBuf;

use lifeboat_app::Config;
use tauri::{AppHandle, Manager};

pub struct Loaded {
    pub config: Config,
    /// Where the config came from, for the log.
    pub source: String,
    pub log_dir: Option<PathBuf>,
}

pub fn load(app: &AppHandle) -> Result<Loaded, Box<dyn std::error::Error>> {
    let paths = app.path();
    let file = std::env::var_os("LIFEBOAT_CONFIG")
        .map(PathBuf::from)
        .or_else(|| {
            let p = paths.app_config_dir().ok()?.join("lifeboat.toml");
            p.exists().then_some(p)
        });
    // Not `Config::load(None)`: a desktop app's working folder means nothing.
    let mut config = match &file {
        Some(f) => Config::load(Some(f))?,
        None => Config::default(),
    };
    // A relative cache path means "beside the config file", or in the app's data folder.
    if let Some(db) = std::env::var_os("LIFEBOAT_DB") {
        config.cache = PathBuf::from(db);
    } else if config.cache.is_relative() {
        let base = match &file {
            Some(f) => f.parent().map(PathBuf::from).unwrap_or_default(),
            None => paths.app_data_dir()?,
        };
        std::fs::create_dir_all(&base)?;
        config.cache = base.join(&config.cache);
    }
    if let Ok(url) = std::env::var("LIFEBOAT_UPSTREAM")
        && !url.is_empty()
    {
        config.upstream.base_url = Some(url);
    }
    Ok(Loaded {
        config,
        source: file.map_or_else(|| "defaults".into(), |f| f.display().to_string()),
        log_dir: std::env::var_os("LIFEBOAT_LOG_DIR")
            .map(PathBuf::from)
            .or_else(|| paths.app_log_dir().ok()),
    })
}
