//! `lifeboat bench reconcile`: how long Lifeboat takes to replay N offline bookings upstream,
//! beside the upstream's own time for the same N writes made by a plain HTTP client.
//!
//! A practice is generated for its anchor day and served by the test upstream with its
//! GP Connect clock on that morning; Lifeboat syncs it, N bookings are made offline, and the
//! reconciliation of those N journal rows is timed (planning, the up-front checks of the
//! patients, clinicians and locations, one conditional create per booking, and the local
//! record of each, written in batches during later requests) against a fresh upstream on
//! the same practice. Two more fresh ones are
//! then sent the very same Appointment bodies by a plain HTTP client, one after the other:
//! straight POSTs, and POSTs each with `If-None-Exist`, as any client that must never
//! create a duplicate has to send them. Each is run three times (Lifeboat's on a fresh copy
//! of the cache each time) and the medians are printed with their ratios; nothing is
//! asserted (targets are read by people, not timed tests).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveTime, Utc};
use lifeboat_cli::test_upstream::TestUpstream;
use lifeboat_engine::booking::{self, Actor, BookRequest};
use lifeboat_engine::reconcile::{self, BookingDetails, Quiet, Reconciler, StepResult};
use lifeboat_engine::{SyncSettings, Syncer};
use lifeboat_fixtures::{PracticeSpec, write_ndjson};
use lifeboat_model::{FixedClock, ResourceKind};
use lifeboat_store::{CacheKey, SlotQuery, Store};
use lifeboat_upstream::{Upstream, UpstreamConfig};

use super::median;

const DESK: Actor<'static> = Actor {
    user: "bench",
    workstation: "bench",
};

pub fn run(entries: usize, patients: usize) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("lifeboat-bench-reconcile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(run_in(&dir, entries, patients)));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn client(up: &TestUpstream) -> Result<Upstream, String> {
    let mut c = UpstreamConfig::new(&up.base_url);
    c.timeout = Duration::from_secs(120);
    Upstream::new(c).map_err(|e| e.to_string())
}

async fn run_in(dir: &std::path::Path, entries: usize, patients: usize) -> Result<(), String> {
    let err = |e: lifeboat_store::StoreError| e.to_string();
    let spec = PracticeSpec {
        patients,
        ..PracticeSpec::default()
    };
    // The practice's anchor day, 09:30 in London: the bookings are made for later slots.
    let now: DateTime<Utc> = spec
        .anchor
        .and_time(NaiveTime::from_hms_opt(8, 30, 0).unwrap_or_default())
        .and_utc();
    let practice = dir.join("practice");
    let manifest = write_ndjson(&spec, &practice).map_err(|e| e.to_string())?;
    println!("Practice: {}", manifest.summary());

    let up = TestUpstream::start_at(&practice, Some(now))?;
    let upstream = Arc::new(client(&up)?);
    let db = dir.join("cache.db");
    let key = CacheKey::from_bytes([42; 32]);
    let synced = Instant::now();
    Syncer::new(
        upstream.clone(),
        &db,
        key.clone(),
        Arc::new(FixedClock::new(now)),
        SyncSettings::default(),
    )
    .run(None)
    .await
    .map_err(|e| e.to_string())?;
    println!("Synced in {:.1} s", synced.elapsed().as_secs_f64());

    let mut store = Store::open(&db, &key).map_err(err)?;
    let slots: Vec<_> = store
        .free_slots(&SlotQuery {
            from: Some(now),
            limit: entries + 1,
            ..SlotQuery::default()
        })
        .map_err(err)?
        .into_iter()
        .filter(|s| s.start > now)
        .take(entries)
        .collect();
    if slots.len() < entries {
        return Err(format!(
            "the practice has only {} free slots ahead; give more --patients",
            slots.len()
        ));
    }
    let people: Vec<String> = store
        .ids(ResourceKind::Patient)
        .map_err(err)?
        .into_iter()
        .filter(|id| {
            store
                .patient_brief(id)
                .ok()
                .flatten()
                .is_some_and(|p| !p.deceased)
        })
        .collect();
    for (i, slot) in slots.iter().enumerate() {
        booking::book(
            &mut store,
            DESK,
            &BookRequest {
                slot_id: slot.id.clone(),
                patient_id: people[(i * 7) % people.len()].clone(),
                description: Some("Medication review".into()),
                comment: None,
            },
            now,
        )
        .map_err(|e| e.to_string())?;
    }
    // The very bodies reconciliation sends, for the plain client to send too.
    let bodies = store
        .journal(&[])
        .map_err(err)?
        .iter()
        .map(|e| {
            serde_json::from_value::<BookingDetails>(e.payload.clone())
                .map(|b| reconcile::appointment_resource(&e.id, &b, now))
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    println!("Booked {entries} appointments offline");

    // Each side runs ROUNDS times, every run on a fresh upstream on the same practice (the
    // sync wrote nothing, so it is the same data), Lifeboat's on a fresh copy of the cache
    // with its N journal rows still to send; the medians are compared.
    let mut lifeboat = Vec::new();
    let mut plain = Vec::new();
    let mut conditional = Vec::new();
    let mut requests = 0;
    drop(up);
    for round in 0..ROUNDS {
        // (a) Lifeboat's reconciliation of the N journal rows.
        let copy = dir.join(format!("round-{round}.db"));
        store.copy_to(&copy).map_err(err)?;
        let mut fresh = Store::open(&copy, &key).map_err(err)?;
        let up = TestUpstream::start_at(&practice, Some(now))?;
        let upstream = client(&up)?;
        let started = Instant::now();
        let report = Reconciler {
            upstream: &upstream,
            store: &mut fresh,
            now,
        }
        .run(false, &mut Quiet)
        .await
        .map_err(|e| e.to_string())?;
        lifeboat.push(started.elapsed());
        let applied = report.count(|r| matches!(r, StepResult::Applied { .. }));
        if applied != entries || report.stopped.is_some() {
            return Err(format!(
                "only {applied} of {entries} applied ({:?})",
                report.stopped
            ));
        }
        requests = up.stats().await?["requests"].as_u64().unwrap_or(0);
        drop(up);
        // (b) The upstream's own time for the same writes: the same bodies, plain POSTs one
        // after the other.
        plain.push(plain_posts(&practice, now, &bodies, false).await?);
        // (c) The same, each POST conditional (If-None-Exist on its identifier), as any
        // client that must never create a duplicate has to send them.
        conditional.push(plain_posts(&practice, now, &bodies, true).await?);
    }
    let (lifeboat, plain, conditional) = (median(lifeboat), median(plain), median(conditional));
    let row = |what: &str, d: Duration| {
        println!(
            "{what:<52} {:>7.2} s  {:>5.2} ms each",
            d.as_secs_f64(),
            d.as_secs_f64() * 1000.0 / entries as f64
        )
    };
    println!("\nMedians of {ROUNDS} runs each:");
    row(
        &format!("Lifeboat: reconcile {entries} bookings ({requests} requests)"),
        lifeboat,
    );
    row(&format!("Upstream: the same {entries} POSTs, plain"), plain);
    row(
        &format!("Upstream: the same {entries} POSTs, each If-None-Exist"),
        conditional,
    );
    println!(
        "\nLifeboat / plain POSTs:       {:.2}  (target <= 1.2)",
        lifeboat.as_secs_f64() / plain.as_secs_f64()
    );
    println!(
        "Lifeboat / conditional POSTs: {:.2}  (Lifeboat's own overhead over exactly-once writes)",
        lifeboat.as_secs_f64() / conditional.as_secs_f64()
    );
    Ok(())
}

const ROUNDS: usize = 3;

/// Sends `bodies` to a fresh upstream on `practice` with a plain HTTP client, one after the
/// other, and returns how long the upstream took.
async fn plain_posts(
    practice: &std::path::Path,
    now: DateTime<Utc>,
    bodies: &[serde_json::Value],
    conditional: bool,
) -> Result<Duration, String> {
    let up = TestUpstream::start_at(practice, Some(now))?;
    let http = reqwest::Client::new();
    let url = format!("{}/Appointment", up.base_url);
    let started = Instant::now();
    for body in bodies {
        let mut request = http
            .post(&url)
            .header("Content-Type", "application/fhir+json")
            .header("Accept", "application/fhir+json");
        if conditional {
            let id = body["identifier"][0]["value"].as_str().unwrap_or_default();
            request = request.header(
                "If-None-Exist",
                format!("identifier={}|{id}", reconcile::OFFLINE_CHANGE_SYSTEM),
            );
        }
        let answer = request
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = answer.status();
        answer.bytes().await.map_err(|e| e.to_string())?;
        if status.as_u16() != 201 {
            return Err(format!("the plain client's POST answered {status}"));
        }
    }
    Ok(started.elapsed())
}
