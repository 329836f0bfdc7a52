//! `lifeboat bench sync`: initial sync of a generated practice against the test upstream,
//! beside a plain client downloading exactly the pages that sync fetched from the same kind
//! of server (each run on a freshly started server, so neither gains from the other's warm
//! caches; five rounds, medians compared), and an incremental sync after 100 changes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lifeboat_cli::test_upstream::TestUpstream;
use lifeboat_engine::{SyncSettings, Syncer};
use lifeboat_fixtures::{PracticeSpec, write_ndjson};
use lifeboat_model::{Clock, SystemClock};
use lifeboat_store::CacheKey;
use lifeboat_upstream::{Upstream, UpstreamConfig};
use serde_json::json;

use super::median;

fn client(up: &TestUpstream) -> Result<Upstream, String> {
    let mut c = UpstreamConfig::new(&up.base_url);
    c.timeout = Duration::from_secs(120);
    Upstream::new(c).map_err(|e| e.to_string())
}

async fn lifeboat_sync(
    up: &TestUpstream,
    db: &std::path::Path,
    page_size: u32,
) -> Result<(Duration, u64, u64), String> {
    let syncer = Syncer::new(
        Arc::new(client(up)?),
        db,
        CacheKey::from_bytes([42; 32]),
        Arc::new(SystemClock),
        SyncSettings {
            page_size,
            ..SyncSettings::default()
        },
    );
    let t0 = Instant::now();
    let report = syncer.run(None).await.map_err(|e| e.to_string())?;
    let t = report.total();
    Ok((t0.elapsed(), t.fetched, t.requests))
}

const ROUNDS: usize = 5;

/// The paths of the requests the upstream has answered since its statistics were reset.
async fn request_log(up: &TestUpstream) -> Result<Vec<String>, String> {
    let stats = up.stats().await?;
    Ok(stats["recent"]
        .as_array()
        .ok_or("no request log")?
        .iter()
        .filter_map(|r| r["url"].as_str().map(str::to_string))
        .collect())
}

/// CPU time a process uses from now on.
struct Used {
    pid: String,
    from: Option<Duration>,
}

impl Used {
    fn start(up: &TestUpstream) -> Self {
        Self::of(up.pid().to_string())
    }

    fn ours() -> Self {
        Self::of("self".into())
    }

    fn of(pid: String) -> Self {
        let from = process_cpu(&pid);
        Self { pid, from }
    }

    fn cpu(&self) -> Option<Duration> {
        Some(process_cpu(&self.pid)?.saturating_sub(self.from?))
    }
}

/// A process's CPU time so far (user + system, every thread), from /proc where there is
/// one: `self`, or a process id.
fn process_cpu(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses): utime is the 12th, stime
    // the 13th, in clock ticks (100 a second on Linux).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

pub fn run(patients: usize, page_size: u32) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let practice = dir.path().join("practice");
    let spec = PracticeSpec {
        patients,
        anchor: SystemClock.today_in_london(),
        ..PracticeSpec::default()
    };
    let manifest = write_ndjson(&spec, &practice).map_err(|e| e.to_string())?;
    println!("Practice: {}", manifest.summary());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        // 1. Each round, on freshly started servers (so neither side gains from the other's
        // warm caches): Lifeboat's initial sync into a new cache, then a plain client
        // downloading exactly the pages that sync fetched, in the same order (bodies read,
        // nothing parsed or stored). Lifeboat's own CPU time (all its threads) and the
        // upstream's are shown beside the wall times.
        let mut plain = Vec::new();
        let mut lifeboat = Vec::new();
        let mut ratios = Vec::new();
        let mut cpu = Vec::new();
        let (mut server_plain, mut server_lifeboat) = (Vec::new(), Vec::new());
        let (mut bytes, mut paths) = (0usize, 0usize);
        let (mut fetched, mut requests) = (0, 0);
        let mut last = None;
        for round in 0..ROUNDS {
            let up = TestUpstream::start(&practice)?;
            up.reset_stats().await?;
            let db = dir.path().join(format!("bench-{round}.db"));
            let (server, ours) = (Used::start(&up), Used::ours());
            let (initial, f, r) = lifeboat_sync(&up, &db, page_size).await?;
            cpu.push(ours.cpu());
            server_lifeboat.push(server.cpu());
            lifeboat.push(initial);
            (fetched, requests) = (f, r);
            let fetched_paths = request_log(&up).await?;
            last = Some((up, db));

            let up = TestUpstream::start(&practice)?;
            let http = reqwest::Client::new();
            let server = Used::start(&up);
            let t0 = Instant::now();
            bytes = 0;
            for path in &fetched_paths {
                let body = http
                    .get(format!("{}{path}", up.root))
                    .header("Accept", "application/fhir+json")
                    .send()
                    .await
                    .map_err(|e| e.to_string())?
                    .bytes()
                    .await
                    .map_err(|e| e.to_string())?;
                bytes += body.len();
            }
            let download = t0.elapsed();
            plain.push(download);
            server_plain.push(server.cpu());
            ratios.push(initial.as_secs_f64() / download.as_secs_f64());
            paths = fetched_paths.len();
        }
        let (up, db) = last.ok_or("no rounds")?;
        let plain = median(plain);
        let initial = median(lifeboat);
        let cpu = median(cpu.into_iter().flatten());
        let server_plain = median(server_plain.into_iter().flatten());
        let server_lifeboat = median(server_lifeboat.into_iter().flatten());

        // 2. 100 changes upstream, then an incremental sync of the last round's cache.
        let (_, bundle) = up.fhir(reqwest::Method::GET, "Patient?_count=100", None).await?;
        let mut changed = 0;
        for e in bundle["entry"].as_array().ok_or("no patients")? {
            let mut p = e["resource"].clone();
            let id = p["id"].as_str().unwrap_or_default().to_string();
            p["telecom"] = json!([{"system": "phone", "value": format!("07700 900{:03}", changed), "use": "mobile"}]);
            let (status, _) = up.fhir(reqwest::Method::PUT, &format!("Patient/{id}"), Some(p)).await?;
            if status == 200 {
                changed += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(1100)).await; // past the checkpoint's second
        let (incremental, inc_fetched, inc_requests) = lifeboat_sync(&up, &db, page_size).await?;

        println!("\nPages of {page_size}, last round: {paths} requests, {:.1} MiB", bytes as f64 / 1048576.0);
        println!("Medians of {ROUNDS} rounds, every run on a freshly started server:");
        println!("Plain download of the pages each sync fetched: {:>8.2} s", plain.as_secs_f64());
        println!("Lifeboat initial sync ({fetched} resources, {requests} requests): {:>8.2} s (Lifeboat's CPU: {:.2} s)", initial.as_secs_f64(), cpu.as_secs_f64());
        println!(
            "The upstream's CPU meanwhile (one machine, {} cores): {:.2} s for the plain client, {:.2} s for Lifeboat",
            std::thread::available_parallelism().map_or(0, usize::from),
            server_plain.as_secs_f64(),
            server_lifeboat.as_secs_f64()
        );
        let spread = |pick: fn(f64, f64) -> f64| ratios.iter().copied().reduce(pick).unwrap_or_default();
        println!(
            "Ratio, sync / plain download of the same round (target <= 1.15): {:>5.2} (rounds from {:.2} to {:.2})",
            median(ratios.iter().copied()),
            spread(f64::min),
            spread(f64::max)
        );
        println!(
            "Incremental sync after {changed} changes: {:.2} s ({inc_fetched} resources fetched in {inc_requests} requests)",
            incremental.as_secs_f64()
        );
        Ok(())
    })
}
