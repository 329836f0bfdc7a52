//! The background work the desk needs a door to drive, while the app runs:
//! - the upstream health monitor (circuit breaker), whose verdict moves the mode;
//! - the scheduled sync, every `interval_minutes` while Online or Recovering;
//! - the idle lock.
//!
//! Each does nothing while nobody is logged in (the desk has no cache key then).

use std::time::Duration;

use lifeboat_app::Desk;
use lifeboat_engine::health::{self, Breaker, HealthSettings, HealthSignal};
use lifeboat_upstream::Upstream;
use tauri::{AppHandle, Manager};
use tokio::time::Instant;

pub fn start(app: AppHandle) {
    tauri::async_runtime::spawn(health_monitor(app.clone()));
    tauri::async_runtime::spawn(scheduled_sync(app.clone()));
    tauri::async_runtime::spawn(idle_lock(app));
}

/// Health settings: the engine's defaults (an outage noticed within 60 s), which the demo
/// and end-to-end tests may shorten with `LIFEBOAT_HEALTH_PROBE_SECONDS` (time between
/// probes) and `LIFEBOAT_HEALTH_DWELL_SECONDS` (least time between two changes of verdict).
fn health_settings() -> HealthSettings {
    let secs = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| *v > 0.0)
    };
    let mut s = HealthSettings::default();
    if let Some(p) = secs("LIFEBOAT_HEALTH_PROBE_SECONDS") {
        s.probe_every = Duration::from_secs_f64(p);
        s.probe_timeout = s.probe_timeout.min(Duration::from_secs_f64(p.max(1.0)));
    }
    if let Some(d) = secs("LIFEBOAT_HEALTH_DWELL_SECONDS") {
        s.min_dwell = Duration::from_secs_f64(d);
    }
    s
}

async fn health_monitor(app: AppHandle) {
    let desk = app.state::<Desk>();
    let Ok(mut config) = desk.upstream_config() else {
        tracing::info!("no upstream configured: health checks are off");
        return;
    };
    // One attempt per probe: the breaker is the retry policy here.
    config.max_attempts = 1;
    let upstream = match Upstream::new(config) {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!("health checks are off: {e}");
            return;
        }
    };
    let settings = health_settings();
    let mut breaker = Breaker::new(settings.clone());
    // The breaker only reports changes; until it has, a run of good probes counts as "up",
    // so a cache left Offline by an earlier run comes back when the upstream is fine.
    let mut verdict: Option<bool> = None;
    let mut good_run = 0;
    let mut ticks = tokio::time::interval(settings.probe_every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let ok = health::probe(&upstream, settings.probe_timeout).await;
        good_run = if ok { good_run + 1 } else { 0 };
        if let Some(signal) = breaker.record(ok, Instant::now()) {
            verdict = Some(signal == HealthSignal::Up);
        } else if verdict.is_none() && good_run >= settings.successes_to_recover {
            verdict = Some(true);
        }
        // Applied on every probe, not only on a change: someone may have logged in since,
        // and applying the same verdict again changes nothing.
        if let Some(up) = verdict
            && let Err(e) = desk.upstream_health(up)
        {
            tracing::warn!("could not apply the upstream's health: {e}");
        }
    }
}

async fn scheduled_sync(app: AppHandle) {
    let desk = app.state::<Desk>();
    let every = Duration::from_secs(desk.config().sync.interval_minutes.max(1) * 60);
    // The first sync after set-up is the manager's "Sync now"; the schedule starts an
    // interval after launch, so it never races a first sync the person started.
    let mut last = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs(30));
    loop {
        ticks.tick().await;
        if last.elapsed() < every {
            continue;
        }
        match desk.scheduled_sync().await {
            Ok(Some(s)) => {
                tracing::info!(fetched = s.fetched, "scheduled sync done");
                last = Instant::now();
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("scheduled sync failed: {e}");
                last = Instant::now();
            }
        }
    }
}

async fn idle_lock(app: AppHandle) {
    let desk = app.state::<Desk>();
    let mut ticks = tokio::time::interval(Duration::from_secs(15));
    loop {
        ticks.tick().await;
        if let Err(e) = desk.lock_if_idle() {
            tracing::warn!("idle lock check failed: {e}");
        }
    }
}
