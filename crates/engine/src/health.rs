//! Noticing an outage: a periodic probe of the upstream (its CapabilityStatement, then a
//! cheap authenticated read) feeding a circuit breaker with hysteresis. Defaults notice a
//! real outage within 60 s (three failed probes, 10 s apart, each given 5 s) and keep a
//! flapping upstream from bouncing the mode: three successes in a row to come back, and a
//! minimum time in each state.

use std::time::Duration;

use lifeboat_upstream::Upstream;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct HealthSettings {
    pub probe_every: Duration,
    /// Each probe is given this long; a hung upstream counts as a failure.
    pub probe_timeout: Duration,
    pub failures_to_go_offline: u32,
    pub successes_to_recover: u32,
    /// No second change of verdict sooner than this after the last.
    pub min_dwell: Duration,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            probe_every: Duration::from_secs(10),
            probe_timeout: Duration::from_secs(5),
            failures_to_go_offline: 3,
            successes_to_recover: 3,
            min_dwell: Duration::from_secs(60),
        }
    }
}

impl HealthSettings {
    /// The longest an outage can go unnoticed: the probes it takes, each waited for in full.
    pub fn worst_case_detection(&self) -> Duration {
        (self.probe_every + self.probe_timeout) * self.failures_to_go_offline
    }
}

/// What the breaker concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthSignal {
    Down,
    Up,
}

/// Counts consecutive probe results and says when the verdict changes.
#[derive(Debug)]
pub struct Breaker {
    settings: HealthSettings,
    up: bool,
    failures: u32,
    successes: u32,
    last_change: Option<Instant>,
    /// Whether enough probes have agreed for the verdict to count (not at start-up).
    known: bool,
}

impl Breaker {
    pub fn new(settings: HealthSettings) -> Self {
        Self {
            settings,
            up: true,
            failures: 0,
            successes: 0,
            last_change: None,
            known: false,
        }
    }

    /// The current verdict, once enough probes agree: at start-up, `successes_to_recover`
    /// good ones in a row (or `failures_to_go_offline` bad ones).
    pub fn verdict(&self) -> Option<HealthSignal> {
        self.known.then_some(if self.up {
            HealthSignal::Up
        } else {
            HealthSignal::Down
        })
    }

    /// Records one probe result at `now`; returns a signal when the verdict flips.
    pub fn record(&mut self, ok: bool, now: Instant) -> Option<HealthSignal> {
        if ok {
            self.successes += 1;
            self.failures = 0;
        } else {
            self.failures += 1;
            self.successes = 0;
        }
        let dwelt = self
            .last_change
            .is_none_or(|t| now.duration_since(t) >= self.settings.min_dwell);
        if self.up && self.successes >= self.settings.successes_to_recover {
            self.known = true;
        }
        let flip = if self.up {
            self.failures >= self.settings.failures_to_go_offline
        } else {
            self.successes >= self.settings.successes_to_recover && dwelt
        };
        if !flip {
            return None;
        }
        self.up = !self.up;
        self.known = true;
        self.last_change = Some(now);
        Some(if self.up {
            HealthSignal::Up
        } else {
            HealthSignal::Down
        })
    }
}

/// One probe: the CapabilityStatement, then a one-row read, both within the timeout.
pub async fn probe(upstream: &Upstream, timeout: Duration) -> bool {
    let check = async {
        upstream.capabilities().await.is_ok()
            && upstream
                .search_page(&upstream.url("Practitioner?_count=1&_elements=id"))
                .await
                .is_ok()
    };
    tokio::time::timeout(timeout, check).await.unwrap_or(false)
}

/// Probes for ever, calling `on_verdict` after every probe once the verdict is known (not
/// only when it changes: whoever records it may not have been able to the first time, e.g.
/// nobody was logged in to unlock the cache). Stops when `on_verdict` returns false. The
/// upstream client should make one attempt per request (the breaker is the retry policy).
pub async fn monitor(
    upstream: &Upstream,
    settings: HealthSettings,
    mut on_verdict: impl FnMut(HealthSignal) -> bool,
) {
    let mut breaker = Breaker::new(settings.clone());
    let mut ticks = tokio::time::interval(settings.probe_every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let ok = probe(upstream, settings.probe_timeout).await;
        if let Some(signal) = breaker.record(ok, Instant::now()) {
            tracing::info!(?signal, "upstream health verdict changed");
        }
        if let Some(verdict) = breaker.verdict()
            && !on_verdict(verdict)
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> HealthSettings {
        HealthSettings {
            probe_every: Duration::from_secs(10),
            probe_timeout: Duration::from_secs(5),
            failures_to_go_offline: 3,
            successes_to_recover: 3,
            min_dwell: Duration::from_secs(60),
        }
    }

    #[test]
    fn defaults_notice_an_outage_within_a_minute() {
        assert!(HealthSettings::default().worst_case_detection() <= Duration::from_secs(60));
    }

    #[test]
    fn the_verdict_is_known_once_enough_probes_agree() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings());
        assert_eq!(b.verdict(), None, "nothing known at start-up");
        b.record(true, t0);
        b.record(true, t0);
        assert_eq!(b.verdict(), None);
        b.record(true, t0);
        assert_eq!(b.verdict(), Some(HealthSignal::Up));
        let mut b = Breaker::new(settings());
        for _ in 0..3 {
            b.record(false, t0);
        }
        assert_eq!(b.verdict(), Some(HealthSignal::Down));
    }

    #[test]
    fn goes_down_after_consecutive_failures_only() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings());
        assert_eq!(b.record(false, t0), None);
        assert_eq!(b.record(true, t0), None, "a success resets the count");
        assert_eq!(b.record(false, t0), None);
        assert_eq!(b.record(false, t0), None);
        assert_eq!(b.record(false, t0), Some(HealthSignal::Down));
        assert_eq!(b.record(false, t0), None, "already down");
    }

    #[test]
    fn comes_back_after_consecutive_successes_and_the_dwell_time() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings());
        for _ in 0..3 {
            b.record(false, t0);
        }
        let soon = t0 + Duration::from_secs(20);
        for _ in 0..5 {
            assert_eq!(b.record(true, soon), None, "too soon after going down");
        }
        assert_eq!(
            b.record(true, t0 + Duration::from_secs(61)),
            Some(HealthSignal::Up)
        );
    }

    #[test]
    fn a_flapping_upstream_changes_the_verdict_a_bounded_number_of_times() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings());
        let mut flips = 0;
        // Alternating up and down every other probe (every 20 s) for an hour.
        for i in 0..360u64 {
            let ok = (i / 2) % 2 == 0;
            if b.record(ok, t0 + Duration::from_secs(10 * i)).is_some() {
                flips += 1;
            }
        }
        assert!(flips <= 1, "flapped {flips} times");
    }
}
