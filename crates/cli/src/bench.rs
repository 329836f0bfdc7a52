//! Benchmarks that print figures for the closing notes and for tuning. They never pass or
//! fail: targets are read by people, not asserted in timed tests.

use std::time::{Duration, Instant};

use clap::Subcommand;
use lifeboat_fixtures::{PracticeSpec, generate};
use lifeboat_model::fhir::Indexed;
use lifeboat_model::{CachedResource, Clock, SystemClock};
use lifeboat_store::{CacheKey, Store};

mod reconcile;
mod sync;

/// The middle of `values` (the upper middle of an even count); the default of none.
fn median<T: PartialOrd + Copy + Default>(values: impl IntoIterator<Item = T>) -> T {
    let mut values: Vec<T> = values.into_iter().collect();
    values.sort_unstable_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values.get(values.len() / 2).copied().unwrap_or_default()
}

#[derive(Subcommand)]
pub enum Bench {
    /// Initial sync of a generated practice vs a plain download of the same pages, and an
    /// incremental sync after 100 changes.
    Sync {
        #[arg(long, default_value_t = 10_000)]
        patients: usize,
        #[arg(long, default_value_t = 500)]
        page_size: u32,
        /// Let the upstream and Lifeboat share every core (by default each gets its own,
        /// as on two machines, where there are two or more).
        #[arg(long)]
        shared_cores: bool,
        /// Measure against a test upstream already running elsewhere, e.g. on a second
        /// machine (`http://10.0.0.2:8080`), loaded with the practice
        /// `lifeboat-fixtures --patients N --anchor today` wrote; then nothing is started
        /// or pinned here, and `--patients` is not used. Only a test upstream is accepted:
        /// the bench changes 100 patients in it.
        #[arg(long, value_name = "ROOT")]
        test_upstream: Option<String>,
    },
    /// Patient search latency over a generated practice, and the cache file's size.
    Search {
        #[arg(long, default_value_t = 100_000)]
        patients: usize,
        /// Searches of each kind to time.
        #[arg(long, default_value_t = 400)]
        per_kind: usize,
    },
    /// Reconciling N offline bookings vs the upstream's own time for the same N writes.
    Reconcile {
        #[arg(long, default_value_t = 1_000)]
        entries: usize,
        /// Patients in the generated practice (it must have `entries` free slots ahead).
        #[arg(long, default_value_t = 2_000)]
        patients: usize,
    },
}

pub fn run(which: Bench) -> Result<(), String> {
    match which {
        Bench::Search { patients, per_kind } => search(patients, per_kind),
        Bench::Reconcile { entries, patients } => reconcile::run(entries, patients),
        Bench::Sync {
            patients,
            page_size,
            shared_cores,
            test_upstream,
        } => sync::run(patients, page_size, shared_cores, test_upstream),
    }
}

/// What a receptionist might type to find one patient.
struct Target {
    nhs: String,
    family: String,
    given: String,
    birth: String,
}

fn search(patients: usize, per_kind: usize) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("lifeboat-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("bench.db");
    let result = search_in(&path, patients, per_kind);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn search_in(path: &std::path::Path, patients: usize, per_kind: usize) -> Result<(), String> {
    let err = |e: lifeboat_store::StoreError| e.to_string();
    let mut store = Store::open(path, &CacheKey::from_bytes([42; 32])).map_err(err)?;
    let spec = PracticeSpec {
        patients,
        ..PracticeSpec::default()
    };
    println!(
        "Generating and caching a practice of {patients} patients (seed {})...",
        spec.seed
    );
    let started = Instant::now();
    let now = SystemClock.now();
    let mut batch: Vec<CachedResource> = Vec::new();
    let mut targets: Vec<Target> = Vec::new();
    let mut total = 0u64;
    let mut failure = None;
    let flush = |batch: &mut Vec<CachedResource>, store: &mut Store| -> Result<(), String> {
        let tx = store.transaction().map_err(err)?;
        for r in batch.drain(..) {
            tx.upsert_resource(&r, now).map_err(err)?;
        }
        tx.commit().map_err(err)
    };
    generate(&spec, &mut |_, json| {
        if failure.is_some() {
            return;
        }
        let r = match CachedResource::from_json(&json) {
            Ok(r) => r,
            Err(e) => {
                failure = Some(e.to_string());
                return;
            }
        };
        if let Indexed::Patient(p) = &r.indexed
            && total.is_multiple_of(7)
            && let (Some(nhs), Some(birth)) = (p.nhs_number, p.birth_date)
        {
            targets.push(Target {
                nhs: nhs.to_string(),
                family: p.family.clone(),
                given: p.given.clone(),
                birth: birth.format("%d/%m/%Y").to_string(),
            });
        }
        total += 1;
        batch.push(r);
        if batch.len() >= 5_000
            && let Err(e) = flush(&mut batch, &mut store)
        {
            failure = Some(e);
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    flush(&mut batch, &mut store)?;
    let load = started.elapsed();
    drop(store);
    let store = Store::open(path, &CacheKey::from_bytes([42; 32])).map_err(err)?;
    let size = file_size(path);
    println!(
        "Cached {total} resources in {:.1} s; cache file {:.1} MiB (with WAL: {:.1} MiB)",
        load.as_secs_f64(),
        size.0 as f64 / 1048576.0,
        (size.0 + size.1) as f64 / 1048576.0
    );

    let today = SystemClock.today_in_london();
    let step = (targets.len() / per_kind).max(1);
    let sample: Vec<&Target> = targets.iter().step_by(step).take(per_kind).collect();
    type QueryOf = fn(&Target) -> String;
    let kinds: [(&str, QueryOf); 6] = [
        ("NHS number", |t| t.nhs.clone()),
        ("surname, 3 letters", |t| t.family.chars().take(3).collect()),
        ("full surname", |t| t.family.clone()),
        ("surname + birth year", |t| {
            format!("{} {}", t.family, &t.birth[6..])
        }),
        ("date of birth", |t| t.birth.clone()),
        ("forename + surname prefixes", |t| {
            format!(
                "{} {}",
                t.given.chars().take(2).collect::<String>(),
                t.family.chars().take(4).collect::<String>()
            )
        }),
    ];
    println!(
        "\n{:<30} {:>8} {:>10} {:>10} {:>10} {:>9}",
        "search", "queries", "p50 ms", "p99 ms", "max ms", "avg hits"
    );
    let mut all = Vec::new();
    for (name, query) in kinds {
        let mut times = Vec::with_capacity(sample.len());
        let mut hits = 0usize;
        for t in &sample {
            let q = query(t);
            let t0 = Instant::now();
            let found = store
                .search_patients(&q, 20, today)
                .map_err(|e| e.to_string())?;
            times.push(t0.elapsed());
            hits += found.len();
        }
        report_row(name, &mut times, hits);
        all.extend(times);
    }
    report_row("all", &mut all, 0);
    Ok(())
}

fn report_row(name: &str, times: &mut [Duration], hits: usize) {
    times.sort();
    let pct = |p: f64| {
        let i = ((times.len() as f64 * p).ceil() as usize).saturating_sub(1);
        times.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let avg_hits = if times.is_empty() || hits == 0 {
        String::from("-")
    } else {
        format!("{:.1}", hits as f64 / times.len() as f64)
    };
    println!(
        "{name:<30} {:>8} {:>10.2} {:>10.2} {:>10.2} {avg_hits:>9}",
        times.len(),
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
}

fn file_size(path: &std::path::Path) -> (u64, u64) {
    let len = |p: std::path::PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let wal = path.with_extension("db-wal");
    (len(path.to_path_buf()), len(wal))
}
