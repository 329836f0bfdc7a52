//! Sync against the real test upstream (Medplum behind tests/upstream/server.mjs) with the
//! checked-in 200-patient fixture practice.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use lifeboat_engine::sync::DATA_AS_OF;
use lifeboat_engine::{PassKind, SyncError, SyncSettings};
use lifeboat_model::ResourceKind;
use lifeboat_upstream::{Method, UpstreamError};
use serde_json::{Value, json};
use support::*;

async fn upstream_total(up: &TestUpstream, kind: ResourceKind) -> u64 {
    let (status, bundle) = up
        .fhir(
            Method::GET,
            &format!("{kind}?_count=1{}", window_filter(kind)),
            None,
        )
        .await
        .expect("upstream answers");
    assert_eq!(status, 200);
    bundle["total"].as_u64().expect("search total")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_sync_copies_everything_the_upstream_has() {
    let up = practice_upstream();
    let cache = TempCache::new();
    let report = syncer(&up, &cache, SyncSettings::default())
        .run(None)
        .await
        .expect("sync");
    assert_eq!(report.total().rejected, 0);
    let store = cache.open();
    for kind in ResourceKind::ALL {
        let expected = upstream_total(&up, kind).await;
        assert_eq!(
            store.count(kind).unwrap(),
            expected,
            "{kind}: cache count vs upstream total"
        );
        if kind != ResourceKind::MedicationRequest {
            assert!(expected > 0, "the fixture practice has some {kind}");
        }
        // Field by field: every 7th resource read back from the upstream equals the cache's copy.
        for id in store.ids(kind).unwrap().iter().step_by(7) {
            let (status, upstream) = up
                .fhir(Method::GET, &format!("{kind}/{id}"), None)
                .await
                .unwrap();
            assert_eq!(status, 200);
            let cached: Value =
                serde_json::from_str(&store.resource(kind, id).unwrap().unwrap().raw).unwrap();
            assert_eq!(cached, upstream, "{kind}/{id}");
        }
    }
    let status = store.sync_states().unwrap();
    assert!(status.iter().all(|s| s.phase == "complete"), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_sync_brings_exactly_the_changes() {
    let up = practice_upstream();
    let cache = TempCache::new();
    let sync = syncer(&up, &cache, SyncSettings::default());
    sync.run(None).await.expect("initial sync");
    let before = cache.dump();

    // The practice's own system changes things while Lifeboat watches.
    let store = cache.open();
    let patients = store.ids(ResourceKind::Patient).unwrap();
    let (_, mut changed) = up
        .fhir(Method::GET, &format!("Patient/{}", patients[3]), None)
        .await
        .unwrap();
    changed["telecom"] = json!([{"system": "phone", "value": "07700 900999", "use": "mobile"}]);
    let (s, _) = up
        .fhir(
            Method::PUT,
            &format!("Patient/{}", patients[3]),
            Some(changed),
        )
        .await
        .unwrap();
    assert_eq!(s, 200);
    let (s, created) = up
        .fhir(Method::POST, "Patient", Some(new_patient("Newcomer")))
        .await
        .unwrap();
    assert_eq!(s, 201);
    let appointments = store.ids(ResourceKind::Appointment).unwrap();
    let (s, _) = up
        .fhir(
            Method::DELETE,
            &format!("Appointment/{}", appointments[0]),
            None,
        )
        .await
        .unwrap();
    assert!(s == 200 || s == 204, "delete answered {s}");
    drop(store);
    // The checkpoint is the upstream's clock at the start of a pass, to the second (HTTP
    // Date): a change made in that same second is fetched once more by the following pass.
    // Real edits are not that close to a sync; here, let the second pass before syncing.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    up.reset_stats().await.unwrap();
    let report = sync.run(None).await.expect("incremental sync");
    let total = report.total();
    assert_eq!(
        total.fetched, 2,
        "only the changed and the new patient are fetched"
    );
    assert_eq!(total.written, 2);
    assert_eq!(total.removed, 1, "the deleted appointment is removed");

    // Nothing else was re-fetched: every request asked only for changes, for a count or
    // for ids; and ids were listed only where the counts differed (a deletion), not where
    // a resource was added.
    let stats = up.stats().await.unwrap();
    let recent = stats["recent"].as_array().unwrap();
    assert_eq!(
        recent.len() as u64,
        total.requests,
        "every request the sync made is counted"
    );
    let mut listed = std::collections::BTreeSet::new();
    for r in recent {
        let url = r["url"].as_str().unwrap();
        assert!(
            url.contains("_lastUpdated=gt")
                || url.contains("_elements=id")
                || url.contains("_count=0"),
            "unexpected request {url}"
        );
        if url.contains("_elements=id") {
            listed.insert(
                url.split('?')
                    .next()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    assert_eq!(
        listed,
        ["Appointment".to_string()].into(),
        "ids listed only where one went"
    );

    let after = cache.dump();
    let new_id = created["id"].as_str().unwrap();
    let differences: Vec<_> = after
        .keys()
        .chain(before.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        differences,
        vec![
            &(ResourceKind::Patient, patients[3].clone()),
            &(ResourceKind::Patient, new_id.to_string()),
            &(ResourceKind::Appointment, appointments[0].clone()),
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    assert!(!after.contains_key(&(ResourceKind::Appointment, appointments[0].clone())));

    // A second incremental sync right after finds nothing new.
    let again = sync.run(None).await.expect("quiet sync");
    assert_eq!(again.total().fetched, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_dropped_mid_run_resumes_to_the_same_cache() {
    let up = practice_upstream();
    // Every page its own commit (as when the upstream is slower than the writer), so a stop
    // after any page is a different point.
    let settings = SyncSettings {
        page_size: 60,
        commit_every: std::time::Duration::ZERO,
        ..SyncSettings::default()
    };
    let reference = TempCache::new();
    syncer(&up, &reference, settings.clone())
        .run(None)
        .await
        .unwrap();
    let expected = reference.dump();

    // After so many pages; and (`None`) as the slots' first pass lands: a windowed pass
    // complete, most often with other types' records still to come.
    let mut windows_checked = 0;
    for stop in [Some(1usize), Some(4), Some(9), Some(23), Some(57), None] {
        let at = stop.map_or_else(
            || "the slots' last page".to_string(),
            |n| format!("page {n}"),
        );
        let cache = TempCache::new();
        let sync = Arc::new(syncer(&up, &cache, settings.clone()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = {
            let sync = sync.clone();
            tokio::spawn(async move { sync.run(Some(tx)).await })
        };
        let mut pages = 0;
        while let Some(progress) = rx.recv().await {
            pages += 1;
            let slots_done = progress.kind == ResourceKind::Slot
                && progress.pass == PassKind::Initial
                && progress.total == Some(progress.done);
            if stop.map_or(slots_done, |n| pages == n) {
                task.abort();
                break;
            }
        }
        let _ = task.await;
        // A stop after so many pages comes part-way; the slots' pass may be the last to
        // land (the stop then finds the rest already written).
        if stop.is_some() {
            assert!(
                cache.dump().len() < expected.len(),
                "stopped part-way at {at}"
            );
        }
        // A pass of slots or appointments completed before the stop has recorded how far
        // ahead it fetched (in the same commit): a resume on a later day fetches the days
        // that have come into the window since.
        let stopped = cache.open();
        for state in stopped.sync_states().unwrap() {
            if state.kind.is_windowed() && state.phase == "complete" {
                assert!(
                    stopped
                        .setting(&format!("sync.window_to.{}", state.kind))
                        .unwrap()
                        .is_some(),
                    "{} complete without its window after stopping at {at}",
                    state.kind
                );
                windows_checked += 1;
            }
        }
        if stop == Some(1) {
            // Every table not complete at the stop still has its indexes to build. (One
            // completed just before may have had them built: pages already queued for the
            // writer, and the build after them, still run once the stop is asked for.)
            let complete: Vec<ResourceKind> = stopped
                .sync_states()
                .unwrap()
                .into_iter()
                .filter(|s| s.phase == "complete")
                .map(|s| s.kind)
                .collect();
            let clinical: Vec<ResourceKind> = ResourceKind::ALL
                .into_iter()
                .filter(|k| k.is_clinical())
                .collect();
            let deferred = stopped.deferred_indexes().unwrap();
            for (index, table) in [
                ("patient_nhs_number", &[ResourceKind::Patient][..]),
                ("patient_birth_date", &[ResourceKind::Patient]),
                ("slot_by_status", &[ResourceKind::Slot]),
                ("appointment_by_patient", &[ResourceKind::Appointment]),
                ("appointment_by_slot", &[ResourceKind::Appointment]),
                ("clinical_entry_by_patient", &clinical),
            ] {
                if !table.iter().all(|k| complete.contains(k)) {
                    assert!(
                        deferred.iter().any(|d| d == index),
                        "{index} built before its table was complete: {deferred:?}"
                    );
                }
            }
            assert!(
                !deferred.is_empty(),
                "nothing left to build after the first page"
            );
        }
        drop(stopped);
        sync.run(None).await.expect("resumed sync completes");
        assert_eq!(cache.dump(), expected, "after stopping at {at}");
        assert_eq!(
            cache.open().deferred_indexes().unwrap(),
            Vec::<String>::new(),
            "every index built after stopping at {at}"
        );
    }
    assert!(windows_checked > 0, "no stop came after a windowed pass");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sync_process_resumes_to_the_same_cache() {
    let (up, _practice) = todays_practice_upstream();
    let reference = TempCache::new();
    let settings = SyncSettings {
        page_size: 40,
        ..SyncSettings::default()
    };
    syncer_with_clock(
        &up,
        &reference,
        settings,
        Arc::new(lifeboat_model::SystemClock),
    )
    .run(None)
    .await
    .unwrap();
    let expected = reference.dump();

    for kill_after_requests in [3u64, 25, 70] {
        let cache = TempCache::with_manager();
        up.reset_stats().await.unwrap();
        let mut child = lifeboat_sync_process(&up, &cache, 40);
        // Kill -9 once the upstream has served that many requests to it.
        loop {
            let served = up.stats().await.unwrap()["requests"].as_u64().unwrap();
            if served >= kill_after_requests {
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("sync finished ({status}) before {kill_after_requests} requests");
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(cache.dump().len() < expected.len());
        if kill_after_requests == 3 {
            assert!(!cache.open().deferred_indexes().unwrap().is_empty());
        }
        let status = lifeboat_sync_process(&up, &cache, 40).wait().unwrap();
        assert!(status.success());
        assert_eq!(
            cache.dump(),
            expected,
            "after kill at {kill_after_requests} requests"
        );
        assert!(cache.open().deferred_indexes().unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_written_to_a_log_is_one_finished_line_per_pass() {
    let (up, _practice) = todays_practice_upstream();
    let cache = TempCache::with_manager();
    // Piped, as to a service's log: not a terminal, so nothing may be redrawn.
    let out = lifeboat_sync_command(&up, &cache, 40).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let log = String::from_utf8(out.stderr).unwrap();
    assert!(!log.contains('\r'), "redrawn in a log: {log:?}");
    let full_bar = format!("[{}]", "#".repeat(30));
    for kind in ["Patient", "Slot", "Appointment", "Observation"] {
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(kind))
            .collect();
        assert_eq!(lines.len(), 1, "{kind}: {log}");
        assert!(
            lines[0].contains("first copy") && lines[0].contains(&full_bar),
            "{kind} not shown finished: {}",
            lines[0]
        );
    }
    let summary = String::from_utf8(out.stdout).unwrap();
    assert!(summary.starts_with("Sync finished"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passing_faults_are_retried_and_the_sync_succeeds() {
    let up = practice_upstream();
    for fault in [
        json!({"mode": "error", "status": 503, "count": 2}),
        json!({"mode": "error", "status": 429, "retryAfter": 0, "count": 1}),
        json!({"mode": "drop", "count": 2}),
        json!({"mode": "malformed", "count": 2}),
        json!({"mode": "slow", "delayMs": 300, "count": 3}),
        json!({"mode": "hang", "count": 1}),
    ] {
        let cache = TempCache::new();
        up.fault(fault.clone()).await.unwrap();
        let report = syncer(&up, &cache, SyncSettings::default()).run(None).await;
        up.heal().await.unwrap();
        let report = report.unwrap_or_else(|e| panic!("{fault}: {e}"));
        assert_eq!(report.total().rejected, 0);
        assert_eq!(
            cache.open().count(ResourceKind::Patient).unwrap(),
            upstream_total(&up, ResourceKind::Patient).await,
            "{fault}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lasting_faults_give_typed_errors_and_leave_the_failed_part_unwritten() {
    let up = practice_upstream();
    type Check = fn(&UpstreamError) -> bool;
    let cases: [(Value, Check); 4] = [
        (
            json!({"mode": "error", "status": 503, "match": "/Patient"}),
            |e| matches!(e, UpstreamError::Unavailable { status: 503, .. }),
        ),
        (json!({"mode": "hang", "match": "/Patient"}), |e| {
            matches!(e, UpstreamError::Timeout { .. })
        }),
        (json!({"mode": "drop", "match": "/Patient"}), |e| {
            matches!(e, UpstreamError::CutOff { .. })
        }),
        (json!({"mode": "malformed", "match": "/Patient"}), |e| {
            matches!(e, UpstreamError::Malformed { .. })
        }),
    ];
    for (fault, is_expected) in cases {
        let cache = TempCache::new();
        up.fault(fault.clone()).await.unwrap();
        let result = syncer(&up, &cache, SyncSettings::default()).run(None).await;
        up.heal().await.unwrap();
        match result {
            Err(SyncError::Upstream {
                kind: ResourceKind::Patient,
                source,
            }) => {
                assert!(is_expected(&source), "{fault}: got {source}");
                assert!(
                    source.to_string().contains("/fhir/Patient"),
                    "names the request: {source}"
                );
            }
            other => panic!("{fault}: expected a Patient upstream error, got {other:?}"),
        }
        let store = cache.open();
        // The failed part is not written; what other streams committed before the failure
        // is kept with its checkpoint, and the next sync resumes from it.
        assert_eq!(store.count(ResourceKind::Patient).unwrap(), 0, "{fault}");
        assert_eq!(
            store
                .sync_state(ResourceKind::Patient)
                .unwrap()
                .map(|s| s.done)
                .unwrap_or(0),
            0
        );
        // Nothing claims the cache is complete: screens say "no complete sync yet".
        assert_eq!(store.setting(DATA_AS_OF).unwrap(), None, "{fault}");
        // An outage that cuts a first sync short leaves the cache as all there is: the
        // indexes that sync deferred are built all the same.
        assert!(store.deferred_indexes().unwrap().is_empty(), "{fault}");
        for kind in ResourceKind::ALL {
            if let Some(state) = store.sync_state(kind).unwrap() {
                assert!(
                    store.count(kind).unwrap() >= state.done,
                    "{fault}: every {kind} the checkpoint counts is in the cache"
                );
            }
        }
        let resumed = syncer(&up, &cache, SyncSettings::default())
            .run(None)
            .await
            .unwrap();
        assert!(resumed.total().written > 0);
        assert_eq!(
            store.count(ResourceKind::Patient).unwrap(),
            upstream_total(&up, ResourceKind::Patient).await,
            "{fault}: the next sync completes"
        );
        assert!(store.setting(DATA_AS_OF).unwrap().is_some(), "{fault}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_resources_are_refused_and_reported_while_the_rest_lands() {
    let up = practice_upstream();
    let cache = TempCache::new();
    let sync = syncer(&up, &cache, SyncSettings::default());
    sync.run(None).await.unwrap();

    let mut bad_nhs = new_patient("Badnumber");
    bad_nhs["identifier"][0]["value"] = json!("9990000000");
    let (_, bad) = up
        .fhir(Method::POST, "Patient", Some(bad_nhs))
        .await
        .unwrap();
    let (_, nameless) = up
        .fhir(
            Method::POST,
            "Patient",
            Some(json!({"resourceType": "Patient", "gender": "female"})),
        )
        .await
        .unwrap();
    let (_, good) = up
        .fhir(Method::POST, "Patient", Some(new_patient("Goodperson")))
        .await
        .unwrap();

    let report = sync.run(None).await.unwrap();
    assert_eq!(report.total().rejected, 2);
    assert_eq!(report.total().written, 1);
    let store = cache.open();
    assert!(
        store
            .resource(ResourceKind::Patient, good["id"].as_str().unwrap())
            .unwrap()
            .is_some()
    );
    let rejections = store.rejections().unwrap();
    let reasons: BTreeMap<String, String> = rejections
        .into_iter()
        .map(|(_, id, reason, _)| (id, reason))
        .collect();
    let bad_reason = &reasons[bad["id"].as_str().unwrap()];
    assert!(bad_reason.contains("NHS number"), "{bad_reason}");
    assert!(
        !bad_reason.contains("9990000000") && !bad_reason.contains("Badnumber"),
        "no patient data: {bad_reason}"
    );
    assert!(reasons[nameless["id"].as_str().unwrap()].contains("name"));

    // Two patients deleted upstream: the upstream now has as many as the cache holds (the
    // two it refused are not cached), yet the deletions are found: the refused count too.
    let store_ids = store.ids(ResourceKind::Patient).unwrap();
    for id in &store_ids[..2] {
        let (s, _) = up
            .fhir(Method::DELETE, &format!("Patient/{id}"), None)
            .await
            .unwrap();
        assert!(s == 200 || s == 204, "delete answered {s}");
    }
    assert_eq!(
        upstream_total(&up, ResourceKind::Patient).await,
        store.count(ResourceKind::Patient).unwrap()
    );
    let report = sync.run(None).await.unwrap();
    let patients = report
        .kinds
        .iter()
        .find(|(kind, ..)| *kind == ResourceKind::Patient)
        .unwrap();
    assert_eq!(patients.2.removed, 2);
    for id in &store_ids[..2] {
        assert!(store.resource(ResourceKind::Patient, id).unwrap().is_none());
    }

    // With nothing changed, the counts (cached and refused) agree: no patient ids listed,
    // though two stand refused.
    let listed_patient_ids = |stats: Value| {
        stats["recent"].as_array().unwrap().iter().any(|r| {
            r["url"]
                .as_str()
                .unwrap()
                .contains("/Patient?_count=1000&_elements=id")
        })
    };
    up.reset_stats().await.unwrap();
    assert_eq!(sync.run(None).await.unwrap().total().removed, 0);
    assert!(!listed_patient_ids(up.stats().await.unwrap()));

    // A refused patient deleted upstream: the ids are listed, nothing cached is removed, and
    // the refusal of what is gone is forgotten.
    let (s, _) = up
        .fhir(
            Method::DELETE,
            &format!("Patient/{}", bad["id"].as_str().unwrap()),
            None,
        )
        .await
        .unwrap();
    assert!(s == 200 || s == 204, "delete answered {s}");
    up.reset_stats().await.unwrap();
    assert_eq!(sync.run(None).await.unwrap().total().removed, 0);
    assert!(listed_patient_ids(up.stats().await.unwrap()));
    assert_eq!(
        store.rejected_ids(ResourceKind::Patient).unwrap(),
        vec![nameless["id"].as_str().unwrap().to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_carry_on_while_a_sync_runs() {
    let up = practice_upstream();
    let cache = TempCache::new();
    let sync = Arc::new(syncer(&up, &cache, SyncSettings::default()));
    sync.run(None).await.unwrap();
    let store = cache.open();
    // A slow upstream keeps the next (incremental) sync running while we search.
    up.fault(json!({"mode": "slow", "delayMs": 150}))
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = {
        let sync = sync.clone();
        tokio::spawn(async move { sync.run(Some(tx)).await })
    };
    rx.recv().await.expect("sync under way");
    let found = store
        .search_patients("smith", 20, fixture_today())
        .expect("search works during the sync");
    assert!(!found.is_empty());
    assert!(
        !task.is_finished(),
        "the sync was still running during the search"
    );
    up.heal().await.unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_type_does_not_hold_up_the_types_after_it() {
    let up = practice_upstream();
    let cache = TempCache::new();
    // Every page of observations takes a while; the types after them in the sync order
    // (immunisations, encounters) are fetched by another stream meanwhile.
    up.fault(json!({"mode": "slow", "delayMs": 200, "match": "/Observation?"}))
        .await
        .unwrap();
    let settings = SyncSettings {
        page_size: 40,
        ..SyncSettings::default()
    };
    syncer(&up, &cache, settings).run(None).await.unwrap();
    up.heal().await.unwrap();
    let stats = up.stats().await.unwrap();
    // The full passes' requests in arrival order (the booked patients' summaries, fetched
    // first, name their patients).
    let passes: Vec<&str> = stats["recent"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["url"].as_str())
        .filter(|url| !url.contains("patient=") && !url.contains("_id="))
        .collect();
    let last = |kind: &str| {
        passes
            .iter()
            .rposition(|url| url.starts_with(&format!("/fhir/{kind}?")))
            .unwrap_or_else(|| panic!("no {kind} request in {passes:?}"))
    };
    let observations_end = last("Observation");
    for later in ["Immunization", "Encounter"] {
        assert!(
            last(later) < observations_end,
            "{later} waited for the slow observations: {passes:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_reaches_a_test_upstream_elsewhere_and_nothing_else() {
    let up = practice_upstream();
    let elsewhere = TestUpstream::connect(&format!("{}/", up.root))
        .await
        .unwrap();
    assert_eq!(elsewhere.base_url, up.base_url);
    assert_eq!(elsewhere.pid(), None, "not a process of ours");
    elsewhere.reset_stats().await.unwrap();
    let (status, _) = elsewhere
        .fhir(Method::GET, "Patient?_count=1", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(up.stats().await.unwrap()["requests"], 1);
    // A FHIR server without the test upstream's statistics (here, the FHIR endpoint
    // itself taken for a server's root) is refused: the bench writes to what it measures.
    let refused = TestUpstream::connect(&up.base_url).await.err().unwrap();
    assert!(
        refused.contains("did not answer as a test upstream"),
        "{refused}"
    );
}
