//! The desk (the API both doors use) against the real test upstream: outage detection and
//! the modes, roles enforced in the core, drills, and logs free of patient data.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lifeboat_access::Role;
use lifeboat_app::config::{HealthSection, UpstreamSection};
use lifeboat_app::desk::SlotSearch;
use lifeboat_app::{Config, Desk};
use lifeboat_engine::Mode;
use lifeboat_engine::booking::BookRequest;
use lifeboat_model::{Clock, FixedClock, SystemClock};
use serde_json::json;
use support::*;

const RECEPTION: (&str, &str) = ("reception", "reception-password");
const CLINICIAN: (&str, &str) = ("clinician", "clinician-password");

/// Fast health checks: probe every 200 ms, each given 300 ms; three failures in a row.
fn fast_health() -> HealthSection {
    HealthSection {
        probe_every_seconds: 1,
        probe_timeout_seconds: 1,
        failures_to_go_offline: 3,
        successes_to_recover: 2,
        min_dwell_seconds: 2,
    }
}

struct Practice {
    up: TestUpstream,
    _fixtures: tempfile::TempDir,
    _dir: tempfile::TempDir,
    desk: Arc<Desk>,
}

/// Today's practice upstream, a cache set up with a manager, a receptionist and a
/// clinician, synced once; the manager is logged in.
async fn practice() -> Practice {
    practice_with(Arc::new(SystemClock), |_| {}).await
}

/// As `practice`, on the given clock and with the config adjusted.
async fn practice_with(clock: Arc<dyn Clock>, adjust: impl FnOnce(&mut Config)) -> Practice {
    let (up, fixtures) = todays_practice_upstream();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        cache: dir.path().join("cache.db"),
        upstream: UpstreamSection {
            base_url: Some(up.base_url.clone()),
            ..UpstreamSection::default()
        },
        health: fast_health(),
        ..Config::default()
    };
    adjust(&mut config);
    let desk = Arc::new(Desk::with_access_settings(config, clock, cheap_access()));
    desk.setup(MANAGER, "Test Manager", MANAGER_PASSWORD)
        .unwrap();
    desk.add_account(RECEPTION.0, "Reception", Role::Receptionist, RECEPTION.1)
        .unwrap();
    desk.add_account(CLINICIAN.0, "Dr Clinician", Role::Clinician, CLINICIAN.1)
        .unwrap();
    desk.sync_now().await.unwrap();
    Practice {
        up,
        _fixtures: fixtures,
        _dir: dir,
        desk,
    }
}

async fn wait_for(desk: &Desk, mode: Mode, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if desk.status().unwrap().mode == mode {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

fn book_first_free(desk: &Desk, patient_query: &str) -> lifeboat_engine::booking::Confirmation {
    let patient = desk.search_patients(patient_query, 1).unwrap().remove(0);
    let slot = desk.free_slots(&SlotSearch::default()).unwrap().remove(0);
    desk.book(&BookRequest {
        slot_id: slot.id,
        patient_id: patient.id,
        description: Some("Review".into()),
        comment: None,
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_noticed_within_the_bound_and_recovery_depends_on_the_journal() {
    let p = practice().await;
    let bound = p.desk.config().health_settings().worst_case_detection();
    let monitor = tokio::spawn(lifeboat_app::background::watch_health(p.desk.clone()));
    assert_eq!(p.desk.status().unwrap().mode, Mode::Online);

    // An outage with nothing done offline: back to Online when the upstream returns.
    p.up.fault(json!({"mode": "error", "status": 503}))
        .await
        .unwrap();
    let took = wait_for(&p.desk, Mode::Offline, bound + Duration::from_secs(3)).await;
    assert!(took.is_some(), "not offline within {bound:?} (+3 s grace)");
    p.up.heal().await.unwrap();
    assert!(
        wait_for(&p.desk, Mode::Online, Duration::from_secs(15))
            .await
            .is_some()
    );

    // An outage with a booking made offline: Recovering, asking for reconciliation.
    p.up.fault(json!({"mode": "hang"})).await.unwrap();
    assert!(
        wait_for(&p.desk, Mode::Offline, bound + Duration::from_secs(3))
            .await
            .is_some(),
        "a hanging upstream is an outage too"
    );
    p.desk.login(RECEPTION.0, RECEPTION.1).unwrap();
    book_first_free(&p.desk, "smith");
    p.up.heal().await.unwrap();
    assert!(
        wait_for(&p.desk, Mode::Recovering, Duration::from_secs(15))
            .await
            .is_some()
    );
    let status = p.desk.status().unwrap();
    assert_eq!(status.unsettled_changes, 1);
    monitor.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_upstream_moves_the_mode_a_bounded_number_of_times() {
    let p = practice().await;
    let mut events = p.desk.subscribe();
    let monitor = tokio::spawn(lifeboat_app::background::watch_health(p.desk.clone()));
    // Down for 1.5 s, up for 1.5 s, for 15 s.
    let flapping = Duration::from_secs(15);
    let started = Instant::now();
    let mut down = true;
    while started.elapsed() < flapping {
        let setting = if down {
            json!({"mode": "error", "status": 503})
        } else {
            json!({"mode": "none"})
        };
        p.up.fault(setting).await.unwrap();
        down = !down;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    monitor.abort();
    p.up.heal().await.unwrap();
    let mut changes = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let lifeboat_app::desk::DeskEvent::Status(s) = e
            && changes.last() != Some(&s.mode)
        {
            changes.push(s.mode);
        }
    }
    // Three failures in a row and a 2 s dwell: far fewer changes than the 10 flips.
    let settings = p.desk.config().health_settings();
    let most = flapping.as_secs() / settings.min_dwell.as_secs() + 1;
    assert!(
        changes.len() as u64 <= most,
        "{} mode changes: {changes:?}",
        changes.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_enforced_in_the_core_not_only_on_screen() {
    let p = practice().await;
    let patient = p.desk.search_patients("smith", 1).unwrap().remove(0);
    p.desk.declare_outage().unwrap();

    p.desk.login(RECEPTION.0, RECEPTION.1).unwrap();
    assert!(
        p.desk.patient_overview(&patient.id).is_ok(),
        "reception sees demographics and alerts"
    );
    let err = p.desk.patient_summary(&patient.id).unwrap_err();
    assert_eq!(err.code, "not_permitted", "{err:?}");
    assert_eq!(
        p.desk.write_note(&patient.id, None, "x").unwrap_err().code,
        "not_permitted"
    );
    assert_eq!(p.desk.end_outage().unwrap_err().code, "not_permitted");
    assert_eq!(
        p.desk.reconcile(true).await.unwrap_err().code,
        "not_permitted"
    );
    assert_eq!(p.desk.accounts().unwrap_err().code, "not_permitted");
    book_first_free(&p.desk, "smith");

    p.desk.login(CLINICIAN.0, CLINICIAN.1).unwrap();
    let summary = p.desk.patient_summary(&patient.id).unwrap();
    assert!(!summary.data_as_of.is_empty());
    p.desk
        .write_note(&patient.id, None, "Seen offline")
        .unwrap();
    assert_eq!(p.desk.sync_now().await.unwrap_err().code, "not_permitted");
    assert_eq!(p.desk.audit_verify().unwrap_err().code, "not_permitted");

    // A locked session does nothing until unlocked with the password.
    p.desk.lock().unwrap();
    assert_eq!(
        p.desk.search_patients("smith", 1).unwrap_err().code,
        "locked"
    );
    assert!(p.desk.unlock("wrong password!").is_err());
    p.desk.unlock(CLINICIAN.1).unwrap();
    assert!(p.desk.search_patients("smith", 1).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_changes_are_refused_while_online() {
    let p = practice().await;
    p.desk.login(RECEPTION.0, RECEPTION.1).unwrap();
    let patient = p.desk.search_patients("smith", 1).unwrap().remove(0);
    let slot = p.desk.free_slots(&SlotSearch::default()).unwrap().remove(0);
    let err = p
        .desk
        .book(&BookRequest {
            slot_id: slot.id,
            patient_id: patient.id,
            description: None,
            comment: None,
        })
        .unwrap_err();
    assert_eq!(err.code, "wrong_mode");
    assert!(err.message.contains("online"), "{}", err.message);
    assert!(p.desk.journal().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_never_reaches_the_upstream_and_leaves_the_real_cache_alone() {
    let p = practice().await;
    let drill = p.desk.start_drill().unwrap();
    assert!(drill.drill);
    assert_eq!(drill.mode, Mode::Offline);
    p.desk.login(RECEPTION.0, RECEPTION.1).unwrap();
    book_first_free(&p.desk, "smith");
    assert_eq!(p.desk.journal().unwrap().len(), 1, "the drill's journal");

    p.desk.login(MANAGER, MANAGER_PASSWORD).unwrap();
    p.up.reset_stats().await.unwrap();
    let err = p.desk.reconcile(false).await.unwrap_err();
    assert_eq!(err.code, "drill", "{err:?}");
    assert_eq!(p.desk.sync_now().await.unwrap_err().code, "drill");
    assert_eq!(
        p.up.stats().await.unwrap()["requests"],
        0,
        "nothing reached the upstream"
    );

    let summary = p.desk.end_drill().unwrap();
    assert_eq!(summary.changes, 1);
    assert!(
        p.desk.journal().unwrap().is_empty(),
        "the real cache never saw the drill's change"
    );
    assert_eq!(p.desk.status().unwrap().mode, Mode::Online);
    assert!(!p.desk.status().unwrap().drill);
}

#[test]
fn sync_booking_and_upstream_failures_log_no_patient_data() {
    // Process-wide, so the cache writer thread's events are caught too (nextest runs each
    // test in its own process).
    let captured = lifeboat_access::logging::CapturedLogs::default();
    tracing::subscriber::set_global_default(captured.subscriber()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let p = {
        rt.block_on(async {
            let p = practice().await;
            // A sync that finds refused data, a booking, and an upstream that fails.
            let mut bad = new_patient("Zebedee");
            bad["identifier"][0]["value"] = json!("9990000000");
            p.up.fhir(reqwest::Method::POST, "Patient", Some(bad))
                .await
                .unwrap();
            p.desk.sync_now().await.unwrap();
            p.desk.declare_outage().unwrap();
            p.desk.login(RECEPTION.0, RECEPTION.1).unwrap();
            book_first_free(&p.desk, "smith");
            p.desk.login(MANAGER, MANAGER_PASSWORD).unwrap();
            p.up.fault(json!({"mode": "error", "status": 503}))
                .await
                .unwrap();
            assert!(p.desk.sync_now().await.is_err());
            p.up.heal().await.unwrap();
            p
        })
    };
    let logs = captured.text();
    assert!(
        logs.contains("refused a resource"),
        "the logs were captured: {logs}"
    );
    assert!(logs.contains("retrying"), "the failing upstream was logged");
    // Every patient's name, NHS number and date of birth, from the upstream itself.
    let (_, bundle) = rt
        .block_on(p.up.fhir(reqwest::Method::GET, "Patient?_count=1000", None))
        .unwrap();
    let mut checked = 0;
    for e in bundle["entry"].as_array().unwrap() {
        let r = &e["resource"];
        for needle in [
            r["name"][0]["family"].as_str(),
            r["identifier"][0]["value"].as_str(),
            r["birthDate"].as_str(),
        ]
        .into_iter()
        .flatten()
        {
            assert!(!logs.contains(needle), "patient data in the logs: {needle}");
            checked += 1;
        }
    }
    assert!(checked > 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contact_list_holds_exactly_the_patients_booked_in_the_period_and_is_audited() {
    let p = practice().await;
    let today = lifeboat_model::Clock::today_in_london(&SystemClock);
    let tomorrow = today + chrono::Days::new(1);
    // What the book says for those two days, straight from the day book.
    let mut expected: Vec<String> = Vec::new();
    for day in [today, tomorrow] {
        for line in p.desk.day_book(day, None).unwrap().lines {
            if let Some(patient) = line.appointment.and_then(|a| a.patient) {
                let nhs = patient.nhs_number.unwrap_or_default();
                expected.push(format!("{nhs} {}", patient.phone.unwrap_or_default()));
            }
        }
    }
    assert!(
        !expected.is_empty(),
        "the practice has appointments today and tomorrow"
    );
    let csv = p.desk.contact_list(today, tomorrow).unwrap();
    let mut listed: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let fields: Vec<&str> = l.split("\",\"").collect();
            format!("{} {}", fields[5], fields[6])
        })
        .collect();
    expected.sort();
    listed.sort();
    assert_eq!(
        listed, expected,
        "every booked patient, with the phone number the cache holds"
    );
    let audit = p
        .desk
        .audit_export(&lifeboat_store::AuditFilter::default())
        .unwrap();
    assert!(audit.contains("contact_list_exported"), "{audit}");

    p.desk.login(RECEPTION.0, RECEPTION.1).unwrap();
    assert_eq!(
        p.desk.contact_list(today, tomorrow).unwrap_err().code,
        "not_permitted"
    );
}

/// The text of a PDF as `pdftotext -layout` extracts it (poppler-utils, installed by
/// scripts/setup.sh): proves the file is valid and its text extractable.
fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    assert!(
        out.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_day_list_and_summary_pack_print_every_booked_patient_in_time_order() {
    let p = practice().await;
    let today = lifeboat_model::Clock::today_in_london(&SystemClock);
    let gp = p.desk.practitioners().unwrap().remove(0);
    let book = p.desk.day_book(today, Some(&gp.id)).unwrap();
    let booked: Vec<String> = book
        .lines
        .iter()
        .filter_map(|l| l.appointment.as_ref()?.patient.as_ref()?.nhs_number.clone())
        .map(|n| lifeboat_model::NhsNumber::parse(&n).unwrap().to_string())
        .collect();
    assert!(!booked.is_empty());

    p.desk.login(RECEPTION.0, RECEPTION.1).unwrap();
    let text = pdf_text(&p.desk.day_list_pdf(today, Some(&gp.id)).unwrap());
    for expected in [
        "Day list",
        "Printed at",
        "data as of",
        "Page 1 of",
        "CONFIDENTIAL",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
    assert_in_time_order(&text, &booked);
    assert_eq!(
        p.desk
            .summary_pack_pdf(today, Some(&gp.id))
            .unwrap_err()
            .code,
        "not_permitted"
    );

    p.desk.login(CLINICIAN.0, CLINICIAN.1).unwrap();
    let pack = pdf_text(&p.desk.summary_pack_pdf(today, Some(&gp.id)).unwrap());
    for n in &booked {
        assert!(pack.contains(n.as_str()), "{n} missing from the pack");
    }
    for section in [
        "Allergies",
        "Medications",
        "Problems",
        "Recent results",
        "CONFIDENTIAL",
    ] {
        assert!(pack.contains(section), "{section} missing");
    }
    // Entries' dates in UK style ("(Sat 8 Jun 2024)"), never as FHIR writes them.
    let iso = pack
        .as_bytes()
        .windows(8)
        .any(|w| w[0] == b'(' && w[1..5].iter().all(u8::is_ascii_digit) && w[5] == b'-');
    assert!(!iso, "an ISO date in the pack:\n{pack}");
    assert!(
        [
            "(Mon ", "(Tue ", "(Wed ", "(Thu ", "(Fri ", "(Sat ", "(Sun "
        ]
        .iter()
        .any(|d| pack.contains(d)),
        "dated entries in the pack"
    );
}

/// Every one of `booked` (NHS numbers as printed) appears in `text`, in that order.
fn assert_in_time_order(text: &str, booked: &[String]) {
    let positions: Vec<usize> = booked
        .iter()
        .map(|n| {
            text.find(n.as_str())
                .unwrap_or_else(|| panic!("{n} missing from the day list"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "in time order");
}

/// The NHS numbers booked on a day (every clinician), in time order, as printed.
fn booked_on(desk: &Desk, day: chrono::NaiveDate) -> Vec<String> {
    desk.day_book(day, None)
        .unwrap()
        .lines
        .iter()
        .filter_map(|l| l.appointment.as_ref()?.patient.as_ref()?.nhs_number.clone())
        .map(|n| lifeboat_model::NhsNumber::parse(&n).unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pack_is_prepared_each_evening_for_the_next_working_day_and_the_last_few_kept() {
    // This evening, 18:30 London (or now, if later): the pack is due.
    let today = SystemClock.today_in_london();
    let evening = lifeboat_model::time::london_to_utc(today.and_hms_opt(18, 30, 0).unwrap());
    let clock = Arc::new(FixedClock::new(evening.max(chrono::Utc::now())));
    let files = tempfile::tempdir().unwrap();
    let folder = files.path().join("packs");
    let p = practice_with(clock.clone(), |c| {
        c.downtime_pack.keep = 2;
        c.downtime_pack.directory = Some(folder.clone());
    })
    .await;
    let desk = &p.desk;
    // The next day with anything booked, straight from the day book.
    let next = (1..=7)
        .map(|d| today + chrono::Days::new(d))
        .find(|d| !booked_on(desk, *d).is_empty())
        .unwrap();
    let booked = booked_on(desk, next);

    desk.login(RECEPTION.0, RECEPTION.1).unwrap();
    let pack = desk.prepare_downtime_pack_if_due().unwrap().unwrap();
    assert_eq!(pack.for_date, next);
    assert!(
        desk.prepare_downtime_pack_if_due().unwrap().is_none(),
        "one a day"
    );
    let kept = desk.saved_packs().unwrap();
    assert_eq!(kept.len(), 2);
    let day_list = kept
        .iter()
        .find(|k| k.kind == lifeboat_store::PackKind::DayList)
        .unwrap();
    let summaries = kept
        .iter()
        .find(|k| k.kind == lifeboat_store::PackKind::SummaryPack)
        .unwrap();
    let text = pdf_text(&desk.saved_pack_pdf(day_list.id).unwrap());
    assert_in_time_order(&text, &booked);
    assert!(text.contains("data as of") && text.contains("CONFIDENTIAL"));
    assert_eq!(
        desk.saved_pack_pdf(summaries.id).unwrap_err().code,
        "not_permitted",
        "a receptionist cannot take the clinical summaries out of the kept pack"
    );
    desk.login(CLINICIAN.0, CLINICIAN.1).unwrap();
    let pack_text = pdf_text(&desk.saved_pack_pdf(summaries.id).unwrap());
    for n in &booked {
        assert!(
            pack_text.contains(n.as_str()),
            "{n} missing from the summaries"
        );
    }

    // An outage: nothing is prepared while the upstream is down, the kept pack stays.
    desk.login(MANAGER, MANAGER_PASSWORD).unwrap();
    desk.declare_outage().unwrap();
    clock.advance(chrono::Duration::days(1));
    assert!(desk.prepare_downtime_pack_if_due().unwrap().is_none());
    desk.login(MANAGER, MANAGER_PASSWORD).unwrap();
    desk.end_outage().unwrap();
    // Two more evenings: only the last two preparations are kept, in the cache and the folder.
    assert!(desk.prepare_downtime_pack_if_due().unwrap().is_some());
    clock.advance(chrono::Duration::days(1));
    let last = desk.prepare_downtime_pack_if_due().unwrap().unwrap();
    desk.login(MANAGER, MANAGER_PASSWORD).unwrap();
    let kept = desk.saved_packs().unwrap();
    assert_eq!(kept.len(), 4);
    assert!(kept.iter().all(|k| k.prepared_at > pack.prepared_at));
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 4, "{names:?}");
    let newest = kept[0].clone();
    assert_eq!(newest.prepared_at, last.prepared_at);
    let file = names
        .iter()
        .find(|n| {
            n.contains(&last.prepared_at.format("%Y%m%dT%H%M%SZ").to_string())
                && n.ends_with(match newest.kind {
                    lifeboat_store::PackKind::DayList => "day-list.pdf",
                    lifeboat_store::PackKind::SummaryPack => "clinical-summaries.pdf",
                })
        })
        .unwrap();
    assert_eq!(
        std::fs::read(folder.join(file)).unwrap(),
        desk.saved_pack_pdf(newest.id).unwrap()
    );
    let audit = desk
        .audit_export(&lifeboat_store::AuditFilter::default())
        .unwrap();
    assert_eq!(
        audit.matches("downtime_pack_prepared").count(),
        3,
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_names_the_patients_and_clinician_on_both_sides() {
    let p = practice().await;
    p.desk.declare_outage().unwrap();
    p.desk.login(RECEPTION.0, RECEPTION.1).unwrap();
    let ours = book_first_free(&p.desk, "smith john");
    let booked = ours.appointment.unwrap();
    let (ours_patient, slot_id) = (booked.patient.unwrap(), booked.slot_id.unwrap());
    let other = p.desk.search_patients("walsh", 1).unwrap().remove(0);

    // Meanwhile a colleague books that slot for someone else in the clinical system.
    let (status, _) = p
        .up
        .fhir(
            reqwest::Method::POST,
            "Appointment",
            Some(json!({
                "resourceType": "Appointment", "status": "booked",
                "slot": [{"reference": format!("Slot/{slot_id}")}],
                "start": booked.start, "end": booked.end,
                "participant": [
                    {"actor": {"reference": format!("Patient/{}", other.id)}, "status": "accepted"},
                    {"actor": {"reference": format!("Practitioner/{}", booked.practitioner_id.clone().unwrap())}, "status": "accepted"}
                ]
            })),
        )
        .await
        .unwrap();
    assert_eq!(status, 201);

    p.desk.login(MANAGER, MANAGER_PASSWORD).unwrap();
    p.desk.end_outage().unwrap();
    p.desk.reconcile(false).await.unwrap();
    let conflicts = p.desk.conflicts().await.unwrap();
    assert_eq!(conflicts.len(), 1);
    let names = &conflicts[0].names;
    let name = |reference: String| names.get(&reference).cloned().unwrap_or_default();
    let nhs = ours_patient.nhs_number.clone().unwrap();
    let ours_name = name(format!("Patient/{}", ours_patient.id));
    assert!(ours_name.starts_with("SMITH, John (born "), "{names:?}");
    assert!(
        ours_name.ends_with(&format!("NHS {} {} {})", &nhs[..3], &nhs[3..6], &nhs[6..])),
        "{names:?}"
    );
    assert!(
        name(format!("Patient/{}", other.id)).starts_with("WALSH, "),
        "{names:?}"
    );
    assert_eq!(
        Some(name(format!(
            "Practitioner/{}",
            booked.practitioner_id.unwrap()
        ))),
        booked.practitioner_name
    );
}
