//! Shared by the integration tests: the test upstream with the fixture practice, temporary
//! caches, and comparing caches resource by resource.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // shared by test binaries; a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use lifeboat_engine::{SyncSettings, Syncer};
use lifeboat_model::{Clock, FixedClock, NhsNumber, ResourceKind, SystemClock};
use lifeboat_store::{CacheKey, Store};
use lifeboat_upstream::{Upstream, UpstreamConfig};
use serde_json::{Value, json};

pub use lifeboat_cli::test_upstream::{TestUpstream, repo_root};

/// The checked-in practice is anchored on Fri 19 Jul 2024; tests run "on" that morning.
pub fn fixture_now() -> DateTime<Utc> {
    "2024-07-19T08:30:00Z".parse().expect("valid instant")
}

pub fn fixture_today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 7, 19).expect("valid date")
}

pub fn practice_upstream() -> TestUpstream {
    TestUpstream::start(&repo_root().join("fixtures/practice-200"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The window filter the engine applies for a type on the fixture day.
pub fn window_filter(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Slot => "&start=ge2024-07-04T23:00:00.000Z&start=lt2024-08-31T23:00:00.000Z",
        ResourceKind::Appointment => {
            "&date=ge2024-07-04T23:00:00.000Z&date=lt2024-08-31T23:00:00.000Z"
        }
        _ => "",
    }
}

/// The test manager every logged-in cache is set up with.
pub const MANAGER: &str = "manager";
pub const MANAGER_PASSWORD: &str = "test-manager-password";

/// Access settings with a cheap key derivation, so tests log in in milliseconds (each key
/// slot records its own iteration count, so the real binary honours it too).
pub fn cheap_access() -> lifeboat_access::AccessSettings {
    lifeboat_access::AccessSettings {
        kdf_iterations: std::num::NonZeroU32::new(1_000).expect("not zero"),
        ..lifeboat_access::AccessSettings::default()
    }
}

pub struct TempCache {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub key: CacheKey,
}

impl TempCache {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cache.db");
        Self {
            _dir: dir,
            path,
            key: CacheKey::from_bytes([7; 32]),
        }
    }

    /// A cache set up as a practice would: random key, first manager `MANAGER`.
    pub fn with_manager() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cache.db");
        let access = lifeboat_access::Access::new(&path, cheap_access(), Arc::new(SystemClock));
        let session = access
            .setup(
                MANAGER,
                "Test Manager",
                &lifeboat_access::Password::new(MANAGER_PASSWORD),
                "test",
            )
            .expect("setup");
        Self {
            key: session.cache_key().clone(),
            _dir: dir,
            path,
        }
    }

    pub fn open(&self) -> Store {
        Store::open(&self.path, &self.key).expect("open cache")
    }

    /// An independent copy of this cache (same key), e.g. to replay one journal many times.
    pub fn copy(&self) -> Self {
        let copy = Self {
            key: self.key.clone(),
            ..Self::new()
        };
        self.open().copy_to(&copy.path).expect("copy the cache");
        copy
    }

    /// Every cached resource: (kind, id) -> (versionId, lastUpdated, raw JSON).
    pub fn dump(&self) -> BTreeMap<(ResourceKind, String), (String, DateTime<Utc>, String)> {
        let store = self.open();
        let mut out = BTreeMap::new();
        for kind in ResourceKind::ALL {
            for id in store.ids(kind).expect("ids") {
                let r = store
                    .resource(kind, &id)
                    .expect("read")
                    .expect("listed id exists");
                out.insert((kind, id), (r.version_id, r.last_updated, r.raw));
            }
        }
        out
    }
}

/// Short timeouts and backoffs so fault tests finish quickly.
pub fn upstream_client(up: &TestUpstream) -> Upstream {
    let mut c = UpstreamConfig::new(&up.base_url);
    c.timeout = std::time::Duration::from_millis(1500);
    c.max_attempts = 4;
    c.backoff_base = std::time::Duration::from_millis(20);
    c.backoff_max = std::time::Duration::from_millis(200);
    Upstream::new(c).expect("client")
}

/// A syncer "on" the fixture day.
pub fn syncer(up: &TestUpstream, cache: &TempCache, settings: SyncSettings) -> Syncer {
    syncer_with_clock(
        up,
        cache,
        settings,
        Arc::new(FixedClock::new(fixture_now())),
    )
}

pub fn syncer_with_clock(
    up: &TestUpstream,
    cache: &TempCache,
    settings: SyncSettings,
    clock: Arc<dyn Clock>,
) -> Syncer {
    Syncer::new(
        Arc::new(upstream_client(up)),
        &cache.path,
        cache.key.clone(),
        clock,
        settings,
    )
}

/// A 200-patient practice generated for today (for tests that run the real `lifeboat`
/// binary, which keeps real time), and the upstream serving it.
pub fn todays_practice_upstream() -> (TestUpstream, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = lifeboat_fixtures::PracticeSpec {
        anchor: SystemClock.today_in_london(),
        ..lifeboat_fixtures::PracticeSpec::default()
    };
    lifeboat_fixtures::write_ndjson(&spec, dir.path()).expect("generate practice");
    let up = TestUpstream::start(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    (up, dir)
}

/// A new, valid UK Core patient as the practice's own system would register one.
pub fn new_patient(family: &str) -> Value {
    let seed: u32 = family.bytes().map(u32::from).sum();
    let nhs = (0..1000u32)
        .find_map(|i| {
            let s = format!("{:09}", 888_000_000 + seed * 1000 + i);
            NhsNumber::from_first_nine(std::array::from_fn(|k| s.as_bytes()[k] - b'0'))
        })
        .expect("a valid number nearby");
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs.as_digits()}],
        "name": [{"use": "official", "family": family, "given": ["Test"]}],
        "gender": "unknown",
        "birthDate": "1980-01-01"
    })
}

/// `lifeboat sync` as a separate process against the test upstream, with `page_size`,
/// logged in as `MANAGER` (the cache must come from `TempCache::with_manager`), its output
/// discarded.
pub fn lifeboat_sync_process(up: &TestUpstream, cache: &TempCache, page_size: u32) -> Child {
    lifeboat_sync_command(up, cache, page_size)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start lifeboat sync")
}

/// The command `lifeboat_sync_process` runs.
pub fn lifeboat_sync_command(up: &TestUpstream, cache: &TempCache, page_size: u32) -> Command {
    let config = cache.path.with_extension("toml");
    std::fs::write(&config, format!("[sync]\npage_size = {page_size}\n")).expect("write config");
    let mut command = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
    command
        .arg("sync")
        .arg("--config")
        .arg(&config)
        .arg("--db")
        .arg(&cache.path)
        .arg("--upstream")
        .arg(&up.base_url)
        .arg("--user")
        .arg(MANAGER)
        .env("LIFEBOAT_PASSWORD", MANAGER_PASSWORD);
    command
}

/// The 200-patient practice generated for the fixed anchor day (Fri 19 Jul 2024, the day
/// `fixture_now` falls on), written as NDJSON into a temporary folder.
pub fn anchored_practice() -> (tempfile::TempDir, lifeboat_fixtures::Manifest) {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest =
        lifeboat_fixtures::write_ndjson(&lifeboat_fixtures::PracticeSpec::default(), dir.path())
            .expect("generate practice");
    (dir, manifest)
}

/// A fresh upstream serving `fixtures`, whose GP Connect "past" clock starts at `now`.
pub fn upstream_at(fixtures: &std::path::Path, now: DateTime<Utc>) -> TestUpstream {
    TestUpstream::start_at(fixtures, Some(now)).unwrap_or_else(|e| panic!("{e}"))
}

/// Every resource a search finds, following the Bundle `next` links, through the upstream's
/// own API (not through Lifeboat).
pub async fn read_all(up: &TestUpstream, search: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut path = search.to_string();
    loop {
        let (status, bundle) = up
            .fhir(lifeboat_upstream::Method::GET, &path, None)
            .await
            .expect("upstream answers");
        assert_eq!(status, 200, "{path}: {bundle}");
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            out.push(entry["resource"].clone());
        }
        let next = bundle["link"]
            .as_array()
            .and_then(|links| links.iter().find(|l| l["relation"] == "next"))
            .and_then(|l| l["url"].as_str());
        match next {
            Some(url) => {
                path = url
                    .strip_prefix(&up.base_url)
                    .expect("next links point at the same server")
                    .to_string()
            }
            None => return out,
        }
    }
}
