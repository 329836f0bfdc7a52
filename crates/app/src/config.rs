//! The practice's configuration: one loader, one file (`lifeboat.toml`), sensible defaults
//! for everything, and the few overrides a door may apply (cache path, upstream URL).
//! Secrets are never in the file: the bearer token is read from the environment variable
//! the file names.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lifeboat_engine::SyncSettings;
use lifeboat_engine::health::HealthSettings;
use lifeboat_upstream::UpstreamConfig;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The encrypted cache file.
    pub cache: PathBuf,
    /// This machine's name in the journal and audit log.
    pub workstation: String,
    pub upstream: UpstreamSection,
    pub sync: SyncSection,
    pub health: HealthSection,
    pub downtime_pack: DowntimePackSection,
}

/// The downtime pack prepared ahead of an outage: while the upstream is up, the next working
/// day's day list and clinical summary pack are rendered once a day (from `prepare_at`,
/// London time, or at the first chance after it) and kept in the encrypted cache.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DowntimePackSection {
    pub enabled: bool,
    /// "HH:MM", Europe/London.
    pub prepare_at: String,
    /// How many preparations to keep (older ones are deleted).
    pub keep: usize,
    /// Also write the PDFs here (e.g. a folder another machine prints from or backs up). The
    /// files hold patient data outside the encrypted cache: use a protected, encrypted
    /// location only. Off by default.
    pub directory: Option<PathBuf>,
}

impl Default for DowntimePackSection {
    fn default() -> Self {
        Self {
            enabled: true,
            prepare_at: "18:00".into(),
            keep: 3,
            directory: None,
        }
    }
}

impl DowntimePackSection {
    /// The configured time of day; an unreadable value is refused with the value named.
    pub fn prepare_time(&self) -> Result<chrono::NaiveTime, ConfigError> {
        chrono::NaiveTime::parse_from_str(&self.prepare_at, "%H:%M").map_err(|_| {
            ConfigError::Invalid(
                "[downtime_pack] prepare_at".into(),
                format!("\"{}\" is not a time such as \"18:00\"", self.prepare_at),
            )
        })
    }
}

/// How the upstream's health is watched. Defaults notice an outage within 60 s.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthSection {
    pub probe_every_seconds: u64,
    pub probe_timeout_seconds: u64,
    pub failures_to_go_offline: u32,
    pub successes_to_recover: u32,
    pub min_dwell_seconds: u64,
}

impl Default for HealthSection {
    fn default() -> Self {
        let h = HealthSettings::default();
        Self {
            probe_every_seconds: h.probe_every.as_secs(),
            probe_timeout_seconds: h.probe_timeout.as_secs(),
            failures_to_go_offline: h.failures_to_go_offline,
            successes_to_recover: h.successes_to_recover,
            min_dwell_seconds: h.min_dwell.as_secs(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamSection {
    /// FHIR R4 base URL of the clinical system.
    pub base_url: Option<String>,
    /// Name of the environment variable holding the bearer token, if the upstream needs one.
    pub token_env: String,
    pub timeout_seconds: u64,
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSection {
    pub interval_minutes: u64,
    pub page_size: u32,
    pub days_back: i64,
    pub days_ahead: i64,
    pub priority_days: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cache: PathBuf::from("lifeboat.db"),
            workstation: std::env::var("HOSTNAME")
                .ok()
                .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "workstation".into()),
            upstream: UpstreamSection::default(),
            sync: SyncSection::default(),
            health: HealthSection::default(),
            downtime_pack: DowntimePackSection::default(),
        }
    }
}

impl Default for UpstreamSection {
    fn default() -> Self {
        Self {
            base_url: None,
            token_env: "LIFEBOAT_UPSTREAM_TOKEN".into(),
            timeout_seconds: 20,
            max_attempts: 4,
        }
    }
}

impl Default for SyncSection {
    fn default() -> Self {
        let s = SyncSettings::default();
        Self {
            interval_minutes: 5,
            page_size: s.page_size,
            days_back: s.days_back,
            days_ahead: s.days_ahead,
            priority_days: s.priority_days,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {0}: {1}")]
    Read(String, std::io::Error),
    #[error("the config file {0} is not valid: {1}")]
    Invalid(String, String),
    #[error(
        "no upstream is configured: set [upstream] base_url in the config file or pass --upstream"
    )]
    NoUpstream,
}

impl Config {
    /// Loads `path`; with no path, `lifeboat.toml` in the current folder if there is one,
    /// else the defaults.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("lifeboat.toml"), false),
        };
        if !required && !path.exists() {
            return Ok(Self::default());
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError::Read(path.display().to_string(), e))?;
        toml::from_str(&text)
            .map_err(|e| ConfigError::Invalid(path.display().to_string(), e.message().to_string()))
    }

    pub fn upstream_config(&self) -> Result<UpstreamConfig, ConfigError> {
        let base = self
            .upstream
            .base_url
            .clone()
            .ok_or(ConfigError::NoUpstream)?;
        let mut c = UpstreamConfig::new(base);
        c.bearer_token = std::env::var(&self.upstream.token_env)
            .ok()
            .filter(|t| !t.is_empty());
        c.timeout = Duration::from_secs(self.upstream.timeout_seconds.max(1));
        c.max_attempts = self.upstream.max_attempts.max(1);
        Ok(c)
    }

    pub fn health_settings(&self) -> HealthSettings {
        let h = &self.health;
        HealthSettings {
            probe_every: Duration::from_secs(h.probe_every_seconds.max(1)),
            probe_timeout: Duration::from_secs(h.probe_timeout_seconds.max(1)),
            failures_to_go_offline: h.failures_to_go_offline.max(1),
            successes_to_recover: h.successes_to_recover.max(1),
            min_dwell: Duration::from_secs(h.min_dwell_seconds),
        }
    }

    /// The upstream client the health probe uses: one attempt per request, within the
    /// probe's timeout (the breaker is the retry policy).
    pub fn probe_config(&self) -> Result<UpstreamConfig, ConfigError> {
        let mut c = self.upstream_config()?;
        c.max_attempts = 1;
        c.timeout = Duration::from_secs(self.health.probe_timeout_seconds.max(1));
        c.connect_timeout = c.timeout;
        Ok(c)
    }

    pub fn sync_settings(&self) -> SyncSettings {
        SyncSettings {
            page_size: self.sync.page_size.clamp(1, 5000),
            days_back: self.sync.days_back.max(0),
            days_ahead: self.sync.days_ahead.max(0),
            priority_days: self.sync.priority_days.max(0),
            ..SyncSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_default_file_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::load(None).unwrap();
        assert_eq!(c.sync.interval_minutes, 5);
        assert!(c.health_settings().worst_case_detection() <= Duration::from_secs(60));
        assert!(Config::load(Some(&dir.path().join("absent.toml"))).is_err());
    }

    #[test]
    fn reads_a_partial_file_and_refuses_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lifeboat.toml");
        std::fs::write(&p, "cache = \"x.db\"\n[upstream]\nbase_url = \"http://127.0.0.1:1/fhir\"\n[sync]\ninterval_minutes = 2\n").unwrap();
        let c = Config::load(Some(&p)).unwrap();
        assert_eq!(c.cache, PathBuf::from("x.db"));
        assert_eq!(c.sync.interval_minutes, 2);
        assert_eq!(c.sync.days_ahead, 42);
        assert_eq!(
            c.upstream_config().unwrap().base_url,
            "http://127.0.0.1:1/fhir"
        );
        std::fs::write(&p, "[sync]\nintervl_minutes = 2\n").unwrap();
        let err = Config::load(Some(&p)).unwrap_err().to_string();
        assert!(err.contains("intervl_minutes"), "{err}");
    }

    #[test]
    fn the_pack_is_prepared_each_evening_by_default_and_a_bad_time_is_named() {
        let c = Config::default();
        assert!(c.downtime_pack.enabled);
        assert_eq!(
            c.downtime_pack.prepare_time().unwrap(),
            chrono::NaiveTime::from_hms_opt(18, 0, 0).unwrap()
        );
        let bad = DowntimePackSection {
            prepare_at: "6pm".into(),
            ..DowntimePackSection::default()
        };
        let err = bad.prepare_time().unwrap_err().to_string();
        assert!(err.contains("6pm") && err.contains("prepare_at"), "{err}");
    }
}
