//! The desk's background work while the app runs: watching the upstream's health (moving
//! the mode), syncing on a schedule, preparing the downtime pack, and locking an idle session.

use std::sync::Arc;
use std::time::Duration;

use lifeboat_engine::health::{self, HealthSignal};
use lifeboat_upstream::Upstream;

use crate::Desk;

/// Probes the upstream for ever and applies the verdict to the mode after every probe (a
/// verdict that changes nothing writes nothing; one reached while nobody was logged in is
/// applied as soon as someone is).
pub async fn watch_health(desk: Arc<Desk>) {
    let Ok(config) = desk.config().probe_config() else {
        return; // no upstream configured: nothing to watch
    };
    let Ok(upstream) = Upstream::new(config) else {
        return;
    };
    health::monitor(&upstream, desk.config().health_settings(), |signal| {
        if let Err(e) = desk.upstream_health(signal == HealthSignal::Up) {
            tracing::warn!(error = %e, "could not record the upstream's health");
        }
        true
    })
    .await;
}

/// Syncs every `interval_minutes` while someone is logged in and the mode allows it, and
/// after a sync that succeeded prepares the downtime pack when one is due (so the pack is
/// rendered from data that is minutes old).
pub async fn schedule_sync(desk: Arc<Desk>) {
    let every = Duration::from_secs(desk.config().sync.interval_minutes.max(1) * 60);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match desk.scheduled_sync().await {
            Ok(Some(_)) => match desk.prepare_downtime_pack_if_due() {
                Ok(Some(pack)) => {
                    tracing::info!(for_date = %pack.for_date, "downtime pack prepared")
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not prepare the downtime pack"),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "scheduled sync failed"),
        }
    }
}

/// Locks the session once it has been idle for the timeout.
pub async fn lock_when_idle(desk: Arc<Desk>) {
    let mut ticks = tokio::time::interval(Duration::from_secs(5));
    loop {
        ticks.tick().await;
        let _ = desk.lock_if_idle();
    }
}
