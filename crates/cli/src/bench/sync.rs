//! `lifeboat bench sync`: initial sync of a generated practice against the test upstream,
//! beside a plain client downloading exactly the pages that sync fetched from the same
//! server (warmed first, as a long-running upstream is; nine rounds, medians compared), and
//! an incremental sync after 100 changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lifeboat_cli::test_upstream::TestUpstream;
use lifeboat_engine::{SyncSettings, Syncer};
use lifeboat_fixtures::{PracticeSpec, write_ndjson};
use lifeboat_model::{Clock, SystemClock};
use lifeboat_store::{CacheKey, Store};
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
) -> Result<Synced, String> {
    let key = CacheKey::from_bytes([42; 32]);
    // In a practice the cache exists before its first sync (setup makes it, with the staff's
    // accounts): made here, untimed, so the time is the sync's alone (7-9 ms otherwise).
    drop(Store::open(db, &key).map_err(|e| e.to_string())?);
    let syncer = Syncer::new(
        Arc::new(client(up)?),
        db,
        key,
        Arc::new(SystemClock),
        SyncSettings {
            page_size,
            ..SyncSettings::default()
        },
    );
    let t0 = Instant::now();
    let report = syncer.run(None).await.map_err(|e| e.to_string())?;
    let elapsed = t0.elapsed();
    let t = report.total();
    // Timed apart: the sync has returned with everything committed and readable; the
    // cache file's tidying follows in the background (see `Syncer::tidied`).
    let t1 = Instant::now();
    syncer.tidied().await;
    Ok(Synced {
        elapsed,
        tidying: t1.elapsed(),
        fetched: t.fetched,
        requests: t.requests,
    })
}

/// One sync's figures: its wall time until it returned, then its tidying's.
struct Synced {
    elapsed: Duration,
    tidying: Duration,
    fetched: u64,
    requests: u64,
}

const ROUNDS: usize = 9;

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

/// CPU time a process uses from now on (none for a process elsewhere).
struct Used {
    pid: Option<String>,
    from: Option<Duration>,
}

impl Used {
    fn start(up: &TestUpstream) -> Self {
        Self::of(up.pid().map(|pid| pid.to_string()))
    }

    fn ours() -> Self {
        Self::of(Some("self".into()))
    }

    fn of(pid: Option<String>) -> Self {
        let from = pid.as_deref().and_then(process_cpu);
        Self { pid, from }
    }

    fn cpu(&self) -> Option<Duration> {
        Some(process_cpu(self.pid.as_deref()?)?.saturating_sub(self.from?))
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

/// Bytes this process has handed to write calls so far (files and sockets), from /proc
/// where there is one.
fn written_so_far() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|line| line.strip_prefix("wchar:"))?
        .trim()
        .parse()
        .ok()
}

/// CPU time of the threads a sync starts to write the cache: its writer, and the
/// checkpointer copying the writer's log back into the file. A thread's time goes with it
/// when it ends, so each one's `/proc` entry is read every 20 ms while it runs and the last
/// reading kept (short by at most 20 ms).
struct CacheThreadsCpu {
    stop: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<CacheCpu>,
}

#[derive(Clone, Copy)]
struct CacheCpu {
    writer: Duration,
    checkpointer: Duration,
}

/// The threads' names as the kernel keeps them (their first 15 characters).
const WRITER_THREAD: &str = "lifeboat-cache-";
const CHECKPOINTER_THREAD: &str = "lifeboat-checkp";

impl CacheThreadsCpu {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let sampler = std::thread::spawn(move || {
            // Thread id -> its name (read once: the sampler shares Lifeboat's CPU, so
            // each tick reads as little as it can), and the cache threads' last times.
            let mut names: HashMap<String, String> = HashMap::new();
            let mut last: HashMap<String, u64> = HashMap::new();
            loop {
                let stopped = stopping.load(Ordering::Relaxed);
                for id in thread_ids() {
                    let name = names.entry(id.clone()).or_insert_with(|| {
                        std::fs::read_to_string(format!("/proc/self/task/{id}/comm"))
                            .unwrap_or_default()
                    });
                    if (name.starts_with(WRITER_THREAD) || name.starts_with(CHECKPOINTER_THREAD))
                        && let Some(ns) = thread_cpu(&id)
                    {
                        last.insert(id, ns);
                    }
                }
                if stopped {
                    let named = |prefix: &str| {
                        Duration::from_nanos(
                            last.iter()
                                .filter(|(id, _)| names[*id].starts_with(prefix))
                                .map(|(_, ns)| ns)
                                .sum(),
                        )
                    };
                    return CacheCpu {
                        writer: named(WRITER_THREAD),
                        checkpointer: named(CHECKPOINTER_THREAD),
                    };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self { stop, sampler }
    }

    fn stop(self) -> Option<CacheCpu> {
        self.stop.store(true, Ordering::Relaxed);
        self.sampler.join().ok()
    }
}

/// The ids of this process's threads.
fn thread_ids() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .flatten()
                .map(|task| task.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A thread's CPU time so far, in nanoseconds.
fn thread_cpu(id: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{id}/schedstat")).ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Pins process `pid` (each thread it has, and so each it starts later) to one CPU, with
/// util-linux's `taskset`.
fn pin(pid: u32, cpu: usize) -> Result<(), String> {
    let out = std::process::Command::new("taskset")
        .args([
            "--all-tasks",
            "--pid",
            "--cpu-list",
            &cpu.to_string(),
            &pid.to_string(),
        ])
        .output()
        .map_err(|e| format!("cannot run taskset (util-linux): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "taskset failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

pub fn run(
    patients: usize,
    page_size: u32,
    shared_cores: bool,
    elsewhere: Option<String>,
) -> Result<(), String> {
    // In a practice the upstream is another machine. Here it shares this one: on shared
    // cores the upstream and Lifeboat slow each other down, which the plain client (doing
    // almost nothing) is spared. So, unless asked not to, the upstream gets CPU 0 and this
    // process (Lifeboat, and the plain client after it) CPU 1: as on two machines, with
    // Lifeboat on a single core. Pinned before any thread starts, so all of them inherit it.
    // An upstream already running elsewhere leaves this machine's cores to Lifeboat.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let split = elsewhere.is_none()
        && !shared_cores
        && cores >= 2
        && match pin(std::process::id(), 1) {
            Ok(()) => true,
            Err(e) => {
                println!("Cores shared by all: could not give each its own ({e})");
                false
            }
        };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let practice = dir.path().join("practice");
    if elsewhere.is_none() {
        let spec = PracticeSpec {
            patients,
            anchor: SystemClock.today_in_london(),
            ..PracticeSpec::default()
        };
        let manifest = write_ndjson(&spec, &practice).map_err(|e| e.to_string())?;
        println!("Practice: {}", manifest.summary());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        // 1. One server for every round, warmed first by a sync nobody times (an upstream
        // in a practice has been running for days, its code compiled and its heap settled;
        // a freshly started one answers the first few thousand resources slower and
        // unevenly). Each round: Lifeboat's initial sync into a new cache, then a plain
        // client downloading exactly the pages that sync fetched, in the same order, from
        // the same server (bodies read, nothing parsed or stored). Lifeboat's own CPU time
        // (all its threads) and the upstream's (where it runs here) are shown beside the
        // wall times.
        let up = match &elsewhere {
            Some(root) => {
                let up = TestUpstream::connect(root).await?;
                println!("Practice: the one the test upstream at {} serves", up.root);
                up
            }
            None => TestUpstream::start(&practice)?,
        };
        if let (true, Some(pid)) = (split, up.pid()) {
            pin(pid, 0)?;
        }
        let warm_up = dir.path().join("warm-up.db");
        lifeboat_sync(&up, &warm_up, page_size).await?;
        let http = reqwest::Client::new();
        let mut plain = Vec::new();
        let (mut lifeboat, mut tidying) = (Vec::new(), Vec::new());
        let mut ratios = Vec::new();
        let (mut cpu, mut cache_cpu, mut written) = (Vec::new(), Vec::new(), Vec::new());
        let mut file = 0;
        let (mut server_plain, mut server_lifeboat) = (Vec::new(), Vec::new());
        let (mut bytes, mut paths) = (0usize, 0usize);
        let (mut fetched, mut requests) = (0, 0);
        let db_of = |round: usize| dir.path().join(format!("bench-{round}.db"));
        for round in 0..ROUNDS {
            // Every round starts on the same machine: the last round's cache goes first, or
            // each would write into memory the ones before it had not given back.
            lifeboat_store::remove_cache_files(&round.checked_sub(1).map_or_else(|| warm_up.clone(), db_of));
            up.reset_stats().await?;
            let db = db_of(round);
            let (server, ours, cache) = (Used::start(&up), Used::ours(), CacheThreadsCpu::start());
            let before = written_so_far();
            let synced = lifeboat_sync(&up, &db, page_size).await?;
            written.push(written_so_far().zip(before).map(|(after, before)| after - before));
            file = std::fs::metadata(&db).map_or(0, |m| m.len());
            cpu.push(ours.cpu());
            cache_cpu.push(cache.stop());
            server_lifeboat.push(server.cpu());
            lifeboat.push(synced.elapsed);
            tidying.push(synced.tidying);
            (fetched, requests) = (synced.fetched, synced.requests);
            let fetched_paths = request_log(&up).await?;

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
            ratios.push(synced.elapsed.as_secs_f64() / download.as_secs_f64());
            paths = fetched_paths.len();
        }
        let plain = median(plain);
        let initial = median(lifeboat);
        let cpu = median(cpu.into_iter().flatten());
        let cache_cpu: Vec<CacheCpu> = cache_cpu.into_iter().flatten().collect();
        let writer_cpu = median(cache_cpu.iter().map(|c| c.writer));
        let checkpointer_cpu = median(cache_cpu.iter().map(|c| c.checkpointer));
        let measured = |cpu: Vec<Option<Duration>>| {
            let cpu: Vec<Duration> = cpu.into_iter().flatten().collect();
            (!cpu.is_empty()).then(|| median(cpu))
        };
        let (server_plain, server_lifeboat) = (measured(server_plain), measured(server_lifeboat));

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
        let incremental = lifeboat_sync(&up, &db_of(ROUNDS - 1), page_size).await?;

        println!("\nPages of {page_size}, last round: {paths} requests, {:.1} MiB", bytes as f64 / 1048576.0);
        println!("Medians of {ROUNDS} rounds, on one server warmed by a sync first:");
        println!("Plain download of the pages each sync fetched: {:>8.2} s", plain.as_secs_f64());
        println!("Lifeboat initial sync ({fetched} resources, {requests} requests): {:>8.2} s (Lifeboat's CPU: {:.2} s, of which the cache writer's {:.2} s and its checkpointer's {:.2} s)", initial.as_secs_f64(), cpu.as_secs_f64(), writer_cpu.as_secs_f64(), checkpointer_cpu.as_secs_f64());
        println!(
            "Then, once it has returned with everything committed, its tidying in the background (the last commits copied back into the file and flushed, the log removed): {:.0} ms",
            median(tidying).as_secs_f64() * 1000.0
        );
        let written: Vec<u64> = written.into_iter().flatten().collect();
        if !written.is_empty() {
            let mib = |b: u64| b as f64 / 1048576.0;
            println!(
                "Written by each sync (the cache, its log and what was copied back): {:.0} MiB, for a cache file of {:.0} MiB",
                mib(median(written)),
                mib(file)
            );
        }
        match (server_plain, server_lifeboat) {
            (Some(plain), Some(lifeboat)) => println!(
                "The upstream's CPU meanwhile ({}): {:.2} s for the plain client, {:.2} s for Lifeboat",
                if split {
                    "the upstream on CPU 0, Lifeboat and the plain client on CPU 1".to_string()
                } else {
                    format!("{cores} cores shared by all")
                },
                plain.as_secs_f64(),
                lifeboat.as_secs_f64()
            ),
            _ => println!(
                "The upstream's CPU: not measured, it runs elsewhere (Lifeboat and the plain client have this machine's {cores} cores)"
            ),
        }
        let spread = |pick: fn(f64, f64) -> f64| ratios.iter().copied().reduce(pick).unwrap_or_default();
        println!(
            "Ratio, sync / plain download of the same round (target <= 1.15): {:>5.2} (rounds from {:.2} to {:.2})",
            median(ratios.iter().copied()),
            spread(f64::min),
            spread(f64::max)
        );
        println!(
            "Incremental sync after {changed} changes: {:.2} s ({} resources fetched in {} requests)",
            incremental.elapsed.as_secs_f64(),
            incremental.fetched,
            incremental.requests
        );
        Ok(())
    })
}
