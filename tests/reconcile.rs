//! Reconciliation against the real test upstream (Medplum behind tests/upstream/server.mjs),
//! with the 200-patient practice generated for Fri 19 Jul 2024. Staff work offline "at"
//! 09:30 in London (08:30 UTC); the manager reconciles at 15:45 (14:45 UTC), by when the
//! morning's changes have become past. The upstream's GP Connect clock is set to match.
//!
//! The engine is driven directly (Syncer, booking, Reconciler) and the upstream is checked
//! through its own HTTP API, resource by resource, against what the test itself expects.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod support;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Duration, Utc};
use lifeboat_engine::SyncSettings;
use lifeboat_engine::booking::{self, Actor, Attendance, BookRequest};
use lifeboat_engine::reconcile::{
    self, Choice, ConflictKind, DRILL_SETTING, Decision, OFFLINE_CANCELLATION_SYSTEM,
    OFFLINE_CHANGE_SYSTEM, Quiet, ReconcileError, ReconcileReport, Reconciler, ReplayEvent,
    ReplayObserver, Step, StepOutcome, StepResult,
};
use lifeboat_model::ResourceKind;
use lifeboat_store::{
    AppointmentView, AuditFilter, JournalKind, JournalState, SlotQuery, SlotView, Store,
};
use lifeboat_upstream::Method;
use serde_json::{Value, json};
use support::*;

const RECEPTION: Actor<'static> = Actor {
    user: "reception1",
    workstation: "desk-1",
};
const CLINICIAN: Actor<'static> = Actor {
    user: "drjones",
    workstation: "room-3",
};
const MANAGER_USER: &str = "manager1";
const MANAGER_DESK: &str = "office";

/// When staff worked offline: 09:30 in London on the anchor day.
fn offline_at() -> DateTime<Utc> {
    fixture_now()
}

/// When the manager reconciles: 15:45 in London, same day.
fn reconcile_at() -> DateTime<Utc> {
    "2024-07-19T14:45:00Z".parse().unwrap()
}

// ---------------------------------------------------------------------------------------
// The practice, the outage and the upstream as it is seen through its own API
// ---------------------------------------------------------------------------------------

/// A practice that went offline: the upstream, and a cache synced from it before the outage.
struct Outage {
    fixtures: tempfile::TempDir,
    up: TestUpstream,
    cache: TempCache,
    /// The fixture's appointment ids: what tells the practice's appointments from new ones.
    fixture_appointments: BTreeSet<String>,
    /// The upstream as it was when the outage began.
    before: UpstreamState,
}

impl Outage {
    async fn start() -> Self {
        let (fixtures, _) = anchored_practice();
        let up = upstream_at(fixtures.path(), offline_at());
        let cache = TempCache::new();
        syncer(&up, &cache, SyncSettings::default())
            .run(None)
            .await
            .expect("sync before the outage");
        let fixture_appointments =
            std::fs::read_to_string(fixtures.path().join("Appointment.ndjson"))
                .unwrap()
                .lines()
                .map(|l| {
                    serde_json::from_str::<Value>(l).unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect();
        let mut outage = Self {
            fixtures,
            up,
            cache,
            fixture_appointments,
            before: UpstreamState::default(),
        };
        outage.before = outage.upstream_state().await;
        outage
    }

    /// Another, untouched upstream with the same practice, its clock at `now`.
    fn fresh_upstream(&self, now: DateTime<Utc>) -> TestUpstream {
        upstream_at(self.fixtures.path(), now)
    }

    async fn upstream_state(&self) -> UpstreamState {
        UpstreamState::read(&self.up, &self.fixture_appointments).await
    }

    async fn state_of(&self, up: &TestUpstream) -> UpstreamState {
        UpstreamState::read(up, &self.fixture_appointments).await
    }
}

async fn run(
    up: &TestUpstream,
    store: &mut Store,
    now: DateTime<Utc>,
    observer: &mut dyn ReplayObserver,
) -> Result<ReconcileReport, ReconcileError> {
    let client = upstream_client(up);
    Reconciler {
        upstream: &client,
        store,
        now,
    }
    .run(false, observer)
    .await
}

async fn resolve(
    up: &TestUpstream,
    store: &mut Store,
    now: DateTime<Utc>,
    journal_id: &str,
    decision: Decision,
) -> Result<lifeboat_store::JournalEntry, ReconcileError> {
    let client = upstream_client(up);
    Reconciler {
        upstream: &client,
        store,
        now,
    }
    .resolve(journal_id, &decision, MANAGER_USER, MANAGER_DESK)
    .await
}

fn decision(choice: Choice, reason: Option<&str>) -> Decision {
    Decision {
        choice,
        slot_id: None,
        reason: reason.map(str::to_string),
    }
}

/// One appointment as the upstream holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Appt {
    status: String,
    slot: String,
    patient: String,
    start: DateTime<Utc>,
    /// Lifeboat's offline-change identifiers on it.
    markers: BTreeSet<String>,
}

/// What the upstream holds that reconciliation may touch.
#[derive(Debug, Clone, Default, PartialEq)]
struct UpstreamState {
    /// The practice's appointments by id; Lifeboat's under `lifeboat:<journal id>` (so a
    /// duplicate shows as two); anyone else's under `other:<id>`.
    appointments: BTreeMap<String, Vec<Appt>>,
    /// Slot id -> status.
    slots: BTreeMap<String, String>,
    /// Lifeboat's DocumentReferences by journal id: (patient, text).
    notes: BTreeMap<String, Vec<(String, String)>>,
}

/// Lifeboat's identifiers on a resource: the journal id that created it as is, and one that
/// cancelled it as `cancelled-by:<journal id>`.
fn markers(resource: &Value) -> BTreeSet<String> {
    resource["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| {
            let value = i["value"].as_str().unwrap_or_default();
            if i["system"] == OFFLINE_CHANGE_SYSTEM {
                Some(value.to_string())
            } else if i["system"] == OFFLINE_CANCELLATION_SYSTEM {
                Some(format!("cancelled-by:{value}"))
            } else {
                None
            }
        })
        .collect()
}

fn reference_id(reference: &Value, prefix: &str) -> Option<String> {
    reference
        .as_str()
        .and_then(|r| r.strip_prefix(prefix))
        .map(str::to_string)
}

impl UpstreamState {
    async fn read(up: &TestUpstream, fixture_appointments: &BTreeSet<String>) -> Self {
        let mut state = Self::default();
        for a in read_all(up, "Appointment?_count=1000").await {
            let id = a["id"].as_str().unwrap().to_string();
            let appt = Appt {
                status: a["status"].as_str().unwrap().to_string(),
                slot: reference_id(&a["slot"][0]["reference"], "Slot/").unwrap_or_default(),
                patient: a["participant"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find_map(|p| reference_id(&p["actor"]["reference"], "Patient/"))
                    .unwrap_or_default(),
                start: serde_json::from_value(a["start"].clone()).unwrap(),
                markers: markers(&a),
            };
            let key = if fixture_appointments.contains(&id) {
                id
            } else if let Some(m) = appt
                .markers
                .iter()
                .find(|m| !m.starts_with("cancelled-by:"))
            {
                format!("lifeboat:{m}")
            } else {
                format!("other:{id}")
            };
            state.appointments.entry(key).or_default().push(appt);
        }
        for list in state.appointments.values_mut() {
            list.sort();
        }
        for s in read_all(up, "Slot?_count=1000").await {
            state.slots.insert(
                s["id"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            );
        }
        for d in read_all(up, "DocumentReference?_count=1000").await {
            let text = base64_decode(d["content"][0]["attachment"]["data"].as_str().unwrap());
            let patient = reference_id(&d["subject"]["reference"], "Patient/").unwrap();
            for m in markers(&d) {
                state
                    .notes
                    .entry(m)
                    .or_default()
                    .push((patient.clone(), text.clone()));
            }
        }
        state
    }

    /// Appointments Lifeboat created that are booked, per slot (for the duplicate checks).
    fn booked_per_slot(&self) -> BTreeMap<String, usize> {
        let mut per_slot = BTreeMap::new();
        for a in self.appointments.values().flatten() {
            if a.status == "booked" {
                *per_slot.entry(a.slot.clone()).or_insert(0) += 1;
            }
        }
        per_slot
    }
}

/// Lists every difference, so a failure says what is wrong rather than dumping two states.
fn assert_same(actual: &UpstreamState, expected: &UpstreamState, what: &str) {
    fn diff<V: PartialEq + std::fmt::Debug>(
        kind: &str,
        actual: &BTreeMap<String, V>,
        expected: &BTreeMap<String, V>,
        out: &mut Vec<String>,
    ) {
        for (k, v) in expected {
            match actual.get(k) {
                Some(a) if a == v => {}
                a => out.push(format!("{kind} {k}: expected {v:?}, upstream has {a:?}")),
            }
        }
        for (k, a) in actual {
            if !expected.contains_key(k) {
                out.push(format!("{kind} {k}: not expected, upstream has {a:?}"));
            }
        }
    }
    let mut problems = Vec::new();
    diff(
        "Appointment",
        &actual.appointments,
        &expected.appointments,
        &mut problems,
    );
    diff("Slot", &actual.slots, &expected.slots, &mut problems);
    diff(
        "DocumentReference",
        &actual.notes,
        &expected.notes,
        &mut problems,
    );
    assert!(
        problems.is_empty(),
        "{what}: {} difference(s) upstream:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// No appointment twice: one per offline-change identifier, at most one booked per slot.
fn assert_no_duplicates(state: &UpstreamState, what: &str) {
    for (key, list) in &state.appointments {
        assert_eq!(
            list.len(),
            1,
            "{what}: {key} is upstream {} times",
            list.len()
        );
    }
    for (slot, n) in state.booked_per_slot() {
        assert_eq!(n, 1, "{what}: slot {slot} holds {n} booked appointments");
    }
    for (key, list) in &state.notes {
        assert_eq!(
            list.len(),
            1,
            "{what}: note {key} is upstream {} times",
            list.len()
        );
    }
}

fn base64_decode(data: &str) -> String {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let mut bytes = Vec::new();
    for chunk in data.as_bytes().chunks(4) {
        let digits: Vec<u8> = chunk.iter().copied().filter(|c| *c != b'=').collect();
        let n = digits
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, c)| n | (value(*c) << (18 - 6 * i)));
        for i in 0..digits.len().saturating_sub(1) {
            bytes.push((n >> (16 - 8 * i)) as u8);
        }
    }
    String::from_utf8(bytes).unwrap()
}

fn states(store: &Store) -> BTreeMap<String, JournalState> {
    store
        .journal(&[])
        .unwrap()
        .into_iter()
        .map(|e| (e.id, e.state))
        .collect()
}

fn worklist(store: &Store) -> BTreeMap<String, String> {
    store
        .worklist(true)
        .unwrap()
        .into_iter()
        .map(|w| (w.journal_id, w.kind))
        .collect()
}

/// The worklist item (open or done) for a journal entry.
fn work_item(store: &Store, journal_id: &str) -> lifeboat_store::WorkItem {
    store
        .worklist(true)
        .unwrap()
        .into_iter()
        .find(|w| w.journal_id == journal_id)
        .expect("on the worklist")
}

async fn writes_served(up: &TestUpstream) -> Vec<String> {
    up.stats().await.unwrap()["recent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] != "GET")
        .map(|r| format!("{} {}", r["method"], r["url"]))
        .collect()
}

async fn requests_served(up: &TestUpstream) -> u64 {
    up.stats().await.unwrap()["requests"].as_u64().unwrap()
}

// ---------------------------------------------------------------------------------------
// Offline work, and the test's own account of what it must become upstream
// ---------------------------------------------------------------------------------------

/// What the cache offers to work with at `offline_at`, split by whether it will have passed
/// by `reconcile_at`.
struct Pools {
    early_free: VecDeque<SlotView>,
    late_free: VecDeque<SlotView>,
    early_booked: VecDeque<AppointmentView>,
    late_booked: VecDeque<AppointmentView>,
    /// Today's appointments that have started (for did-not-attend).
    started_today: VecDeque<AppointmentView>,
    patients: Vec<String>,
    next_patient: usize,
}

impl Pools {
    fn new(store: &Store) -> Self {
        let now = offline_at();
        let r = reconcile_at();
        let free = store
            .free_slots(&SlotQuery {
                from: Some(now),
                to: Some(now + Duration::days(40)),
                ..SlotQuery::default()
            })
            .unwrap();
        let (early_free, late_free): (Vec<_>, Vec<_>) = free
            .into_iter()
            .filter(|s| s.start > now)
            .partition(|s| s.start <= r);
        let mut booked: Vec<AppointmentView> = store
            .ids(ResourceKind::Appointment)
            .unwrap()
            .iter()
            .filter_map(|id| store.appointment(id).unwrap())
            .filter(|a| a.status == "booked" && a.patient.is_some())
            .collect();
        booked.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        let today = |a: &AppointmentView| a.start.date_naive() == now.date_naive();
        let started_today: Vec<_> = booked
            .iter()
            .filter(|a| today(a) && a.start <= now)
            .cloned()
            .collect();
        let (early_booked, late_booked): (Vec<_>, Vec<_>) = booked
            .into_iter()
            .filter(|a| a.start > now)
            .partition(|a| a.start <= r);
        let patients = store
            .ids(ResourceKind::Patient)
            .unwrap()
            .into_iter()
            .filter(|id| !store.patient_brief(id).unwrap().unwrap().deceased)
            .collect();
        Self {
            early_free: early_free.into(),
            late_free: late_free.into(),
            early_booked: early_booked.into(),
            late_booked: late_booked.into(),
            started_today: started_today.into(),
            patients,
            next_patient: 0,
        }
    }

    fn early_slot(&mut self) -> SlotView {
        self.early_free
            .pop_front()
            .expect("a free slot that will have passed")
    }
    fn late_slot(&mut self) -> SlotView {
        self.late_free
            .pop_front()
            .expect("a free slot still ahead at reconciliation")
    }
    fn early_appointment(&mut self) -> AppointmentView {
        self.early_booked
            .pop_front()
            .expect("an appointment that will have passed")
    }
    fn late_appointment(&mut self) -> AppointmentView {
        self.late_booked
            .pop_front()
            .expect("an appointment still ahead at reconciliation")
    }
    fn patient(&mut self) -> String {
        self.next_patient += 1;
        self.patients[(self.next_patient * 7) % self.patients.len()].clone()
    }
}

/// What the offline changes must become, by the rules as the test states them:
/// - a booking (after any moves) still ahead at reconciliation is booked upstream once,
///   carrying its first journal id; one that has passed goes to the back-entry worklist;
///   one cancelled offline sends nothing; one marked arrived goes to the worklist;
/// - a cancellation of an upstream appointment still ahead cancels it (carrying the journal
///   id); one that has passed goes to the worklist;
/// - a move of an upstream appointment cancels the original and books the new slot (each
///   half by the rules above); if the original has passed, the whole move goes to the
///   worklist (the upstream cannot be told and the patient may have attended);
/// - arrived and did-not-attend marks go to the worklist (GP Connect cannot take them);
/// - a note becomes a DocumentReference carrying its journal id, and a worklist item.
#[derive(Default)]
struct Expected {
    /// Upstream appointment id -> the journal id that cancels it.
    cancelled: BTreeMap<String, String>,
    /// Booking identity (journal id) -> (slot, patient, start).
    booked: BTreeMap<String, (String, String, DateTime<Utc>)>,
    /// Note journal id -> (patient, text).
    notes: BTreeMap<String, (String, String)>,
    rows: BTreeMap<String, JournalState>,
    /// Journal id -> worklist kind.
    worklist: BTreeMap<String, String>,
}

enum End {
    Live,
    Cancelled,
    Arrived,
}

impl Expected {
    fn settle(&mut self, rows: &[String], state: JournalState) {
        for r in rows {
            self.rows.insert(r.clone(), state);
        }
    }

    fn add_work(&mut self, id: &str, kind: &str) {
        self.worklist.insert(id.to_string(), kind.to_string());
    }

    /// An offline booking and its later changes; `slot` is where it ended up.
    fn booking_chain(&mut self, rows: &[String], slot: &SlotView, patient: &str, end: End) {
        let identity = &rows[0];
        match end {
            End::Cancelled => self.settle(rows, JournalState::Superseded),
            End::Arrived => {
                self.settle(rows, JournalState::Superseded);
                self.add_work(identity, "past_change");
            }
            End::Live if slot.start > reconcile_at() => {
                self.settle(rows, JournalState::Applied);
                self.booked.insert(
                    identity.clone(),
                    (slot.id.clone(), patient.to_string(), slot.start),
                );
            }
            End::Live => {
                self.settle(rows, JournalState::Superseded);
                self.add_work(identity, "past_change");
            }
        }
    }

    fn cancellation(&mut self, row: &str, appointment: &AppointmentView) {
        if appointment.start > reconcile_at() {
            self.rows.insert(row.to_string(), JournalState::Applied);
            self.cancelled
                .insert(appointment.id.clone(), row.to_string());
        } else {
            self.rows.insert(row.to_string(), JournalState::Superseded);
            self.add_work(row, "past_change");
        }
    }

    /// A move of an upstream appointment (`rows[0]`) and later changes to the new booking.
    fn upstream_move(
        &mut self,
        rows: &[String],
        original: &AppointmentView,
        slot: &SlotView,
        end: End,
    ) {
        if original.start <= reconcile_at() {
            self.settle(rows, JournalState::Superseded);
            self.add_work(&rows[0], "past_change");
            return;
        }
        self.cancelled.insert(original.id.clone(), rows[0].clone());
        let patient = original.patient.as_ref().unwrap().id.clone();
        self.booking_chain(rows, slot, &patient, end);
    }

    fn mark(&mut self, row: &str) {
        self.rows.insert(row.to_string(), JournalState::Superseded);
        self.add_work(row, "past_change");
    }

    fn note(&mut self, row: &str, patient: &str, text: &str) {
        self.rows.insert(row.to_string(), JournalState::Applied);
        self.notes
            .insert(row.to_string(), (patient.to_string(), text.to_string()));
        self.add_work(row, "note");
    }

    /// The upstream as it was, with these changes made.
    fn upstream(&self, before: &UpstreamState) -> UpstreamState {
        let mut state = before.clone();
        for (appointment, row) in &self.cancelled {
            let a = &mut state
                .appointments
                .get_mut(appointment)
                .expect("a practice appointment")[0];
            a.status = "cancelled".into();
            a.markers.insert(format!("cancelled-by:{row}"));
            let slot = a.slot.clone();
            state.slots.insert(slot, "free".into());
        }
        for (identity, (slot, patient, start)) in &self.booked {
            state.appointments.insert(
                format!("lifeboat:{identity}"),
                vec![Appt {
                    status: "booked".into(),
                    slot: slot.clone(),
                    patient: patient.clone(),
                    start: *start,
                    markers: BTreeSet::from([identity.clone()]),
                }],
            );
            state.slots.insert(slot.clone(), "busy".into());
        }
        for (row, note) in &self.notes {
            state.notes.insert(row.clone(), vec![note.clone()]);
        }
        state
    }
}

/// The offline desk: every change succeeds (the booking rules are tested elsewhere).
struct Desk<'a> {
    store: &'a mut Store,
}

impl Desk<'_> {
    fn book(&mut self, slot: &SlotView, patient: &str) -> String {
        booking::book(
            self.store,
            RECEPTION,
            &BookRequest {
                slot_id: slot.id.clone(),
                patient_id: patient.to_string(),
                description: Some("Medication review".into()),
                comment: Some("Booked during the outage".into()),
            },
            offline_at(),
        )
        .unwrap_or_else(|e| panic!("book {}: {e}", slot.id))
        .journal
        .id
    }

    fn move_to(&mut self, appointment: &str, slot: &SlotView) -> String {
        booking::move_appointment(self.store, RECEPTION, appointment, &slot.id, offline_at())
            .unwrap_or_else(|e| panic!("move {appointment}: {e}"))
            .journal
            .id
    }

    fn cancel(&mut self, appointment: &str) -> String {
        booking::cancel(
            self.store,
            RECEPTION,
            appointment,
            "Patient phoned to cancel",
            offline_at(),
        )
        .unwrap_or_else(|e| panic!("cancel {appointment}: {e}"))
        .journal
        .id
    }

    fn mark(&mut self, appointment: &str, attendance: Attendance) -> String {
        booking::mark_attendance(self.store, RECEPTION, appointment, attendance, offline_at())
            .unwrap_or_else(|e| panic!("mark {appointment}: {e}"))
            .journal
            .id
    }

    fn note(&mut self, patient: &str, text: &str) -> String {
        booking::write_note(self.store, CLINICIAN, patient, None, text, offline_at())
            .unwrap()
            .journal_id
    }
}

/// How many of each kind of offline change to make.
#[derive(Clone, Copy)]
struct Mix {
    early_books: usize,
    late_books: usize,
    book_move: usize,
    book_move_from_early: usize,
    book_move_to_early: usize,
    book_move_move: usize,
    book_cancel: usize,
    book_move_cancel: usize,
    early_cancels: usize,
    late_cancels: usize,
    upstream_moves: usize,
    upstream_moves_from_early: usize,
    upstream_moves_to_early: usize,
    upstream_move_move: usize,
    upstream_move_cancel: usize,
    cancel_then_book_its_slot: usize,
    move_into_slot_freed_later: usize,
    move_into_slot_freed_by_a_move: usize,
    did_not_attend: usize,
    arrived: usize,
    book_arrived: usize,
    notes: usize,
}

impl Mix {
    /// 200 journal rows.
    const FULL: Self = Self {
        early_books: 2,
        late_books: 38,
        book_move: 10,
        book_move_from_early: 1,
        book_move_to_early: 1,
        book_move_move: 4,
        book_cancel: 12,
        book_move_cancel: 3,
        early_cancels: 4,
        late_cancels: 10,
        upstream_moves: 9,
        upstream_moves_from_early: 2,
        upstream_moves_to_early: 1,
        upstream_move_move: 3,
        upstream_move_cancel: 3,
        cancel_then_book_its_slot: 4,
        move_into_slot_freed_later: 2,
        move_into_slot_freed_by_a_move: 1,
        did_not_attend: 5,
        arrived: 5,
        book_arrived: 2,
        notes: 22,
    };

    /// One or two of each, for replaying many times.
    const SMALL: Self = Self {
        early_books: 1,
        late_books: 4,
        book_move: 2,
        book_move_from_early: 0,
        book_move_to_early: 0,
        book_move_move: 1,
        book_cancel: 1,
        book_move_cancel: 0,
        early_cancels: 1,
        late_cancels: 2,
        upstream_moves: 2,
        upstream_moves_from_early: 1,
        upstream_moves_to_early: 0,
        upstream_move_move: 0,
        upstream_move_cancel: 1,
        cancel_then_book_its_slot: 1,
        move_into_slot_freed_later: 1,
        move_into_slot_freed_by_a_move: 1,
        did_not_attend: 1,
        arrived: 1,
        book_arrived: 0,
        notes: 3,
    };
}

/// Makes the offline changes of `mix`, interleaved as a day at the desk would be, and
/// returns what they must become.
fn work_offline(store: &mut Store, mix: Mix) -> Expected {
    let mut pools = Pools::new(store);
    let mut x = Expected::default();
    let mut desk = Desk { store };
    let mut note_no = 0;
    let mut note = |desk: &mut Desk<'_>, pools: &mut Pools, x: &mut Expected| {
        note_no += 1;
        let patient = pools.patient();
        let text = format!(
            "Offline note {note_no}: BP 142/88, advised to recheck in 2 weeks. Allergy to penicillin confirmed – «rash»."
        );
        let id = desk.note(&patient, &text);
        x.note(&id, &patient, &text);
    };
    // Spread the notes through the day rather than all at the end.
    let notes_every = 200 / mix.notes.max(1);
    let mut since_note = 0;
    let mut maybe_note =
        |desk: &mut Desk<'_>, pools: &mut Pools, x: &mut Expected, made: &mut usize| {
            since_note += 1;
            if since_note >= notes_every && *made < mix.notes {
                since_note = 0;
                *made += 1;
                note(desk, pools, x);
            }
        };
    let mut notes_made = 0;

    for i in 0..mix.late_books.max(mix.early_books) {
        for early in [true, false] {
            if (early && i < mix.early_books) || (!early && i < mix.late_books) {
                let slot = if early {
                    pools.early_slot()
                } else {
                    pools.late_slot()
                };
                let patient = pools.patient();
                let id = desk.book(&slot, &patient);
                x.booking_chain(&[id], &slot, &patient, End::Live);
            }
        }
        maybe_note(&mut desk, &mut pools, &mut x, &mut notes_made);
    }
    let moves = [
        (mix.book_move, false, false),
        (mix.book_move_from_early, true, false),
        (mix.book_move_to_early, false, true),
    ];
    for (n, from_early, to_early) in moves {
        for _ in 0..n {
            let first = if from_early {
                pools.early_slot()
            } else {
                pools.late_slot()
            };
            let to = if to_early {
                pools.early_slot()
            } else {
                pools.late_slot()
            };
            let patient = pools.patient();
            let b = desk.book(&first, &patient);
            let m = desk.move_to(&b, &to);
            x.booking_chain(&[b, m], &to, &patient, End::Live);
            maybe_note(&mut desk, &mut pools, &mut x, &mut notes_made);
        }
    }
    for _ in 0..mix.book_move_move {
        let (s1, s2, s3) = (pools.late_slot(), pools.late_slot(), pools.late_slot());
        let patient = pools.patient();
        let b = desk.book(&s1, &patient);
        let m1 = desk.move_to(&b, &s2);
        let m2 = desk.move_to(&b, &s3);
        x.booking_chain(&[b, m1, m2], &s3, &patient, End::Live);
    }
    for i in 0..mix.book_cancel {
        let slot = if i == 0 && mix.early_books > 0 {
            pools.early_slot()
        } else {
            pools.late_slot()
        };
        let patient = pools.patient();
        let b = desk.book(&slot, &patient);
        let c = desk.cancel(&b);
        x.booking_chain(&[b, c], &slot, &patient, End::Cancelled);
        maybe_note(&mut desk, &mut pools, &mut x, &mut notes_made);
    }
    for _ in 0..mix.book_move_cancel {
        let (s1, s2) = (pools.late_slot(), pools.late_slot());
        let patient = pools.patient();
        let b = desk.book(&s1, &patient);
        let m = desk.move_to(&b, &s2);
        let c = desk.cancel(&b);
        x.booking_chain(&[b, m, c], &s2, &patient, End::Cancelled);
    }
    for i in 0..mix.early_cancels.max(mix.late_cancels) {
        for early in [true, false] {
            if (early && i < mix.early_cancels) || (!early && i < mix.late_cancels) {
                let a = if early {
                    pools.early_appointment()
                } else {
                    pools.late_appointment()
                };
                let c = desk.cancel(&a.id);
                x.cancellation(&c, &a);
            }
        }
        maybe_note(&mut desk, &mut pools, &mut x, &mut notes_made);
    }
    let upstream_moves = [
        (mix.upstream_moves, false, false),
        (mix.upstream_moves_from_early, true, false),
        (mix.upstream_moves_to_early, false, true),
    ];
    for (n, from_early, to_early) in upstream_moves {
        for _ in 0..n {
            let a = if from_early {
                pools.early_appointment()
            } else {
                pools.late_appointment()
            };
            let to = if to_early {
                pools.early_slot()
            } else {
                pools.late_slot()
            };
            let m = desk.move_to(&a.id, &to);
            x.upstream_move(&[m], &a, &to, End::Live);
            maybe_note(&mut desk, &mut pools, &mut x, &mut notes_made);
        }
    }
    for _ in 0..mix.upstream_move_move {
        let a = pools.late_appointment();
        let (s1, s2) = (pools.late_slot(), pools.late_slot());
        let m1 = desk.move_to(&a.id, &s1);
        let m2 = desk.move_to(&m1, &s2);
        x.upstream_move(&[m1, m2], &a, &s2, End::Live);
    }
    for _ in 0..mix.upstream_move_cancel {
        let a = pools.late_appointment();
        let s1 = pools.late_slot();
        let m = desk.move_to(&a.id, &s1);
        let c = desk.cancel(&m);
        x.upstream_move(&[m, c], &a, &s1, End::Cancelled);
    }
    // A slot freed by an offline cancellation, booked again offline.
    for _ in 0..mix.cancel_then_book_its_slot {
        let a = pools.late_appointment();
        let c = desk.cancel(&a.id);
        x.cancellation(&c, &a);
        let slot = desk
            .store
            .slot(a.slot_id.as_deref().unwrap())
            .unwrap()
            .unwrap();
        assert!(
            slot.available,
            "a slot cancelled offline is bookable offline"
        );
        let patient = pools.patient();
        let b = desk.book(&slot, &patient);
        x.booking_chain(&[b], &slot, &patient, End::Live);
        maybe_note(&mut desk, &mut pools, &mut x, &mut notes_made);
    }
    // A booking moved into a slot that a LATER change freed: the replay must not book the
    // new slot before the change that frees it.
    for _ in 0..mix.move_into_slot_freed_later {
        let first = pools.late_slot();
        let patient = pools.patient();
        let b = desk.book(&first, &patient);
        let a = pools.late_appointment();
        let c = desk.cancel(&a.id);
        x.cancellation(&c, &a);
        let freed = desk
            .store
            .slot(a.slot_id.as_deref().unwrap())
            .unwrap()
            .unwrap();
        let m = desk.move_to(&b, &freed);
        x.booking_chain(&[b, m], &freed, &patient, End::Live);
    }
    for _ in 0..mix.move_into_slot_freed_by_a_move {
        let first = pools.late_slot();
        let patient = pools.patient();
        let b = desk.book(&first, &patient);
        let a = pools.late_appointment();
        let to = pools.late_slot();
        let um = desk.move_to(&a.id, &to);
        x.upstream_move(&[um], &a, &to, End::Live);
        let freed = desk
            .store
            .slot(a.slot_id.as_deref().unwrap())
            .unwrap()
            .unwrap();
        let m = desk.move_to(&b, &freed);
        x.booking_chain(&[b, m], &freed, &patient, End::Live);
    }
    for _ in 0..mix.did_not_attend {
        let a = pools
            .started_today
            .pop_front()
            .expect("an appointment started today");
        let id = desk.mark(&a.id, Attendance::DidNotAttend);
        x.mark(&id);
    }
    for _ in 0..mix.arrived {
        let a = pools.early_appointment();
        let id = desk.mark(&a.id, Attendance::Arrived);
        x.mark(&id);
    }
    for _ in 0..mix.book_arrived {
        let slot = pools.early_slot();
        let patient = pools.patient();
        let b = desk.book(&slot, &patient);
        let m = desk.mark(&b, Attendance::Arrived);
        x.booking_chain(&[b, m], &slot, &patient, End::Arrived);
    }
    while notes_made < mix.notes {
        notes_made += 1;
        note(&mut desk, &mut pools, &mut x);
    }
    x
}

/// The journal row's chain identity: the first row of the offline booking it changes.
fn identity_of(store: &Store, id: &str) -> String {
    let e = store.journal_entry(id).unwrap().unwrap();
    match (e.target_type.as_deref(), e.target_id) {
        (Some("OfflineBooking"), Some(target)) => identity_of(store, &target),
        _ => e.id,
    }
}

/// Every row recorded as applied has its upstream write: the resource it names exists and
/// carries the row's (or its booking's) identifier.
async fn applied_rows_were_written(up: &TestUpstream, store: &Store, what: &str) {
    for e in store.journal(&[JournalState::Applied]).unwrap() {
        let outcome = e.outcome.clone().unwrap_or_default();
        let reference = outcome.split_whitespace().next().unwrap_or_default();
        let (status, resource) = up.fhir(Method::GET, reference, None).await.unwrap();
        assert_eq!(status, 200, "{what}: {} applied as {outcome:?}", e.id);
        let found = markers(&resource);
        let identity = identity_of(store, &e.id);
        assert!(
            found.contains(&e.id)
                || found.contains(&identity)
                || found.contains(&format!("cancelled-by:{}", e.id)),
            "{what}: {} is applied but {reference} does not carry it ({found:?})",
            e.id
        );
        if e.kind == JournalKind::Cancel && e.target_type.as_deref() == Some("Appointment") {
            assert_eq!(resource["status"], "cancelled", "{what}: {}", e.id);
        }
    }
}

// ---------------------------------------------------------------------------------------
// 1. Two hundred mixed offline changes
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_mixed_offline_changes_reach_the_upstream_exactly_as_expected() {
    let outage = Outage::start().await;
    let mut store = outage.cache.open();
    let expected = work_offline(&mut store, Mix::FULL);
    assert_eq!(
        store.journal(&[]).unwrap().len(),
        200,
        "the mix is 200 rows"
    );
    assert!(expected.rows.len() == 200);
    outage.up.set_clock(reconcile_at()).await.unwrap();

    // A dry run writes nothing anywhere and foresees no conflict.
    outage.up.reset_stats().await.unwrap();
    let journal_before = store.journal(&[]).unwrap();
    let client = upstream_client(&outage.up);
    let dry = Reconciler {
        upstream: &client,
        store: &mut store,
        now: reconcile_at(),
    }
    .run(true, &mut Quiet)
    .await
    .unwrap();
    assert!(dry.dry_run);
    assert_eq!(writes_served(&outage.up).await, Vec::<String>::new());
    assert_eq!(store.journal(&[]).unwrap(), journal_before);
    let foreseen: Vec<_> = dry
        .steps
        .iter()
        .filter(|s| matches!(s.result, StepResult::WouldConflict { .. }))
        .collect();
    assert!(
        foreseen.is_empty(),
        "the dry run foresees conflicts: {foreseen:#?}"
    );
    assert_eq!(
        dry.count(|r| matches!(r, StepResult::WouldApply)),
        expected.booked.len() + expected.cancelled.len() + expected.notes.len(),
        "steps that would write: {dry:#?}"
    );

    let report = run(&outage.up, &mut store, reconcile_at(), &mut Quiet)
        .await
        .unwrap();
    assert_eq!(report.stopped, None);
    assert_eq!(
        report.count(|r| matches!(r, StepResult::Conflict { .. })),
        0,
        "{report:#?}"
    );

    let after = outage.upstream_state().await;
    assert_same(
        &after,
        &expected.upstream(&outage.before),
        "after the replay",
    );
    assert_no_duplicates(&after, "after the replay");
    assert_eq!(states(&store), expected.rows, "journal rows");
    assert_eq!(worklist(&store), expected.worklist, "back-entry worklist");
    assert_eq!(store.unsettled_journal_count().unwrap(), 0);
    applied_rows_were_written(&outage.up, &store, "after the replay").await;
    let work = store.worklist(false).unwrap();
    for item in work.iter().filter(|w| w.kind == "note") {
        let note = store.journal_entry(&item.journal_id).unwrap().unwrap();
        assert!(item.summary.contains(&note.author), "{}", item.summary);
    }

    // A second run has nothing left to do and writes nothing.
    outage.up.reset_stats().await.unwrap();
    let again = run(&outage.up, &mut store, reconcile_at(), &mut Quiet)
        .await
        .unwrap();
    assert!(again.steps.is_empty(), "{again:#?}");
    assert_eq!(writes_served(&outage.up).await, Vec::<String>::new());
    assert_same(
        &outage.upstream_state().await,
        &expected.upstream(&outage.before),
        "after a second run",
    );
}

// ---------------------------------------------------------------------------------------
// 2. Killed at any point, run again: no duplicates, nothing lost
// ---------------------------------------------------------------------------------------

fn step_kind(step: &Step) -> &'static str {
    match step {
        Step::Book {
            replaces: Some(_), ..
        } => "book (move)",
        Step::Book { .. } => "book",
        Step::Cancel {
            part_of_move: true, ..
        } => "cancel (move)",
        Step::Cancel { .. } => "cancel",
        Step::Supersede { .. } => "supersede",
        Step::BackEntry { .. } => "back-entry",
        Step::FileNote { .. } => "note",
    }
}

fn event_name(event: &ReplayEvent<'_>) -> String {
    match event {
        ReplayEvent::Planned { steps } => format!("planned {steps} steps"),
        ReplayEvent::Applying { index, step } => format!("applying {index} ({})", step_kind(step)),
        ReplayEvent::UpstreamWritten { index } => format!("upstream written {index}"),
        ReplayEvent::Recorded { index } => format!("recorded {index}"),
    }
}

/// Lets everything run and remembers every event.
#[derive(Default)]
struct Events(Vec<String>);

impl ReplayObserver for Events {
    fn on(&mut self, event: ReplayEvent<'_>) -> bool {
        self.0.push(event_name(&event));
        true
    }
}

/// Stops the run at its `at`-th event (1-based), as a crash there would.
struct KillAt {
    at: usize,
    seen: usize,
}

impl KillAt {
    fn new(at: usize) -> Self {
        Self { at, seen: 0 }
    }
}

impl ReplayObserver for KillAt {
    fn on(&mut self, _: ReplayEvent<'_>) -> bool {
        self.seen += 1;
        self.seen != self.at
    }
}

/// The journal replayed without interruption on a fresh upstream: what every interrupted
/// replay must end up as.
struct Reference {
    upstream: UpstreamState,
    rows: BTreeMap<String, JournalState>,
    worklist: BTreeMap<String, String>,
    events: Vec<String>,
}

async fn reference_run(outage: &Outage, expected: &Expected) -> Reference {
    let cache = outage.cache.copy();
    let up = outage.fresh_upstream(reconcile_at());
    let mut store = cache.open();
    let mut events = Events::default();
    let report = run(&up, &mut store, reconcile_at(), &mut events)
        .await
        .unwrap();
    assert_eq!(report.stopped, None);
    let reference = Reference {
        upstream: outage.state_of(&up).await,
        rows: states(&store),
        worklist: worklist(&store),
        events: events.0,
    };
    assert_same(
        &reference.upstream,
        &expected.upstream(&outage.before),
        "the uninterrupted replay",
    );
    assert_eq!(
        reference.rows, expected.rows,
        "the uninterrupted replay's rows"
    );
    assert_eq!(reference.worklist, expected.worklist);
    reference
}

/// After a replay that was stopped and run again to the end: the same as the reference.
async fn assert_finished_like(
    outage: &Outage,
    up: &TestUpstream,
    store: &Store,
    reference: &Reference,
    what: &str,
) {
    let got = outage.state_of(up).await;
    assert_no_duplicates(&got, what);
    assert_same(&got, &reference.upstream, what);
    assert_eq!(states(store), reference.rows, "{what}: journal rows");
    assert_eq!(worklist(store), reference.worklist, "{what}: worklist");
    applied_rows_were_written(up, store, what).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_killed_at_any_point_and_run_again_sends_everything_exactly_once() {
    let outage = Outage::start().await;
    let expected = work_offline(&mut outage.cache.open(), Mix::SMALL);
    let reference = reference_run(&outage, &expected).await;

    // Points between an upstream write and its local record (the first of each kind of step,
    // then every other one), and every sixth other point (the first is the plan itself).
    let mut points = Vec::new();
    let mut kinds_killed_after_write = BTreeSet::new();
    let mut writes = 0;
    let mut step_kind_now = "";
    for (i, e) in reference.events.iter().enumerate() {
        if let Some(rest) = e.strip_prefix("applying ") {
            step_kind_now = rest.split_once(' ').map_or("", |(_, kind)| kind);
        }
        let chosen = if e.starts_with("upstream written") {
            writes += 1;
            kinds_killed_after_write.insert(step_kind_now) || writes % 2 == 0
        } else {
            i % 6 == 0
        };
        if chosen {
            points.push(i + 1);
        }
    }
    let after_write = points
        .iter()
        .filter(|p| reference.events[**p - 1].starts_with("upstream written"))
        .count();
    assert!(points.len() >= 20, "{} kill points", points.len());
    assert!(
        after_write >= 10,
        "{after_write} kill points after an upstream write"
    );
    for kind in [
        "(book)",
        "(book (move))",
        "(cancel)",
        "(cancel (move))",
        "(note)",
    ] {
        assert!(
            kinds_killed_after_write.contains(kind),
            "killed after a write of a {kind}"
        );
    }

    for (n, at) in points.iter().copied().enumerate() {
        let what = format!("killed at event {at} ({})", reference.events[at - 1]);
        let cache = outage.cache.copy();
        let up = outage.fresh_upstream(reconcile_at());
        {
            let mut store = cache.open();
            let result = run(&up, &mut store, reconcile_at(), &mut KillAt::new(at)).await;
            assert!(
                matches!(result, Err(ReconcileError::Interrupted)),
                "{what}: {result:?}"
            );
        } // the cache is closed, as by a crash; the next run opens it afresh
        if n % 4 == 1 {
            // A second crash, early in the re-run.
            let mut store = cache.open();
            let result = run(&up, &mut store, reconcile_at(), &mut KillAt::new(3)).await;
            assert!(
                matches!(result, Ok(_) | Err(ReconcileError::Interrupted)),
                "{what}, then again: {result:?}"
            );
        }
        let mut store = cache.open();
        let report = run(&up, &mut store, reconcile_at(), &mut Quiet)
            .await
            .unwrap_or_else(|e| panic!("{what}: the re-run failed: {e}"));
        assert_eq!(report.stopped, None, "{what}");
        assert_finished_like(&outage, &up, &store, &reference, &what).await;
    }
}

/// Stops the run right after its `nth` upstream write, before that write is recorded.
struct KillAfterWrite {
    nth: usize,
    seen: usize,
}

impl ReplayObserver for KillAfterWrite {
    fn on(&mut self, event: ReplayEvent<'_>) -> bool {
        if let ReplayEvent::UpstreamWritten { .. } = event {
            self.seen += 1;
            return self.seen != self.nth;
        }
        true
    }
}

/// A run that crashes just after its first upstream write, before recording it here.
async fn crash_after_first_write(up: &TestUpstream, store: &mut Store) {
    let crashed = run(
        up,
        store,
        reconcile_at(),
        &mut KillAfterWrite { nth: 1, seen: 0 },
    )
    .await;
    assert!(matches!(crashed, Err(ReconcileError::Interrupted)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_written_before_a_crash_is_not_back_entered_when_it_has_passed_by_the_rerun() {
    let outage = Outage::start().await;
    let mut store = outage.cache.open();
    let mut pools = Pools::new(&store);
    let today = |t: DateTime<Utc>| t.date_naive() == offline_at().date_naive();
    let slot = pools
        .late_free
        .iter()
        .find(|s| today(s.start))
        .cloned()
        .unwrap();
    let appointment = pools
        .late_booked
        .iter()
        .find(|a| today(a.start))
        .cloned()
        .unwrap();
    let patient = pools.patient();
    // The re-run happens late in the day, when both have passed.
    let later: DateTime<Utc> = "2024-07-19T16:45:00Z".parse().unwrap();
    assert!(slot.start < later && appointment.start < later);
    outage.up.set_clock(reconcile_at()).await.unwrap();

    // A booking written upstream, then a crash before it was recorded; re-run later.
    let booked = Desk { store: &mut store }.book(&slot, &patient);
    crash_after_first_write(&outage.up, &mut store).await;
    outage.up.set_clock(later).await.unwrap();
    run(&outage.up, &mut store, later, &mut Quiet)
        .await
        .unwrap();
    let entry = store.journal_entry(&booked).unwrap().unwrap();
    assert_eq!(entry.state, JournalState::Applied, "{entry:?}");
    assert!(
        !worklist(&store).contains_key(&booked),
        "a booking already upstream is not to be entered again by hand"
    );
    let state = outage.upstream_state().await;
    assert_eq!(state.appointments[&format!("lifeboat:{booked}")].len(), 1);

    // The same for a cancellation.
    outage.up.set_clock(reconcile_at()).await.unwrap();
    let cancelled = Desk { store: &mut store }.cancel(&appointment.id);
    crash_after_first_write(&outage.up, &mut store).await;
    outage.up.set_clock(later).await.unwrap();
    run(&outage.up, &mut store, later, &mut Quiet)
        .await
        .unwrap();
    let entry = store.journal_entry(&cancelled).unwrap().unwrap();
    assert_eq!(entry.state, JournalState::Applied, "{entry:?}");
    assert!(!worklist(&store).contains_key(&cancelled));
    let state = outage.upstream_state().await;
    let upstream = &state.appointments[&appointment.id][0];
    assert_eq!(upstream.status, "cancelled");
    assert!(
        upstream
            .markers
            .contains(&format!("cancelled-by:{cancelled}"))
    );
    assert_no_duplicates(&state, "after both re-runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_arrival_shows_until_its_back_entry_is_ticked_off() {
    let outage = Outage::start().await;
    let mut store = outage.cache.open();
    let mut pools = Pools::new(&store);
    let appointment = pools.early_appointment();
    let marked = Desk { store: &mut store }.mark(&appointment.id, Attendance::Arrived);
    run(&outage.up, &mut store, reconcile_at(), &mut Quiet)
        .await
        .unwrap();
    let shown = store.appointment(&appointment.id).unwrap().unwrap();
    assert_eq!(
        (shown.status.as_str(), shown.changed_offline),
        ("arrived", true),
        "still shown as marked while it waits to be entered by hand"
    );
    let item = work_item(&store, &marked);

    let tx = store.transaction().unwrap();
    assert!(
        tx.complete_work_item(item.id, "manager", reconcile_at())
            .unwrap()
    );
    tx.commit().unwrap();
    let shown = store.appointment(&appointment.id).unwrap().unwrap();
    assert_eq!(
        (shown.status.as_str(), shown.changed_offline),
        (appointment.status.as_str(), false),
        "the upstream's record is shown once the mark has been entered there"
    );
}

/// The dry run's step for the chain that begins with `first`.
async fn dry_run(up: &TestUpstream, store: &mut Store, first: &str) -> StepOutcome {
    let client = upstream_client(up);
    Reconciler {
        upstream: &client,
        store,
        now: reconcile_at(),
    }
    .run(true, &mut Quiet)
    .await
    .unwrap()
    .steps
    .into_iter()
    .find(|s| s.entries.first().map(String::as_str) == Some(first))
    .expect("a step for the chain")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_written_before_a_crash_then_cancelled_offline_is_cancelled_upstream() {
    let outage = Outage::start().await;
    let mut store = outage.cache.open();
    let mut pools = Pools::new(&store);
    let (slot, patient) = (pools.late_slot(), pools.patient());
    outage.up.set_clock(reconcile_at()).await.unwrap();

    // The booking reaches the upstream, then a crash before Lifeboat recorded it; the
    // patient phones to cancel before the manager runs reconciliation again.
    let booked = Desk { store: &mut store }.book(&slot, &patient);
    crash_after_first_write(&outage.up, &mut store).await;
    let cancelled = Desk { store: &mut store }.cancel(&booked);
    // The dry run says what the run will do, and writes nothing.
    let writes = writes_served(&outage.up).await.len();
    let preview = dry_run(&outage.up, &mut store, &booked).await;
    assert!(
        matches!(preview.result, StepResult::WouldApply),
        "{preview:?}"
    );
    assert!(preview.summary.contains("cancel it there"), "{preview:?}");
    assert_eq!(writes_served(&outage.up).await.len(), writes);
    run(&outage.up, &mut store, reconcile_at(), &mut Quiet)
        .await
        .unwrap();

    let state = outage.upstream_state().await;
    let upstream = &state.appointments[&format!("lifeboat:{booked}")];
    assert_eq!(upstream.len(), 1, "{upstream:?}");
    assert_eq!(upstream[0].status, "cancelled", "{upstream:?}");
    assert!(
        upstream[0]
            .markers
            .contains(&format!("cancelled-by:{cancelled}"))
    );
    assert_eq!(state.slots[&slot.id], "free", "the slot is offered again");
    for id in [&booked, &cancelled] {
        let entry = store.journal_entry(id).unwrap().unwrap();
        assert_eq!(entry.state, JournalState::Applied, "{entry:?}");
    }
    assert!(worklist(&store).is_empty());
    assert_no_duplicates(&state, "after the re-run");

    // Run again: nothing more is sent.
    let writes = writes_served(&outage.up).await.len();
    run(&outage.up, &mut store, reconcile_at(), &mut Quiet)
        .await
        .unwrap();
    assert_eq!(writes_served(&outage.up).await.len(), writes);

    // The same, but the practice marks the patient arrived upstream before the re-run: that
    // is not overwritten, and a person is asked to settle it.
    let (slot, patient) = (pools.late_slot(), pools.patient());
    let booked = Desk { store: &mut store }.book(&slot, &patient);
    crash_after_first_write(&outage.up, &mut store).await;
    let practice = Practice(&outage.up);
    let found = practice
        .read(&format!(
            "Appointment?identifier={OFFLINE_CHANGE_SYSTEM}|{booked}"
        ))
        .await;
    let mut appointment = found["entry"][0]["resource"].clone();
    appointment["status"] = json!("arrived");
    let id = appointment["id"].as_str().unwrap().to_string();
    practice
        .put(&format!("Appointment/{id}"), appointment)
        .await;
    Desk { store: &mut store }.cancel(&booked);
    let preview = dry_run(&outage.up, &mut store, &booked).await;
    assert!(
        matches!(preview.result, StepResult::BackEntry),
        "{preview:?}"
    );
    run(&outage.up, &mut store, reconcile_at(), &mut Quiet)
        .await
        .unwrap();
    let state = outage.upstream_state().await;
    assert_eq!(
        state.appointments[&format!("lifeboat:{booked}")][0].status,
        "arrived"
    );
    let item = work_item(&store, &booked);
    assert_eq!(item.kind, "manual");
    assert_eq!(item.patient_id.as_deref(), Some(patient.as_str()));
    assert!(
        item.summary.contains(&format!("Appointment/{id}")) && item.summary.contains("arrived"),
        "{item:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 3. Conflicts, each produced for real by changing the upstream during the outage
// ---------------------------------------------------------------------------------------

/// The practice's own system at work during the outage, through the upstream's API.
struct Practice<'a>(&'a TestUpstream);

impl Practice<'_> {
    async fn read(&self, path: &str) -> Value {
        let (status, body) = self.0.fhir(Method::GET, path, None).await.unwrap();
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn put(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.0.fhir(Method::PUT, path, Some(body)).await.unwrap();
        assert_eq!(status, 200, "PUT {path}: {answer}");
        answer
    }

    async fn delete(&self, path: &str) {
        let (status, answer) = self.0.fhir(Method::DELETE, path, None).await.unwrap();
        assert!(
            status == 200 || status == 204,
            "DELETE {path}: {status} {answer}"
        );
    }

    /// Books `slot` for `patient` (GP Connect rules apply: the slot becomes busy).
    async fn book(&self, slot: &SlotView, patient: &str) -> Value {
        let body = json!({
            "resourceType": "Appointment",
            "status": "booked",
            "description": "Booked at the front desk of the practice's own system",
            "slot": [{"reference": format!("Slot/{}", slot.id)}],
            "start": slot.start,
            "end": slot.end,
            "participant": [{"actor": {"reference": format!("Patient/{patient}")}, "status": "accepted"}],
        });
        let (status, answer) = self
            .0
            .fhir(Method::POST, "Appointment", Some(body))
            .await
            .unwrap();
        assert_eq!(status, 201, "the practice books {}: {answer}", slot.id);
        answer
    }

    async fn amend(&self, appointment: &str) -> Value {
        let mut a = self.read(&format!("Appointment/{appointment}")).await;
        a["description"] = json!("Changed by the practice during the outage");
        self.put(&format!("Appointment/{appointment}"), a).await
    }

    async fn cancel(&self, appointment: &str) -> Value {
        let mut a = self.read(&format!("Appointment/{appointment}")).await;
        a["status"] = json!("cancelled");
        a["cancelationReason"] = json!({"text": "Cancelled by the practice"});
        self.put(&format!("Appointment/{appointment}"), a).await
    }

    async fn change_patient(&self, id: &str, change: impl FnOnce(&mut Value)) {
        let mut p = self.read(&format!("Patient/{id}")).await;
        change(&mut p);
        self.put(&format!("Patient/{id}"), p).await;
    }
}

fn conflict_kind(store: &Store, id: &str) -> Option<ConflictKind> {
    reconcile::conflict_of(&store.journal_entry(id).unwrap().unwrap()).map(|c| c.kind)
}

fn record(store: &Store, id: &str) -> reconcile::ConflictRecord {
    reconcile::conflict_of(&store.journal_entry(id).unwrap().unwrap())
        .unwrap_or_else(|| panic!("{id} is not in conflict"))
}

/// The ConflictResolved audit entries for one offline change.
fn decisions(store: &Store, id: &str) -> Vec<lifeboat_store::AuditRecord> {
    store
        .audit_entries(&AuditFilter {
            subject: Some(format!("OfflineChange/{id}")),
            ..AuditFilter::default()
        })
        .unwrap()
        .into_iter()
        .filter(|a| a.action == "conflict_resolved")
        .collect()
}

/// Appointments upstream created by the offline change `id`.
async fn created_by(up: &TestUpstream, id: &str) -> Vec<Value> {
    read_all(
        up,
        &format!("Appointment?identifier={OFFLINE_CHANGE_SYSTEM}|{id}"),
    )
    .await
}

/// Free slots ahead, excluding those of one clinician (whose record may be deleted).
fn late_slots_not_of(pools: &mut Pools, practitioner: &str, n: usize) -> Vec<SlotView> {
    let picked: Vec<SlotView> = pools
        .late_free
        .iter()
        .filter(|s| {
            s.practitioner_id.as_deref() != Some(practitioner)
                && s.start.date_naive() > offline_at().date_naive()
        })
        .take(n)
        .cloned()
        .collect();
    pools
        .late_free
        .retain(|s| !picked.iter().any(|p| p.id == s.id));
    assert_eq!(picked.len(), n);
    picked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_conflict_is_produced_upstream_and_detected_without_overwriting() {
    let outage = Outage::start().await;
    let practice = Practice(&outage.up);
    let mut store = outage.cache.open();
    let mut pools = Pools::new(&store);
    // The clinician whose record will be deleted upstream, and everyone else's slots.
    let gone_clinician = pools.late_free[0].practitioner_id.clone().unwrap();
    let gone_clinicians_slot = pools
        .late_free
        .iter()
        .find(|s| s.practitioner_id.as_deref() == Some(gone_clinician.as_str()))
        .cloned()
        .unwrap();
    pools.late_free.retain(|s| s.id != gone_clinicians_slot.id);
    let slots = late_slots_not_of(&mut pools, &gone_clinician, 8);
    let patients: Vec<String> = (0..8).map(|_| pools.patient()).collect();
    let appointments: Vec<AppointmentView> = (0..5).map(|_| pools.late_appointment()).collect();
    let someone_else = pools.patient();

    // Offline, at the desk.
    let mut desk = Desk { store: &mut store };
    let taken = desk.book(&slots[0], &patients[0]);
    let slot_deleted = desk.book(&slots[1], &patients[1]);
    let merged = desk.book(&slots[2], &patients[2]);
    let deceased = desk.book(&slots[3], &patients[3]);
    let deregistered = desk.book(&slots[4], &patients[4]);
    let patient_deleted = desk.book(&slots[5], &patients[5]);
    let clinician_deleted = desk.book(&gone_clinicians_slot, &patients[6]);
    let changed = desk.cancel(&appointments[0].id);
    let changed_move = desk.move_to(&appointments[1].id, &slots[6]);
    let cancelled_upstream = desk.cancel(&appointments[2].id);
    let deleted = desk.cancel(&appointments[3].id);
    let fine = desk.book(&slots[7], &patients[7]);

    // Meanwhile, upstream.
    let in_the_way = practice.book(&slots[0], &someone_else).await;
    practice.delete(&format!("Slot/{}", slots[1].id)).await;
    practice
        .change_patient(&patients[2], |p| {
            p["link"] = json!([{"other": {"reference": format!("Patient/{someone_else}")}, "type": "replaced-by"}]);
        })
        .await;
    practice
        .change_patient(&patients[3], |p| {
            p["deceasedDateTime"] = json!("2024-07-19T07:15:00Z")
        })
        .await;
    practice
        .change_patient(&patients[4], |p| p["active"] = json!(false))
        .await;
    practice.delete(&format!("Patient/{}", patients[5])).await;
    practice
        .delete(&format!("Practitioner/{gone_clinician}"))
        .await;
    let amended = practice.amend(&appointments[0].id).await;
    let amended_moved = practice.amend(&appointments[1].id).await;
    let cancelled_there = practice.cancel(&appointments[2].id).await;
    practice
        .delete(&format!("Appointment/{}", appointments[3].id))
        .await;
    let before_run = outage.upstream_state().await;

    // The dry run foresees the same conflicts, writing nothing.
    outage.up.reset_stats().await.unwrap();
    let client = upstream_client(&outage.up);
    let dry = Reconciler {
        upstream: &client,
        store: &mut store,
        now: offline_at(),
    }
    .run(true, &mut Quiet)
    .await
    .unwrap();
    assert_eq!(writes_served(&outage.up).await, Vec::<String>::new());
    let foreseen = |id: &str| {
        dry.steps
            .iter()
            .find(|s| s.entries.first().map(String::as_str) == Some(id))
            .map(|s| s.result.clone())
    };

    let report = run(&outage.up, &mut store, offline_at(), &mut Quiet)
        .await
        .unwrap();
    assert_eq!(report.stopped, None);
    let cases = [
        (&taken, ConflictKind::SlotTaken),
        (&slot_deleted, ConflictKind::SlotGone),
        (&merged, ConflictKind::PatientMerged),
        (&deceased, ConflictKind::PatientDeceased),
        (&deregistered, ConflictKind::PatientDeregistered),
        (&patient_deleted, ConflictKind::PatientGone),
        (&clinician_deleted, ConflictKind::PractitionerGone),
        (&changed, ConflictKind::AppointmentChanged),
        (&changed_move, ConflictKind::AppointmentChanged),
        (
            &cancelled_upstream,
            ConflictKind::AppointmentCancelledUpstream,
        ),
        (&deleted, ConflictKind::AppointmentGone),
    ];
    for (id, kind) in &cases {
        assert_eq!(conflict_kind(&store, id), Some(*kind), "{kind:?}");
        assert_eq!(
            foreseen(id),
            Some(StepResult::WouldConflict { kind: *kind }),
            "the dry run foresees {kind:?}"
        );
        let r = record(&store, id);
        assert!(
            !r.summary.is_empty() && r.ours.is_object(),
            "{kind:?}: {r:?}"
        );
        assert!(!r.kind.choices().is_empty());
    }
    assert_eq!(
        store.journal_entry(&fine).unwrap().unwrap().state,
        JournalState::Applied
    );
    // Both sides: what is in the way upstream is shown beside ours.
    assert_eq!(
        record(&store, &taken).upstream.unwrap()["id"],
        in_the_way["id"]
    );
    assert_eq!(
        record(&store, &changed).upstream.unwrap()["meta"]["versionId"],
        amended["meta"]["versionId"]
    );
    assert_eq!(
        record(&store, &cancelled_upstream).upstream.unwrap()["status"],
        "cancelled"
    );
    assert_eq!(
        record(&store, &deceased).upstream.unwrap()["id"],
        json!(patients[3])
    );
    assert_eq!(record(&store, &taken).ours["slot_id"], json!(slots[0].id));

    // Nothing the practice did was overwritten, and no conflicted change reached the upstream.
    let after = outage.upstream_state().await;
    let mut expected = before_run.clone();
    expected.appointments.insert(
        format!("lifeboat:{fine}"),
        vec![Appt {
            status: "booked".into(),
            slot: slots[7].id.clone(),
            patient: patients[7].clone(),
            start: slots[7].start,
            markers: BTreeSet::from([fine.clone()]),
        }],
    );
    expected.slots.insert(slots[7].id.clone(), "busy".into());
    assert_same(&after, &expected, "after the run with conflicts");
    assert_eq!(
        practice
            .read(&format!("Appointment/{}", appointments[0].id))
            .await["meta"]["versionId"],
        amended["meta"]["versionId"]
    );
    assert_eq!(
        practice
            .read(&format!("Appointment/{}", appointments[1].id))
            .await["meta"]["versionId"],
        amended_moved["meta"]["versionId"],
        "a move whose cancellation conflicted does not cancel the original"
    );
    assert!(
        created_by(&outage.up, &changed_move).await.is_empty(),
        "nor book the new slot: the patient would have two appointments"
    );
    assert_eq!(
        practice
            .read(&format!("Appointment/{}", appointments[2].id))
            .await["cancelationReason"],
        cancelled_there["cancelationReason"]
    );

    // A second run leaves the conflicts waiting for a decision and sends nothing.
    outage.up.reset_stats().await.unwrap();
    run(&outage.up, &mut store, offline_at(), &mut Quiet)
        .await
        .unwrap();
    assert_eq!(writes_served(&outage.up).await, Vec::<String>::new());
    for (id, kind) in &cases {
        assert_eq!(conflict_kind(&store, id), Some(*kind));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_location_is_a_conflict_for_the_bookings_there() {
    let outage = Outage::start().await;
    let mut store = outage.cache.open();
    let mut pools = Pools::new(&store);
    let slot = pools.late_slot();
    let patient = pools.patient();
    let booked = Desk { store: &mut store }.book(&slot, &patient);
    Practice(&outage.up)
        .delete(&format!("Location/{}", slot.location_id.clone().unwrap()))
        .await;
    run(&outage.up, &mut store, offline_at(), &mut Quiet)
        .await
        .unwrap();
    assert_eq!(
        conflict_kind(&store, &booked),
        Some(ConflictKind::LocationGone)
    );
    assert!(created_by(&outage.up, &booked).await.is_empty());
}

// ---------------------------------------------------------------------------------------
// Each resolution choice
// ---------------------------------------------------------------------------------------

/// An offline booking whose slot the practice took meanwhile, after one run.
async fn slot_taken(outage: &Outage, store: &mut Store) -> (String, SlotView, Value) {
    let mut pools = Pools::new(store);
    let slot = pools.late_slot();
    let (ours, theirs) = (pools.patient(), pools.patient());
    let id = Desk { store }.book(&slot, &ours);
    let in_the_way = Practice(&outage.up).book(&slot, &theirs).await;
    run(&outage.up, store, offline_at(), &mut Quiet)
        .await
        .unwrap();
    assert_eq!(conflict_kind(store, &id), Some(ConflictKind::SlotTaken));
    (id, slot, in_the_way)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeping_the_upstream_needs_a_reason_and_is_audited() {
    let outage = Outage::start().await;
    let mut store = outage.cache.open();
    let (id, _, in_the_way) = slot_taken(&outage, &mut store).await;
    let before = outage.upstream_state().await;

    for reason in [None, Some("   ")] {
        let refused = resolve(
            &outage.up,
            &mut store,
            offline_at(),
            &id,
            decision(Choice::KeepUpstream, reason),
        )
        .await;
        assert!(
            matches!(refused, Err(ReconcileError::ReasonRequired)),
            "{refused:?}"
        );
    }
    let not_offered = resolve(
        &outage.up,
        &mut store,
        offline_at(),
        &id,
        decision(Choice::CancelAnyway, Some("x")),
    )
    .await;
    assert!(
        matches!(not_offered, Err(ReconcileError::ChoiceNotOffered(_))),
        "{not_offered:?}"
    );
    assert_eq!(
        conflict_kind(&store, &id),
        Some(ConflictKind::SlotTaken),
        "still waiting"
    );
    assert!(
        decisions(&store, &id).is_empty(),
        "a refused decision is not recorded as made"
    );

    let entry = resolve(
        &outage.up,
        &mut store,
        offline_at(),
        &id,
        decision(
            Choice::KeepUpstream,
            Some("Patient rebooked by phone for next week"),
        ),
    )
    .await
    .unwrap();
    assert_eq!(entry.state, JournalState::Discarded);
    let audit = decisions(&store, &id);
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].actor.as_str(), audit[0].workstation.as_str()),
        (MANAGER_USER, MANAGER_DESK)
    );
    assert!(
        audit[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("Patient rebooked by phone"),
        "{audit:?}"
    );
    // The offline booking no longer holds the slot locally; the upstream is as the practice left it.
    assert!(store.appointment(&id).unwrap().is_none());
    assert_same(
        &outage.upstream_state().await,
        &before,
        "after keeping the upstream",
    );
    assert_eq!(
        Practice(&outage.up)
            .read(&format!(
                "Appointment/{}",
                in_the_way["id"].as_str().unwrap()
            ))
            .await["status"],
        "booked"
    );
    let again = resolve(
        &outage.up,
        &mut store,
        offline_at(),
        &id,
        decision(Choice::KeepUpstream, Some("again")),
    )
    .await;
    assert!(
        matches!(again, Err(ReconcileError::NotInConflict)),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebooking_into_the_nearest_free_slot_books_exactly_once() {
    let outage = Outage::start().await;
    let mut store = outage.cache.open();
    let (id, slot, _) = slot_taken(&outage, &mut store).await;
    let client = upstream_client(&outage.up);
    let nearest = reconcile::nearest_free_slots(&client, slot.start, 5)
        .await
        .unwrap();
    assert!(nearest.len() >= 2);
    let starts: Vec<DateTime<Utc>> = nearest
        .iter()
        .map(|s| serde_json::from_value(s["start"].clone()).unwrap())
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1]) && starts[0] >= slot.start,
        "nearest first"
    );

    // Into a slot the practice takes first: a new conflict, nothing booked.
    let contested: SlotView = store
        .slot(nearest[1]["id"].as_str().unwrap())
        .unwrap()
        .unwrap();
    Practice(&outage.up)
        .book(&contested, &Pools::new(&store).patient())
        .await;
    let refused = resolve(
        &outage.up,
        &mut store,
        offline_at(),
        &id,
        Decision {
            choice: Choice::Rebook,
            slot_id: Some(contested.id.clone()),
            reason: Some("next free".into()),
        },
    )
    .await;
    assert!(
        matches!(refused, Err(ReconcileError::ChoiceNotOffered(_))),
        "{refused:?}"
    );
    assert_eq!(conflict_kind(&store, &id), Some(ConflictKind::SlotTaken));
    assert!(created_by(&outage.up, &id).await.is_empty());

    let chosen = nearest[0]["id"].as_str().unwrap().to_string();
    let entry = resolve(
        &outage.up,
        &mut store,
        offline_at(),
        &id,
        Decision {
            choice: Choice::Rebook,
            slot_id: Some(chosen.clone()),
            reason: Some("nearest free slot".into()),
        },
    )
    .await
    .unwrap();
    assert_eq!(entry.state, JournalState::Applied);
    let created = created_by(&outage.up, &id).await;
    assert_eq!(created.len(), 1, "exactly one appointment upstream");
    assert_eq!(
        created[0]["slot"][0]["reference"],
        json!(format!("Slot/{chosen}"))
    );
    assert_eq!(created[0]["status"], "booked");
    assert_eq!(
        entry.outcome.as_deref(),
        Some(format!("Appointment/{}", created[0]["id"].as_str().unwrap()).as_str())
    );
    assert_eq!(
        Practice(&outage.up).read(&format!("Slot/{chosen}")).await["status"],
        "busy"
    );
    assert_eq!(decisions(&store, &id).len(), 1);
    // Nothing left to do, and nothing booked twice by a further run.
    run(&outage.up, &mut store, offline_at(), &mut Quiet)
        .await
        .unwrap();
    assert_eq!(created_by(&outage.up, &id).await.len(), 1);
    assert_no_duplicates(&outage.upstream_state().await, "after re-booking");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_waits_for_the_upstream_to_be_put_right_then_applies() {
    let outage = Outage::start().await;
    let practice = Practice(&outage.up);
    let mut store = outage.cache.open();
    let mut pools = Pools::new(&store);
    let slot = pools.late_slot();
    let patient = pools.patient();
    let id = Desk { store: &mut store }.book(&slot, &patient);
    practice
        .change_patient(&patient, |p| p["active"] = json!(false))
        .await;
    run(&outage.up, &mut store, offline_at(), &mut Quiet)
        .await
        .unwrap();
    assert_eq!(
        conflict_kind(&store, &id),
        Some(ConflictKind::PatientDeregistered)
    );

    let entry = resolve(
        &outage.up,
        &mut store,
        offline_at(),
        &id,
        decision(Choice::Retry, Some("checking registration")),
    )
    .await
    .unwrap();
    assert_eq!(entry.state, JournalState::Pending);
    // Not yet put right: the same conflict again, nothing booked.
    run(&outage.up, &mut store, offline_at(), &mut Quiet)
        .await
        .unwrap();
    assert_eq!(
        conflict_kind(&store, &id),
        Some(ConflictKind::PatientDeregistered)
    );
    assert!(created_by(&outage.up, &id).await.is_empty());

    resolve(
        &outage.up,
        &mut store,
        offline_at(),
        &id,
        decision(Choice::Retry, Some("re-registered today")),
    )
    .await
    .unwrap();
    practice
        .change_patient(&patient, |p| p["active"] = json!(true))
        .await;
    run(&outage.up, &mut store, offline_at(), &mut Quiet)
        .await
        .unwrap();
    assert_eq!(
        store.journal_entry(&id).unwrap().unwrap().state,
        JournalState::Applied
    );
    let created = created_by(&outage.up, &id).await;
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0]["slot"][0]["reference"],
        json!(format!("Slot/{}", slot.id))
    );
    let audit = decisions(&store, &id);
    assert_eq!(audit.len(), 2);
    assert!(
        audit[1]
            .detail
            .as_deref()
            .unwrap()
            .contains("re-registered today")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_anyway_cancels_the_appointment_as_it_now_is_and_completes_a_move() {
    let outage = Outage::start().await;
    let practice = Practice(&outage.up);
    let mut store = outage.cache.open();
    let mut pools = Pools::new(&store);
    let (a, b) = (pools.late_appointment(), pools.late_appointment());
    let to = pools.late_slot();
    let mut desk = Desk { store: &mut store };
    let cancel = desk.cancel(&a.id);
    let moved = desk.move_to(&b.id, &to);
    practice.amend(&a.id).await;
    practice.amend(&b.id).await;
    run(&outage.up, &mut store, offline_at(), &mut Quiet)
        .await
        .unwrap();
    assert_eq!(
        conflict_kind(&store, &cancel),
        Some(ConflictKind::AppointmentChanged)
    );
    assert_eq!(
        conflict_kind(&store, &moved),
        Some(ConflictKind::AppointmentChanged)
    );

    let entry = resolve(
        &outage.up,
        &mut store,
        offline_at(),
        &cancel,
        decision(Choice::CancelAnyway, Some("patient confirmed by phone")),
    )
    .await
    .unwrap();
    assert_eq!(entry.state, JournalState::Applied);
    let now_a = practice.read(&format!("Appointment/{}", a.id)).await;
    assert_eq!(now_a["status"], "cancelled");
    assert_eq!(
        now_a["description"], "Changed by the practice during the outage",
        "the practice's change is kept"
    );
    assert!(markers(&now_a).contains(&format!("cancelled-by:{cancel}")));
    assert_eq!(
        practice
            .read(&format!("Slot/{}", a.slot_id.clone().unwrap()))
            .await["status"],
        "free"
    );

    // The move: the original cancelled as it now is, and the new slot booked, once.
    let entry = resolve(
        &outage.up,
        &mut store,
        offline_at(),
        &moved,
        decision(Choice::CancelAnyway, None),
    )
    .await
    .unwrap();
    assert_eq!(entry.state, JournalState::Applied, "{entry:?}");
    let now_b = practice.read(&format!("Appointment/{}", b.id)).await;
    assert_eq!(now_b["status"], "cancelled");
    let created = created_by(&outage.up, &moved).await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(
        created[0]["slot"][0]["reference"],
        json!(format!("Slot/{}", to.id))
    );
    assert_eq!(
        created[0]["participant"][0]["actor"]["reference"],
        json!(format!("Patient/{}", b.patient.unwrap().id))
    );
    assert_eq!(
        decisions(&store, &cancel).len() + decisions(&store, &moved).len(),
        2
    );
    run(&outage.up, &mut store, offline_at(), &mut Quiet)
        .await
        .unwrap();
    assert_eq!(created_by(&outage.up, &moved).await.len(), 1);
    assert_eq!(store.unsettled_journal_count().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_handling_puts_the_change_on_the_worklist() {
    let outage = Outage::start().await;
    let mut store = outage.cache.open();
    let a = Pools::new(&store).late_appointment();
    let id = Desk { store: &mut store }.cancel(&a.id);
    Practice(&outage.up)
        .delete(&format!("Appointment/{}", a.id))
        .await;
    run(&outage.up, &mut store, offline_at(), &mut Quiet)
        .await
        .unwrap();
    assert_eq!(
        conflict_kind(&store, &id),
        Some(ConflictKind::AppointmentGone)
    );
    outage.up.reset_stats().await.unwrap();
    let entry = resolve(
        &outage.up,
        &mut store,
        offline_at(),
        &id,
        decision(Choice::Manual, Some("ask the practice what happened")),
    )
    .await
    .unwrap();
    assert_eq!(entry.state, JournalState::Superseded);
    assert_eq!(writes_served(&outage.up).await, Vec::<String>::new());
    let item = store
        .worklist(false)
        .unwrap()
        .into_iter()
        .find(|w| w.journal_id == id)
        .expect("a worklist item");
    assert_eq!(item.kind, "manual");
    assert!(
        item.summary.contains("ask the practice what happened"),
        "{}",
        item.summary
    );
    assert_eq!(decisions(&store, &id).len(), 1);
    // Local overlay settled: the appointment no longer shows as cancelled offline.
    assert!(
        store
            .appointment(&a.id)
            .unwrap()
            .is_none_or(|v| !v.changed_offline)
    );
}

// ---------------------------------------------------------------------------------------
// 4. Upstream faults in the middle of a replay
// ---------------------------------------------------------------------------------------

/// Sets a fault on the upstream just before step `at` is applied.
struct FaultAt<'a> {
    up: &'a TestUpstream,
    at: usize,
    fault: Value,
}

impl ReplayObserver for FaultAt<'_> {
    fn on(&mut self, event: ReplayEvent<'_>) -> bool {
        if let ReplayEvent::Applying { index, .. } = event
            && index == self.at
        {
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(self.up.fault(self.fault.clone()))
            })
            .unwrap();
        }
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_faults_mid_replay_leave_entries_retryable_and_a_rerun_finishes_once() {
    let outage = Outage::start().await;
    let expected = work_offline(&mut outage.cache.open(), Mix::SMALL);
    let reference = reference_run(&outage, &expected).await;
    let steps = reconcile::plan(&outage.cache.open().journal(&[]).unwrap(), reconcile_at());
    let nth = |n: usize, f: &dyn Fn(&Step) -> bool| {
        steps
            .iter()
            .enumerate()
            .filter(|(_, s)| f(s))
            .nth(n)
            .map(|(i, _)| i)
            .unwrap()
    };
    let book = nth(2, &|s| matches!(s, Step::Book { replaces: None, .. }));
    let cancel = nth(1, &|s| {
        matches!(
            s,
            Step::Cancel {
                part_of_move: false,
                ..
            }
        )
    });
    let move_booking = nth(0, &|s| {
        matches!(
            s,
            Step::Book {
                replaces: Some(_),
                ..
            }
        )
    });
    let note = nth(1, &|s| matches!(s, Step::FileNote { .. }));
    let appointments = || json!("/Appointment");
    // (what, step, fault, whether the faulted write reaches the upstream anyway)
    let cases = [
        (
            "503 on a booking",
            book,
            json!({"mode": "error", "status": 503, "match": appointments()}),
            false,
        ),
        (
            "hang on a booking",
            book,
            json!({"mode": "hang", "match": appointments()}),
            false,
        ),
        (
            "dropped connection on a booking",
            book,
            json!({"mode": "drop", "match": appointments()}),
            true,
        ),
        (
            "malformed answer to a booking",
            book,
            json!({"mode": "malformed", "match": appointments()}),
            true,
        ),
        (
            "503 on a cancellation",
            cancel,
            json!({"mode": "error", "status": 503, "match": appointments()}),
            false,
        ),
        (
            "dropped connection on a cancellation",
            cancel,
            json!({"mode": "drop", "match": appointments()}),
            true,
        ),
        (
            "malformed answer to a cancellation",
            cancel,
            json!({"mode": "malformed", "match": appointments()}),
            true,
        ),
        (
            "503 on a move's new booking",
            move_booking,
            json!({"mode": "error", "status": 503, "match": appointments()}),
            false,
        ),
        (
            "dropped connection on a note",
            note,
            json!({"mode": "drop", "match": "/DocumentReference"}),
            true,
        ),
    ];
    for (what, at, fault, written_anyway) in cases {
        let cache = outage.cache.copy();
        let up = outage.fresh_upstream(reconcile_at());
        let mut store = cache.open();
        let step = &steps[at];
        let report = run(
            &up,
            &mut store,
            reconcile_at(),
            &mut FaultAt { up: &up, at, fault },
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
        // The client has given up on a hung write: heal only once the server has seen it
        // go, or healing would carry the abandoned write out.
        up.until_nothing_hangs(std::time::Duration::from_secs(5))
            .await
            .unwrap();
        up.heal().await.unwrap();
        assert!(
            report.stopped.is_some(),
            "{what}: the run stops at the failing step"
        );
        assert!(
            matches!(
                report.steps.last().unwrap().result,
                StepResult::Failed { .. }
            ),
            "{what}: {:?}",
            report.steps.last()
        );

        // The failing step's rows are retryable, the later ones untouched.
        for id in step.entries() {
            let e = store.journal_entry(id).unwrap().unwrap();
            assert_eq!(e.state, JournalState::Failed, "{what}: {e:?}");
            assert!(
                e.outcome.as_deref().unwrap().starts_with("retryable"),
                "{what}: {e:?}"
            );
        }
        for later in &steps[at + 1..] {
            for id in later.entries() {
                let state = store.journal_entry(id).unwrap().unwrap().state;
                assert_eq!(state, JournalState::Pending, "{what}: a later row {id}");
            }
        }
        // Nothing recorded as applied without its upstream write, nothing written twice,
        // and the failing write reached the upstream only when the fault let it through.
        applied_rows_were_written(&up, &store, what).await;
        let now_upstream = outage.state_of(&up).await;
        assert_no_duplicates(&now_upstream, what);
        let first = step.entries()[0].to_string();
        let written = match step {
            Step::Book { identity, .. } => now_upstream
                .appointments
                .contains_key(&format!("lifeboat:{identity}")),
            Step::Cancel { appointment_id, .. } => now_upstream.appointments[appointment_id][0]
                .markers
                .contains(&format!("cancelled-by:{first}")),
            Step::FileNote { entry, .. } => now_upstream.notes.contains_key(entry),
            _ => unreachable!(),
        };
        assert_eq!(
            written, written_anyway,
            "{what}: the failing write upstream"
        );
        if let Step::Book {
            replaces: Some(original),
            ..
        } = step
        {
            assert_eq!(
                now_upstream.appointments[original][0].status, "cancelled",
                "{what}: the move's first half is done and recorded upstream"
            );
        }

        // Healed: a re-run finishes, with everything exactly once.
        let report = run(&up, &mut store, reconcile_at(), &mut Quiet)
            .await
            .unwrap();
        assert_eq!(report.stopped, None, "{what}");
        assert_finished_like(&outage, &up, &store, &reference, what).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_that_passes_is_retried_within_the_run_without_a_duplicate() {
    let outage = Outage::start().await;
    let expected = work_offline(&mut outage.cache.open(), Mix::SMALL);
    let reference = reference_run(&outage, &expected).await;
    let steps = reconcile::plan(&outage.cache.open().journal(&[]).unwrap(), reconcile_at());
    let book = steps
        .iter()
        .position(|s| matches!(s, Step::Book { .. }))
        .unwrap();
    // The booking is committed, its answer cut off once: the retry finds it by its identifier.
    let cache = outage.cache.copy();
    let up = outage.fresh_upstream(reconcile_at());
    let mut store = cache.open();
    let fault = json!({"mode": "drop", "count": 1, "match": "/Appointment"});
    let report = run(
        &up,
        &mut store,
        reconcile_at(),
        &mut FaultAt {
            up: &up,
            at: book,
            fault,
        },
    )
    .await
    .unwrap();
    assert_eq!(report.stopped, None);
    let posts = up.stats().await.unwrap()["recent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST" && r["fault"].is_string())
        .count();
    assert_eq!(posts, 1, "one booking was cut off after it was committed");
    assert_finished_like(
        &outage,
        &up,
        &store,
        &reference,
        "a dropped answer, retried",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// 5. A drill never reaches the upstream
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drills_journal_can_never_be_replayed_upstream() {
    let outage = Outage::start().await;
    let mut store = outage.cache.open();
    // A real conflict waiting in the cache, and more offline work...
    let (conflicted, slot, _) = slot_taken(&outage, &mut store).await;
    work_offline(&mut store, Mix::SMALL);
    // ...copied into a drill, as the desk starts one.
    let drill = outage.cache.copy();
    let mut drill_store = drill.open();
    {
        let tx = drill_store.transaction().unwrap();
        tx.set_setting(DRILL_SETTING, "1").unwrap();
        tx.commit().unwrap();
    }
    let practice_slot = Pools::new(&drill_store).late_slot();
    let patient = Pools::new(&drill_store).patient();
    Desk {
        store: &mut drill_store,
    }
    .book(&practice_slot, &patient);
    let journal = drill_store.journal(&[]).unwrap();
    outage.up.reset_stats().await.unwrap();

    for dry_run in [false, true] {
        let client = upstream_client(&outage.up);
        let result = Reconciler {
            upstream: &client,
            store: &mut drill_store,
            now: reconcile_at(),
        }
        .run(dry_run, &mut Quiet)
        .await;
        assert!(
            matches!(result, Err(ReconcileError::Drill)),
            "dry run {dry_run}: {result:?}"
        );
    }
    let nearest = store
        .free_slots(&SlotQuery {
            from: Some(slot.start),
            limit: 1,
            ..SlotQuery::default()
        })
        .unwrap();
    for d in [
        Decision {
            choice: Choice::Rebook,
            slot_id: Some(nearest[0].id.clone()),
            reason: None,
        },
        decision(Choice::Retry, None),
        decision(Choice::KeepUpstream, Some("practice")),
    ] {
        let result = resolve(&outage.up, &mut drill_store, reconcile_at(), &conflicted, d).await;
        assert!(matches!(result, Err(ReconcileError::Drill)), "{result:?}");
    }
    assert_eq!(
        requests_served(&outage.up).await,
        0,
        "nothing reached the upstream"
    );
    assert_eq!(
        drill_store.journal(&[]).unwrap(),
        journal,
        "and nothing changed in the drill"
    );
}
