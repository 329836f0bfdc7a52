//! `lifeboat`: the command-line door over the core, for operators, tests and benchmarks.
//! Each subcommand is a few lines over the core; nothing here decides clinical behaviour.

mod bench;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use clap::{Parser, Subcommand};
use lifeboat_app::{App, AppError, Config};
use lifeboat_model::time::format_uk_date;
use lifeboat_model::{NhsNumber, SystemClock};
use lifeboat_store::CacheKey;

#[derive(Parser)]
#[command(
    name = "lifeboat",
    version,
    about = "Lifeboat: keeps a GP practice working when its clinical system is down"
)]
struct Cli {
    /// The config file (default: lifeboat.toml in this folder, if present).
    #[arg(long, global = true, env = "LIFEBOAT_CONFIG")]
    config: Option<PathBuf>,
    /// The cache file (overrides the config).
    #[arg(long, global = true, env = "LIFEBOAT_DB")]
    db: Option<PathBuf>,
    /// The upstream FHIR base URL (overrides the config).
    #[arg(long, global = true, env = "LIFEBOAT_UPSTREAM")]
    upstream: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load a fixture practice (a folder of FHIR R4 NDJSON files) into the cache.
    Import {
        /// Folder with <ResourceType>.ndjson files, e.g. fixtures/practice-200
        dir: PathBuf,
    },
    /// Search cached patients: NHS number, name prefixes, date of birth, birth year, or a mix.
    Search {
        query: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Copy the practice's data from the upstream: a first full sync (resuming where an
    /// interrupted one stopped), then only what changed.
    Sync {
        /// Keep running, syncing every `interval_minutes` (config, default 5).
        #[arg(long)]
        watch: bool,
    },
    /// What is cached, how old it is, and what went wrong.
    Status,
    /// Benchmarks that print figures (never pass/fail).
    Bench {
        #[command(subcommand)]
        which: bench::Bench,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lifeboat: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), AppError> {
    if let Command::Bench { which } = cli.command {
        return bench::run(which).map_err(|e| AppError::new("bench", e));
    }
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(db) = cli.db {
        config.cache = db;
    }
    if let Some(url) = cli.upstream {
        config.upstream.base_url = Some(url);
    }
    let app = App::new(config, cache_key()?, Arc::new(SystemClock));
    match cli.command {
        Command::Import { dir } => println!("{}", app.import(&dir)?),
        Command::Search { query, limit } => print_matches(&app.search_patients(&query, limit)?),
        Command::Sync { watch } => runtime()?.block_on(progress::sync(&app, watch))?,
        Command::Status => progress::print_status(&app.status()?),
        Command::Bench { .. } => unreachable!("handled above"),
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, AppError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| AppError::new("runtime", format!("cannot start: {e}")))
}

/// The cache key. Until staff accounts unlock the cache (key slots), it is given in the
/// environment as 64 hex digits, never on the command line (visible to other users).
fn cache_key() -> Result<CacheKey, AppError> {
    let hex = std::env::var("LIFEBOAT_CACHE_KEY").map_err(|_| {
        AppError::new(
            "no_key",
            "set LIFEBOAT_CACHE_KEY to the cache key (64 hex digits)",
        )
    })?;
    parse_key(&hex)
        .ok_or_else(|| AppError::new("bad_key", "LIFEBOAT_CACHE_KEY must be 64 hex digits"))
}

fn parse_key(hex: &str) -> Option<CacheKey> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(CacheKey::from_bytes(bytes))
}

fn print_matches(found: &[lifeboat_store::PatientMatch]) {
    if found.is_empty() {
        println!("No patients found.");
        return;
    }
    println!(
        "{:<32} {:<12} {:>4}  {:<12}  {:<40} Registered GP",
        "Name", "Born", "Age", "NHS number", "Address"
    );
    for m in found {
        let name = format!(
            "{}, {}{}{}",
            m.family.to_uppercase(),
            m.given,
            m.title
                .as_deref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default(),
            if m.deceased { " [DECEASED]" } else { "" }
        );
        let nhs = m
            .nhs_number
            .as_deref()
            .and_then(|n| NhsNumber::parse(n).ok())
            .map(|n| n.to_string())
            .unwrap_or_else(|| "-".into());
        let address = [m.address_line.as_deref(), m.postcode.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "{:<32} {:<12} {:>4}  {:<12}  {:<40} {}",
            name,
            m.birth_date
                .map(format_uk_date)
                .unwrap_or_else(|| "-".into()),
            m.age.map(|a| a.to_string()).unwrap_or_else(|| "-".into()),
            nhs,
            address,
            m.gp_name.as_deref().unwrap_or("-")
        );
    }
}
