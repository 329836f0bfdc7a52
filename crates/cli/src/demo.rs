//! `lifeboat demo`: the outage story against a local synthetic practice (the Medplum-based
//! test upstream loaded with a generated practice for today). With a display, it opens the
//! desktop app against it; without one, it plays the story here, step by step: sync, the
//! upstream fails, offline booking, the upstream returns, reconciliation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lifeboat_access::Role;
use lifeboat_app::desk::SlotSearch;
use lifeboat_app::{AppError, Config, Desk};
use lifeboat_cli::test_upstream::{TestUpstream, repo_root};
use lifeboat_engine::booking::BookRequest;
use lifeboat_engine::reconcile::{Choice, Decision};
use lifeboat_fixtures::{PracticeSpec, write_ndjson};
use lifeboat_model::time::format_uk;
use lifeboat_model::{Clock, SystemClock};
use serde_json::json;

use crate::print;

const MANAGER: (&str, &str) = ("manager", "lifeboat-demo-manager");
const RECEPTION: (&str, &str) = ("reception", "lifeboat-demo-reception");
const CLINICIAN: (&str, &str) = ("drhart", "lifeboat-demo-clinician");

fn step(n: u32, title: &str) {
    println!("\n\x1b[1m== {n}. {title}\x1b[0m");
}

fn err(e: impl std::fmt::Display) -> AppError {
    AppError::new("demo", e.to_string())
}

pub fn run(headless: bool, patients: usize) -> Result<(), AppError> {
    let work = std::env::temp_dir().join(format!("lifeboat-demo-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(err)?;
    let practice = work.join("practice");
    let spec = PracticeSpec {
        patients,
        anchor: SystemClock.today_in_london(),
        ..PracticeSpec::default()
    };
    let manifest = write_ndjson(&spec, &practice).map_err(err)?;
    println!(
        "Synthetic practice for today: {} ({} patients, all invented).",
        manifest.summary(),
        patients
    );
    let upstream = TestUpstream::start(&practice).map_err(err)?;
    println!(
        "Test upstream (Medplum, in memory) at {}",
        upstream.base_url
    );

    // Quick health checks so the story moves along: offline within ~3 s of the failure.
    let config_path = work.join("lifeboat.toml");
    std::fs::write(
        &config_path,
        format!(
            "cache = {:?}\n[upstream]\nbase_url = {:?}\n[health]\nprobe_every_seconds = 1\nprobe_timeout_seconds = 1\nmin_dwell_seconds = 3\n",
            work.join("lifeboat.db"),
            upstream.base_url
        ),
    )
    .map_err(err)?;
    let config = Config::load(Some(&config_path))?;
    let desk = Arc::new(Desk::open(config, Arc::new(SystemClock)));
    desk.setup(MANAGER.0, "Pat Manager", MANAGER.1)?;
    desk.add_account(
        RECEPTION.0,
        "Robin Reception",
        Role::Receptionist,
        RECEPTION.1,
    )?;
    desk.add_account(CLINICIAN.0, "Dr Amelia Hart", Role::Clinician, CLINICIAN.1)?;
    let display = std::env::var_os("DISPLAY")
        .or_else(|| std::env::var_os("WAYLAND_DISPLAY"))
        .is_some();
    let rt = crate::runtime()?;
    if display && !headless {
        // The window opens on a cache that already holds the practice.
        crate::progress::print_summary(&rt.block_on(desk.sync_now())?);
        return open_window(&desk, &upstream, &config_path);
    }
    rt.block_on(story(desk, &upstream))?;
    println!(
        "\nThis was the headless story. To use the desktop app, run `bash scripts/demo.sh` on a machine with a display."
    );
    println!("(Demo files: {})", work.display());
    Ok(())
}

/// Opens the desktop app against the demo practice and waits for it to close.
fn open_window(
    desk: &Desk,
    upstream: &TestUpstream,
    config: &std::path::Path,
) -> Result<(), AppError> {
    let _ = desk.logout();
    let app = std::env::var_os("LIFEBOAT_DESKTOP")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| repo_root().join("target"), PathBuf::from)
                .join("debug/lifeboat-desktop")
        });
    println!("Opening the desktop app. Log in as:");
    for (u, p, r) in [
        (MANAGER.0, MANAGER.1, "manager"),
        (RECEPTION.0, RECEPTION.1, "receptionist"),
        (CLINICIAN.0, CLINICIAN.1, "clinician"),
    ] {
        println!("  {u:<10} password {p:<26} ({r})");
    }
    println!(
        "Pull the plug on the upstream:   curl -X POST '{}/$fault' -d '{{\"mode\":\"error\",\"status\":503}}'",
        upstream.root
    );
    println!(
        "Bring it back:                   curl -X POST '{}/$fault' -d '{{\"mode\":\"none\"}}'",
        upstream.root
    );
    let status = std::process::Command::new(&app)
        .env("LIFEBOAT_CONFIG", config)
        .status()
        .map_err(|e| {
            err(format!(
                "cannot start {}: {e} (build it with scripts/demo.sh)",
                app.display()
            ))
        })?;
    println!("The desktop app closed ({status}).");
    Ok(())
}

async fn story(desk: Arc<Desk>, upstream: &TestUpstream) -> Result<(), AppError> {
    step(
        1,
        "While the clinical system is up, Lifeboat keeps a copy (manager runs the first sync)",
    );
    desk.login(MANAGER.0, MANAGER.1)?;
    let summary = desk.sync_now().await?;
    crate::progress::print_summary(&summary);
    let pack = desk.prepare_downtime_pack()?;
    println!(
        "The downtime pack (day list and clinical summaries) for {} is ready in the cache \
         (`lifeboat packs`); the desk prepares it each evening.",
        lifeboat_model::time::format_uk_date(pack.for_date)
    );
    print::banner(&desk.status()?);
    let health = tokio::spawn(lifeboat_app::background::watch_health(desk.clone()));

    step(
        2,
        "The clinical system goes down (every request now fails with 503)",
    );
    upstream
        .fault(json!({"mode": "error", "status": 503}))
        .await
        .map_err(err)?;
    let failed_at = Instant::now();
    let noticed = wait_for_mode(&desk, "offline", Duration::from_secs(30)).await?;
    println!(
        "Lifeboat noticed the outage after {:.1} s and switched to OFFLINE by itself.",
        failed_at.elapsed().as_secs_f64()
    );
    print::banner(&noticed);

    step(
        3,
        "Reception searches for a patient and books into a cached slot, offline",
    );
    desk.login(RECEPTION.0, RECEPTION.1)?;
    let found = desk.search_patients("smith 1958", 5)?;
    print::matches(&found);
    let patient = found
        .first()
        .ok_or_else(|| err("the demo practice has John Smith"))?;
    let slots = desk.free_slots(&SlotSearch {
        limit: Some(3),
        ..SlotSearch::default()
    })?;
    print::slots(&slots);
    let first = slots
        .first()
        .ok_or_else(|| err("no free slot in the next two weeks"))?;
    let booked = desk.book(&BookRequest {
        slot_id: first.id.clone(),
        patient_id: patient.id.clone(),
        description: Some("Blood pressure review".into()),
        comment: None,
    })?;
    print::confirmation(&booked);
    let second = slots.get(1).ok_or_else(|| err("a second free slot"))?;
    let another = &found.get(1).unwrap_or(patient).id;
    print::confirmation(&desk.book(&BookRequest {
        slot_id: second.id.clone(),
        patient_id: another.clone(),
        description: Some("Medication review".into()),
        comment: None,
    })?);
    match desk.book(&BookRequest {
        slot_id: first.id.clone(),
        patient_id: another.clone(),
        description: None,
        comment: None,
    }) {
        Err(e) => println!("Booking the same slot twice is refused: {e}"),
        Ok(_) => return Err(err("a slot was booked twice")),
    }

    step(4, "A GP reads a cached summary and writes an offline note");
    desk.login(CLINICIAN.0, CLINICIAN.1)?;
    let s = desk.patient_summary(&patient.id)?;
    println!(
        "{} {}: {} allergies, {} medications, {} problems ({}).",
        s.patient.given,
        s.patient.family,
        s.allergies.len(),
        s.medications.len(),
        s.problems.len(),
        s.data_as_of
    );
    desk.write_note(
        &patient.id,
        None,
        "Seen during the outage: BP 148/92. Repeat in 2 weeks.",
    )?;
    println!("Note saved offline: it will be on the back-entry worklist.");

    step(5, "The clinical system comes back");
    upstream.heal().await.map_err(err)?;
    let back = wait_for_mode(&desk, "recovering", Duration::from_secs(30)).await?;
    print::banner(&back);
    println!("Lifeboat asks the practice manager to reconcile.");
    health.abort();

    step(
        6,
        "Before the manager reconciles, a colleague books one of those slots directly in the clinical system",
    );
    let (code, _) = upstream
        .fhir(reqwest::Method::POST, "Appointment", Some(json!({
            "resourceType": "Appointment", "status": "booked",
            "slot": [{"reference": format!("Slot/{}", second.id)}],
            "start": second.start, "end": second.end,
            "participant": [{"actor": {"reference": format!("Patient/{}", patient.id)}, "status": "accepted"}]
        })))
        .await
        .map_err(err)?;
    println!(
        "(Booked directly upstream: HTTP {code}. Lifeboat's offline booking of that slot will be a conflict.)"
    );

    step(
        7,
        "The practice manager reconciles: a dry run, then for real",
    );
    desk.login(MANAGER.0, MANAGER.1)?;
    print::reconcile(&desk.reconcile(true).await?);
    let report = desk.reconcile(false).await?;
    print::reconcile(&report);

    step(8, "Conflicts are shown side by side, and decided");
    let conflicts = desk.conflicts().await?;
    print::conflicts(&conflicts);
    for c in &conflicts {
        let decision = match c.nearest_slots.first() {
            Some(slot) if c.choices.contains(&Choice::Rebook) => Decision {
                choice: Choice::Rebook,
                slot_id: Some(slot.id.clone()),
                reason: Some("nearest free slot".into()),
            },
            _ => Decision {
                choice: Choice::Manual,
                slot_id: None,
                reason: Some("ring the patient".into()),
            },
        };
        let entry = desk.resolve_conflict(&c.journal_id, &decision).await?;
        println!(
            "Decided {:?}: the change is now {}.",
            decision.choice, entry.state
        );
    }

    step(
        9,
        "Nothing written offline is forgotten: the back-entry worklist",
    );
    let items = desk.worklist(false)?;
    print::worklist(&items);
    if let Some(item) = items.first() {
        print::worklist(&desk.complete_work_item(item.id)?);
    }

    step(
        10,
        "The upstream now has the offline bookings, exactly once",
    );
    let (_, bundle) = upstream
        .fhir(
            reqwest::Method::GET,
            "Appointment?identifier=urn:lifeboat:offline-change|&_count=50",
            None,
        )
        .await
        .map_err(err)?;
    let mut with_marker = 0;
    for e in bundle["entry"].as_array().into_iter().flatten() {
        let a = &e["resource"];
        if let Some(start) = a["start"].as_str().and_then(|s| s.parse().ok()) {
            with_marker += 1;
            println!(
                "  Appointment/{} at {} ({})",
                a["id"].as_str().unwrap_or("?"),
                format_uk(start),
                a["status"].as_str().unwrap_or("?")
            );
        }
    }
    println!("{with_marker} appointment(s) upstream carry a Lifeboat offline-change identifier.");
    print::banner(&desk.status()?);
    let audit = desk.audit_verify()?;
    println!(
        "Audit log: {} entries, {}.",
        audit.entries,
        if audit.ok { "intact" } else { "BROKEN" }
    );
    Ok(())
}

/// Waits until the health monitor has moved the mode to `mode`.
async fn wait_for_mode(
    desk: &Desk,
    mode: &str,
    limit: Duration,
) -> Result<lifeboat_app::desk::StatusView, AppError> {
    let started = Instant::now();
    loop {
        let s = desk.status()?;
        if s.mode.as_str() == mode {
            return Ok(s);
        }
        if started.elapsed() > limit {
            return Err(err(format!(
                "the mode did not become {mode} within {} s",
                limit.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
