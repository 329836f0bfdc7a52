//! `lifeboat`: the command-line door over the core, for practice managers, tests, the
//! headless demo and benchmarks. Each subcommand is a few lines over `lifeboat_app::Desk`;
//! nothing here decides clinical behaviour.

mod bench;
mod demo;
mod print;
mod progress;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use lifeboat_access::Role;
use lifeboat_app::{AppError, Config, Desk};
use lifeboat_engine::booking::BookRequest;
use lifeboat_engine::reconcile::{Choice, Decision};
use lifeboat_model::time::format_uk_date;
use lifeboat_model::{Clock, SystemClock};

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
    /// Your Lifeboat username. The password is read from LIFEBOAT_PASSWORD, or asked for.
    #[arg(long, global = true, env = "LIFEBOAT_USER")]
    user: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum PacksAction {
    /// Prepare the next working day's pack now (clinicians and managers).
    Prepare,
    /// Save one kept document (its number from the list) to a PDF file.
    Save {
        id: i64,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum Command {
    /// First run: create the encrypted cache and its first manager (--user).
    Setup {
        /// The manager's name as staff see it.
        #[arg(long)]
        name: String,
    },
    /// Load a practice from a folder of FHIR R4 NDJSON files (e.g. fixtures/practice-200).
    Import { dir: PathBuf },
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
    /// Show the mode, or declare or end an outage.
    Mode {
        #[arg(value_parser = ["show", "declare", "end"], default_value = "show")]
        action: String,
    },
    /// The appointment book for a day (default today).
    Day {
        #[arg(long)]
        date: Option<NaiveDate>,
        #[arg(long)]
        practitioner: Option<String>,
    },
    /// Free slots, soonest first.
    Slots {
        #[arg(long)]
        practitioner: Option<String>,
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Book a patient into a free slot (offline).
    Book {
        #[arg(long)]
        slot: String,
        #[arg(long)]
        patient: String,
        /// Reason for the appointment (at most 100 characters).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Cancel an appointment (offline), with a reason.
    Cancel {
        #[arg(long)]
        appointment: String,
        #[arg(long)]
        reason: String,
    },
    /// Write an offline clinical note for a patient.
    Note {
        #[arg(long)]
        patient: String,
        #[arg(long)]
        text: String,
    },
    /// Offline changes held locally.
    Journal,
    /// Replay offline changes upstream (--dry-run: say what would happen, write nothing).
    Reconcile {
        #[arg(long)]
        dry_run: bool,
    },
    /// Conflicts waiting for a decision, both sides.
    Conflicts,
    /// Decide a conflict: keep_upstream, rebook, retry, cancel_anyway or manual.
    Resolve {
        journal_id: String,
        #[arg(value_parser = ["keep_upstream", "rebook", "retry", "cancel_anyway", "manual"])]
        choice: String,
        #[arg(long)]
        slot: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// The back-entry worklist; `--done ID` ticks an item off.
    Worklist {
        #[arg(long)]
        done: Option<i64>,
        #[arg(long)]
        all: bool,
    },
    /// Check the audit log's hash chain, or export it as CSV.
    Audit {
        #[arg(value_parser = ["verify", "export"])]
        action: String,
        /// Export one patient's entries only.
        #[arg(long)]
        patient: Option<String>,
    },
    /// Add a staff account (its password from LIFEBOAT_NEW_PASSWORD, or asked for).
    AddAccount {
        #[arg(long)]
        username: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["receptionist", "clinician", "manager"])]
        role: String,
    },
    /// Export (CSV) the patients booked in a period, with phone numbers, to ring them.
    Contacts {
        #[arg(long)]
        from: NaiveDate,
        #[arg(long)]
        to: NaiveDate,
    },
    /// Print the day list (anyone) or the clinical summary pack (clinicians) to a PDF file.
    Print {
        #[arg(value_parser = ["day-list", "pack"])]
        what: String,
        #[arg(long)]
        date: Option<NaiveDate>,
        #[arg(long)]
        practitioner: Option<String>,
        #[arg(long)]
        out: PathBuf,
    },
    /// The downtime packs prepared ahead of an outage: list them, prepare one now, or save a
    /// kept document to a PDF file.
    Packs {
        #[command(subcommand)]
        action: Option<PacksAction>,
    },
    /// Start or end a drill (practice on a copy that never reaches the upstream).
    Drill {
        #[arg(value_parser = ["start", "end"])]
        action: String,
    },
    /// The outage story against a local synthetic practice: opens the desktop app where
    /// there is a display, or plays it here step by step where there is none.
    Demo {
        /// Play the story in the terminal even if a display is available.
        #[arg(long)]
        headless: bool,
        /// Patients in the synthetic practice.
        #[arg(long, default_value_t = 200)]
        patients: usize,
    },
    /// Benchmarks that print figures (never pass/fail).
    Bench {
        #[command(subcommand)]
        which: bench::Bench,
    },
}

fn write_pdf(out: &Path, pdf: &[u8]) -> Result<(), AppError> {
    std::fs::write(out, pdf)
        .map_err(|e| AppError::new("io", format!("cannot write {}: {e}", out.display())))?;
    println!("Written to {}.", out.display());
    Ok(())
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

fn runtime() -> Result<tokio::runtime::Runtime, AppError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| AppError::new("runtime", format!("cannot start: {e}")))
}

/// A password from `env`, else asked for on the terminal.
fn password(env: &str, prompt: &str) -> Result<String, AppError> {
    match std::env::var(env) {
        Ok(p) => Ok(p),
        Err(_) => rpassword::prompt_password(prompt).map_err(|_| {
            AppError::new(
                "no_password",
                format!("set {env} or run in a terminal to be asked"),
            )
        }),
    }
}

fn run(cli: Cli) -> Result<(), AppError> {
    match cli.command {
        Command::Bench { which } => {
            return bench::run(which).map_err(|e| AppError::new("bench", e));
        }
        Command::Demo { headless, patients } => return demo::run(headless, patients),
        _ => {}
    }
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(db) = cli.db {
        config.cache = db;
    }
    if let Some(url) = cli.upstream {
        config.upstream.base_url = Some(url);
    }
    let desk = Desk::open(config, Arc::new(SystemClock));
    let user = cli.user.ok_or_else(|| {
        AppError::new(
            "no_user",
            "give your username with --user (or LIFEBOAT_USER)",
        )
    })?;
    if let Command::Setup { name } = &cli.command {
        let pw = password(
            "LIFEBOAT_PASSWORD",
            "Choose a password (at least 10 characters): ",
        )?;
        let info = desk.setup(&user, name, &pw)?;
        println!(
            "Lifeboat is set up. {} ({}) is the first manager.",
            info.display_name, info.username
        );
        return Ok(());
    }
    desk.login(&user, &password("LIFEBOAT_PASSWORD", "Password: ")?)?;
    let result = dispatch(&desk, cli.command);
    let _ = desk.logout();
    result
}

fn dispatch(desk: &Desk, command: Command) -> Result<(), AppError> {
    match command {
        Command::Import { dir } => println!("{}", desk.import(&dir)?),
        Command::Search { query, limit } => print::matches(&desk.search_patients(&query, limit)?),
        Command::Sync { watch } => runtime()?.block_on(progress::sync(desk, watch))?,
        Command::Status => print::cache_status(&desk.cache_status()?),
        Command::Mode { action } => {
            let status = match action.as_str() {
                "declare" => desk.declare_outage()?,
                "end" => desk.end_outage()?,
                _ => desk.status()?,
            };
            print::banner(&status);
        }
        Command::Day { date, practitioner } => {
            let date = date.unwrap_or_else(|| SystemClock.today_in_london());
            print::day_book(&desk.day_book(date, practitioner.as_deref())?);
        }
        Command::Slots {
            practitioner,
            limit,
        } => print::slots(&desk.free_slots(&lifeboat_app::desk::SlotSearch {
            practitioner_id: practitioner,
            limit: Some(limit),
            ..Default::default()
        })?),
        Command::Book {
            slot,
            patient,
            reason,
        } => print::confirmation(&desk.book(&BookRequest {
            slot_id: slot,
            patient_id: patient,
            description: reason,
            comment: None,
        })?),
        Command::Cancel {
            appointment,
            reason,
        } => print::confirmation(&desk.cancel_appointment(&appointment, &reason)?),
        Command::Note { patient, text } => {
            let note = desk.write_note(&patient, None, &text)?;
            println!(
                "Note saved offline ({}); it goes to the back-entry worklist at reconciliation.",
                note.journal_id
            );
        }
        Command::Journal => print::journal(&desk.journal()?),
        Command::Reconcile { dry_run } => {
            print::reconcile(&runtime()?.block_on(desk.reconcile(dry_run))?)
        }
        Command::Conflicts => print::conflicts(&runtime()?.block_on(desk.conflicts())?),
        Command::Resolve {
            journal_id,
            choice,
            slot,
            reason,
        } => {
            let choice: Choice = serde_json::from_value(serde_json::Value::String(choice))
                .map_err(|_| AppError::new("validation", "unknown choice"))?;
            let entry = runtime()?.block_on(desk.resolve_conflict(
                &journal_id,
                &Decision {
                    choice,
                    slot_id: slot,
                    reason,
                },
            ))?;
            println!("Decided: the change is now {}.", entry.state);
        }
        Command::Worklist { done, all } => match done {
            Some(id) => print::worklist(&desk.complete_work_item(id)?),
            None => print::worklist(&desk.worklist(all)?),
        },
        Command::Audit { action, patient } => match action.as_str() {
            "verify" => {
                let check = desk.audit_verify()?;
                match check.problem {
                    None => println!("The audit log is intact ({} entries).", check.entries),
                    Some(p) => return Err(AppError::new("audit_broken", p)),
                }
            }
            _ => print!(
                "{}",
                desk.audit_export(&lifeboat_store::AuditFilter {
                    subject: patient.map(|p| format!("Patient/{p}")),
                    ..Default::default()
                })?
            ),
        },
        Command::AddAccount {
            username,
            name,
            role,
        } => {
            let role =
                Role::parse(&role).ok_or_else(|| AppError::new("validation", "unknown role"))?;
            let pw = password("LIFEBOAT_NEW_PASSWORD", "Password for the new account: ")?;
            let account = desk.add_account(&username, &name, role, &pw)?;
            println!(
                "Added {} ({}), {}.",
                account.display_name, account.username, account.role
            );
        }
        Command::Print {
            what,
            date,
            practitioner,
            out,
        } => {
            let date = date.unwrap_or_else(|| SystemClock.today_in_london());
            let pdf = match what.as_str() {
                "pack" => desk.summary_pack_pdf(date, practitioner.as_deref())?,
                _ => desk.day_list_pdf(date, practitioner.as_deref())?,
            };
            write_pdf(&out, &pdf)?;
        }
        Command::Packs { action } => match action {
            None => print::packs(&desk.saved_packs()?),
            Some(PacksAction::Prepare) => {
                let pack = desk.prepare_downtime_pack()?;
                println!(
                    "Prepared the downtime pack for {} ({}){}.",
                    format_uk_date(pack.for_date),
                    pack.data_as_of,
                    pack.written_to
                        .map(|d| format!(", also written to {}", d.display()))
                        .unwrap_or_default()
                );
            }
            Some(PacksAction::Save { id, out }) => write_pdf(&out, &desk.saved_pack_pdf(id)?)?,
        },
        Command::Contacts { from, to } => print!("{}", desk.contact_list(from, to)?),
        Command::Drill { action } => match action.as_str() {
            "start" => print::banner(&desk.start_drill()?),
            _ => {
                let summary = desk.end_drill()?;
                println!(
                    "Drill ended: {} practice changes discarded {:?}.",
                    summary.changes, summary.by_kind
                );
            }
        },
        Command::Setup { .. } | Command::Demo { .. } | Command::Bench { .. } => {
            unreachable!("handled before login")
        }
    }
    Ok(())
}
