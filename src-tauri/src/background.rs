//! The background work the desk needs a door to drive while the app runs: the scheduled
//! sync and the idle lock (the desk's own loops, `lifeboat_app::background`), and the
//! upstream health watch (here, see below). Each does nothing while nobody is logged in.

use std::sync::Arc;

use lifeboat_app::{Desk, background};
use lifeboat_engine::health::{self, Breaker, HealthSignal};
use lifeboat_upstream::Upstream;
use tokio::time::Instant;

pub fn start(desk: &Arc<Desk>) {
    tauri::async_runtime::spawn(watch_health(desk.clone()));
    tauri::async_runtime::spawn(background::schedule_sync(desk.clone()));
    tauri::async_runtime::spawn(background::lock_when_idle(desk.clone()));
}

/// Like `lifeboat_app::background::watch_health` (same probe, breaker and settings from the
/// config's `[health]`), but the verdict is applied after every probe rather than only when
/// it changes. A desktop app starts with nobody logged in, and the desk cannot record a mode
/// change then: applied only on change, an outage that began before the first login would
/// never reach the mode, and the banner would say Online while the upstream is down.
/// Applying the same verdict again changes nothing.
async fn watch_health(desk: Arc<Desk>) {
    let Ok(config) = desk.config().probe_config() else {
        tracing::info!("no upstream configured: health checks are off");
        return;
    };
    let upstream = match Upstream::new(config) {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!("health checks are off: {e}");
            return;
        }
    };
    let settings = desk.config().health_settings();
    let mut breaker = Breaker::new(settings.clone());
    // The breaker reports only changes, and starts out "up"; until it has reported, a run of
    // good probes counts as "up" (so a cache left Offline by an earlier run comes back).
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
        if let Some(up) = verdict
            && let Err(e) = desk.upstream_health(up)
        {
            tracing::warn!("could not apply the upstream's health: {e}");
        }
    }
}
