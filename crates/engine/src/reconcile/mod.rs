//! Reconciliation: replaying the offline journal upstream exactly once, detecting conflicts
//! and never overwriting the upstream silently.
//!
//! `plan` (pure) turns the journal into steps; `Reconciler` applies them in journal order.
//! Exactly once: every upstream resource Lifeboat creates carries its journal id as an
//! identifier and is created with `If-None-Exist`; every update uses `If-Match` with the
//! version the change was based on and adds the same marker, so after a crash at any point
//! (even between the upstream write and the local record of it) a re-run finds its own
//! earlier write instead of repeating it. A drill's cache is refused outright.

mod plan;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use lifeboat_model::ResourceKind;
use lifeboat_model::time::format_uk;
use lifeboat_store::{JournalEntry, JournalKind, JournalState, Store, StoreError};
use lifeboat_upstream::{Precondition, Upstream, UpstreamError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use plan::{BookingDetails, Step, plan};
use plan::{CANCEL_HALF_SENT, ChainEnd, chain_of};

/// The identifier system under which a resource Lifeboat *created* upstream carries the
/// journal id of the offline change that created it (what `If-None-Exist` looks for).
pub const OFFLINE_CHANGE_SYSTEM: &str = "urn:lifeboat:offline-change";

/// The identifier system under which an upstream appointment Lifeboat *cancelled* carries
/// the journal id of the cancellation (or of the move whose first half it was). Kept apart
/// from `OFFLINE_CHANGE_SYSTEM`: a move's new booking is created under the move's journal
/// id, and its conditional create must never find the original the same move cancelled.
pub const OFFLINE_CANCELLATION_SYSTEM: &str = "urn:lifeboat:offline-cancellation";

/// Setting present (value "1") in a drill's copy of the cache.
pub const DRILL_SETTING: &str = "drill";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// The slot was booked upstream meanwhile (GP Connect 409 DUPLICATE_REJECTED).
    SlotTaken,
    SlotGone,
    /// The appointment changed upstream since the version the offline change was based on.
    AppointmentChanged,
    AppointmentCancelledUpstream,
    AppointmentGone,
    PatientGone,
    PatientMerged,
    PatientDeceased,
    PatientDeregistered,
    PractitionerGone,
    LocationGone,
    /// The upstream refused the change for a reason of its own (e.g. 422).
    Refused,
}

impl ConflictKind {
    pub fn describe(self) -> &'static str {
        match self {
            Self::SlotTaken => "the slot was booked upstream while Lifeboat was offline",
            Self::SlotGone => "the slot no longer exists upstream",
            Self::AppointmentChanged => {
                "the appointment was changed upstream while Lifeboat was offline"
            }
            Self::AppointmentCancelledUpstream => "the appointment was already cancelled upstream",
            Self::AppointmentGone => "the appointment no longer exists upstream",
            Self::PatientGone => "the patient's record no longer exists upstream",
            Self::PatientMerged => "the patient's record was merged into another upstream",
            Self::PatientDeceased => "the patient is now recorded as deceased upstream",
            Self::PatientDeregistered => "the patient is no longer registered with the practice",
            Self::PractitionerGone => "the clinician is no longer in the upstream",
            Self::LocationGone => "the location is no longer in the upstream",
            Self::Refused => "the upstream refused the change",
        }
    }

    /// The decisions that make sense for this kind of conflict.
    pub fn choices(self) -> Vec<Choice> {
        use Choice::*;
        match self {
            Self::SlotTaken | Self::SlotGone | Self::PractitionerGone | Self::LocationGone => {
                vec![Rebook, KeepUpstream, Retry, Manual]
            }
            Self::AppointmentChanged => vec![KeepUpstream, CancelAnyway, Manual],
            Self::AppointmentCancelledUpstream | Self::AppointmentGone => {
                vec![KeepUpstream, Manual]
            }
            Self::PatientGone
            | Self::PatientMerged
            | Self::PatientDeceased
            | Self::PatientDeregistered => {
                vec![KeepUpstream, Retry, Manual]
            }
            Self::Refused => vec![KeepUpstream, Retry, Manual],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// Keep what the upstream says and discard the offline change (with a reason).
    KeepUpstream,
    /// Book the same patient into another free slot.
    Rebook,
    /// Try the same change again.
    Retry,
    /// Cancel the appointment as it now is upstream.
    CancelAnyway,
    /// Leave it to a person: it goes on the back-entry worklist.
    Manual,
}

/// What is stored in a conflicted journal row's outcome: both sides, for the review screen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictRecord {
    pub kind: ConflictKind,
    pub summary: String,
    /// What was done offline (a booking's final details, or the cancellation).
    pub ours: Value,
    /// What the upstream says now (the resource in the way), if it could be read.
    pub upstream: Option<Value>,
}

/// How one step ended (or, in a dry run, would end).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "result",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum StepResult {
    Applied {
        upstream_id: String,
    },
    Conflict {
        kind: ConflictKind,
    },
    Superseded,
    BackEntry,
    /// Retryable failure (the upstream failed): the entry stays to be tried again.
    Failed {
        code: String,
    },
    WouldApply,
    WouldConflict {
        kind: ConflictKind,
    },
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepOutcome {
    pub entries: Vec<String>,
    pub summary: String,
    pub result: StepResult,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    pub dry_run: bool,
    pub steps: Vec<StepOutcome>,
    /// Set when the run stopped early because the upstream failed.
    pub stopped: Option<String>,
}

impl ReconcileReport {
    pub fn count(&self, f: impl Fn(&StepResult) -> bool) -> usize {
        self.steps.iter().filter(|s| f(&s.result)).count()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("this is a drill: a drill's changes can never be sent to the upstream")]
    Drill,
    #[error("reconciliation was interrupted")]
    Interrupted,
    #[error("no such offline change")]
    NoSuchEntry,
    #[error("that offline change is not waiting for a decision")]
    NotInConflict,
    #[error("that choice does not fit this conflict ({0})")]
    ChoiceNotOffered(&'static str),
    #[error("give a reason")]
    ReasonRequired,
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("could not record the outcome: {0}")]
    Store(#[from] StoreError),
}

/// What a replay reports as it goes: progress for screens, and a way for tests to stop it
/// at any point, as a crash would.
#[derive(Debug, Clone, Copy)]
pub enum ReplayEvent<'a> {
    Planned {
        steps: usize,
    },
    Applying {
        index: usize,
        step: &'a Step,
    },
    /// The upstream has the change; the local record of it is not yet written.
    UpstreamWritten {
        index: usize,
    },
    /// The step's outcome is settled. A booking's local record may still be waiting, to be
    /// written with others during a later request; a crash before then finds the booking
    /// again upstream by its identifier.
    Recorded {
        index: usize,
    },
}

pub trait ReplayObserver {
    /// Return false to stop right here.
    fn on(&mut self, event: ReplayEvent<'_>) -> bool;
}

/// An observer that lets everything run.
pub struct Quiet;

impl ReplayObserver for Quiet {
    fn on(&mut self, _: ReplayEvent<'_>) -> bool {
        true
    }
}

/// The local record of a booking the upstream has accepted, not yet written.
struct PendingRecord {
    entries: Vec<String>,
    identity: String,
    upstream_id: String,
    replaces: Option<String>,
}

/// How many accepted bookings may wait for their local record: written together, in one
/// transaction, while the next request is on its way.
const RECORD_BATCH: usize = 32;

/// Writes the waiting records, if any: each one's journal entries applied and its offline
/// booking retired (and the change it replaced), all in one transaction.
fn write_pending(
    store: &mut Store,
    pending: &mut Vec<PendingRecord>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if pending.is_empty() {
        return Ok(());
    }
    let tx = store.transaction()?;
    for p in pending.iter() {
        for e in &p.entries {
            tx.set_journal_state(e, JournalState::Applied, Some(&p.upstream_id), now)?;
        }
        tx.retire_offline_booking(&p.identity, &p.upstream_id)?;
        if let Some(old) = &p.replaces {
            tx.retire_appointment_change(old)?;
        }
    }
    tx.commit()?;
    pending.clear();
    Ok(())
}

pub fn is_drill(store: &Store) -> Result<bool, StoreError> {
    Ok(store.setting(DRILL_SETTING)?.as_deref() == Some("1"))
}

fn marker(journal_id: &str) -> Value {
    json!({"system": OFFLINE_CHANGE_SYSTEM, "value": journal_id})
}

fn cancel_marker(journal_id: &str) -> Value {
    json!({"system": OFFLINE_CANCELLATION_SYSTEM, "value": journal_id})
}

fn carries(resource: &Value, system: &str, journal_id: &str) -> bool {
    resource
        .get("identifier")
        .and_then(Value::as_array)
        .is_some_and(|ids| {
            ids.iter().any(|i| {
                i.get("system").and_then(Value::as_str) == Some(system)
                    && i.get("value").and_then(Value::as_str) == Some(journal_id)
            })
        })
}

/// Whether this appointment was cancelled by the offline change `journal_id`.
fn carries_cancel_marker(resource: &Value, journal_id: &str) -> bool {
    carries(resource, OFFLINE_CANCELLATION_SYSTEM, journal_id)
}

/// An appointment as read, with `status=cancelled`, the reason and the cancellation's
/// marker added, everything else as the upstream has it (GP Connect: cancel is a PUT of the
/// appointment as read).
fn cancelled(mut body: Value, reason: &str, journal_id: &str) -> Value {
    body["status"] = json!("cancelled");
    body["cancelationReason"] = json!({ "text": reason });
    let ids = body
        .get("identifier")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    body["identifier"] = Value::Array(ids.into_iter().chain([cancel_marker(journal_id)]).collect());
    body
}

/// The report's line for a step once its result is known: the line planned from the
/// journal, except for a chain that cancels out whose booking an interrupted run had
/// already made upstream, which the plan could not know.
fn settled_summary(step: &Step, result: &StepResult, planned: String) -> String {
    match (step, result) {
        (Step::Supersede { .. }, StepResult::Applied { .. } | StepResult::WouldApply) => {
            "Booked and cancelled offline, but an interrupted run had already booked it upstream: cancel it there".into()
        }
        (Step::Supersede { .. }, StepResult::BackEntry) => {
            "Booked and cancelled offline, but an interrupted run had already booked it upstream, where it has changed since".into()
        }
        _ => planned,
    }
}

fn slot_of(appointment: &Value) -> Option<String> {
    appointment
        .pointer("/slot/0/reference")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("Slot/"))
        .map(str::to_string)
}

/// The Appointment resource an offline booking becomes, GP Connect shaped.
pub fn appointment_resource(identity: &str, b: &BookingDetails, now: DateTime<Utc>) -> Value {
    let mut participants = vec![
        json!({"actor": {"reference": format!("Patient/{}", b.patient_id)}, "status": "accepted"}),
    ];
    if let Some(p) = &b.practitioner_id {
        participants.push(
            json!({"actor": {"reference": format!("Practitioner/{p}")}, "status": "accepted"}),
        );
    }
    if let Some(l) = &b.location_id {
        participants
            .push(json!({"actor": {"reference": format!("Location/{l}")}, "status": "accepted"}));
    }
    let mut a = json!({
        "resourceType": "Appointment",
        "identifier": [marker(identity)],
        "status": "booked",
        "slot": [{"reference": format!("Slot/{}", b.slot_id)}],
        "start": b.start,
        "end": b.end,
        "created": now,
        "participant": participants,
    });
    if let Some(d) = &b.description {
        a["description"] = json!(d);
    }
    if let Some(c) = &b.comment {
        a["comment"] = json!(c);
    }
    a
}

/// The DocumentReference an offline note becomes.
fn note_resource(
    entry: &str,
    patient_id: &str,
    text: &str,
    author: &str,
    written_at: DateTime<Utc>,
) -> Value {
    use std::fmt::Write;
    // Base64 by hand: one tiny use does not earn a dependency.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut data = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let _ = data.write_char(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                data.push('=');
            }
        }
    }
    json!({
        "resourceType": "DocumentReference",
        "identifier": [marker(entry)],
        "status": "current",
        "type": {"text": "Clinical note written during a clinical system outage (Lifeboat)"},
        "subject": {"reference": format!("Patient/{patient_id}")},
        "date": written_at,
        "author": [{"display": author}],
        "description": format!("Offline note by {author}, {}", format_uk(written_at)),
        "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "data": data,
                                     "title": "Offline clinical note", "creation": written_at}}],
    })
}

/// What the upstream now says about the patients, clinicians and locations a run books for,
/// fetched in bulk before any write.
#[derive(Default)]
struct Upfront {
    found: BTreeMap<(ResourceKind, String), Value>,
}

impl Upfront {
    async fn fetch(upstream: &Upstream, steps: &[Step]) -> Result<Self, UpstreamError> {
        let mut wanted: BTreeMap<ResourceKind, BTreeSet<String>> = BTreeMap::new();
        for step in steps {
            if let Step::Book { booking, .. } = step {
                wanted
                    .entry(ResourceKind::Patient)
                    .or_default()
                    .insert(booking.patient_id.clone());
                if let Some(p) = &booking.practitioner_id {
                    wanted
                        .entry(ResourceKind::Practitioner)
                        .or_default()
                        .insert(p.clone());
                }
                if let Some(l) = &booking.location_id {
                    wanted
                        .entry(ResourceKind::Location)
                        .or_default()
                        .insert(l.clone());
                }
            }
        }
        let mut found = BTreeMap::new();
        for (kind, ids) in wanted {
            // Only what the checks read, and what a manager needs to recognise the record.
            let elements = match kind {
                ResourceKind::Patient => "active,deceased,link,name,identifier",
                _ => "name",
            };
            let ids: Vec<String> = ids.into_iter().collect();
            for chunk in ids.chunks(100) {
                let mut url = Some(upstream.url(&format!(
                    "{kind}?_id={}&_count=100&_elements={elements}",
                    chunk.join(",")
                )));
                while let Some(u) = url {
                    let page = upstream.search_page(&u).await?;
                    for raw in page.resources {
                        let v: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
                        if let Some(id) = v.get("id").and_then(Value::as_str) {
                            found.insert((kind, id.to_string()), v);
                        }
                    }
                    url = page.next;
                }
            }
        }
        Ok(Self { found })
    }

    /// Why this booking cannot be made as it stands, judging by the records it names.
    fn booking_conflict(&self, b: &BookingDetails) -> Option<(ConflictKind, Option<Value>)> {
        let Some(patient) = self
            .found
            .get(&(ResourceKind::Patient, b.patient_id.clone()))
        else {
            return Some((ConflictKind::PatientGone, None));
        };
        let merged = patient
            .get("link")
            .and_then(Value::as_array)
            .is_some_and(|l| {
                l.iter()
                    .any(|x| x.get("type").and_then(Value::as_str) == Some("replaced-by"))
            });
        let deceased = patient.get("deceasedBoolean").and_then(Value::as_bool) == Some(true)
            || patient.get("deceasedDateTime").is_some();
        let inactive = patient.get("active").and_then(Value::as_bool) == Some(false);
        let conflict = if merged {
            Some(ConflictKind::PatientMerged)
        } else if deceased {
            Some(ConflictKind::PatientDeceased)
        } else if inactive {
            Some(ConflictKind::PatientDeregistered)
        } else if b.practitioner_id.as_ref().is_some_and(|p| {
            !self
                .found
                .contains_key(&(ResourceKind::Practitioner, p.clone()))
        }) {
            return Some((ConflictKind::PractitionerGone, None));
        } else if b.location_id.as_ref().is_some_and(|l| {
            !self
                .found
                .contains_key(&(ResourceKind::Location, l.clone()))
        }) {
            return Some((ConflictKind::LocationGone, None));
        } else {
            None
        };
        conflict.map(|k| (k, Some(patient.clone())))
    }
}

/// Applies a plan to the upstream and records each outcome in the cache.
pub struct Reconciler<'a> {
    pub upstream: &'a Upstream,
    pub store: &'a mut Store,
    pub now: DateTime<Utc>,
}

enum Applied {
    Done(StepResult),
    /// The upstream failed in a way that may pass: stop the run here.
    Stop(UpstreamError),
}

/// What one run learns as it goes, that later steps of the same run depend on.
#[derive(Default)]
struct RunState {
    /// Moves whose first half (cancelling the original) ran into a conflict in this run:
    /// their new booking waits for the manager's decision, never goes ahead alone.
    move_conflicts: BTreeMap<String, ConflictKind>,
    /// Dry run: slots that earlier steps would free, and slots they would take.
    freed: BTreeSet<String>,
    taken: BTreeSet<String>,
}

impl RunState {
    /// The conflict a chain step must wait behind: its first row is a move whose
    /// cancellation half conflicted earlier in this run.
    fn blocked_by(&self, step: &Step) -> Option<ConflictKind> {
        match step {
            Step::Book { .. } | Step::Supersede { .. } | Step::BackEntry { .. } => step
                .entries()
                .first()
                .and_then(|first| self.move_conflicts.get(*first))
                .copied(),
            Step::Cancel { .. } | Step::FileNote { .. } => None,
        }
    }

    /// Notes what a step did (or would do) that later steps depend on.
    fn learn(&mut self, step: &Step, result: &StepResult, cancelled_slot: Option<String>) {
        match (step, result) {
            (
                Step::Cancel {
                    entry,
                    part_of_move: true,
                    ..
                },
                StepResult::Conflict { kind } | StepResult::WouldConflict { kind },
            ) => {
                self.move_conflicts.insert(entry.clone(), *kind);
            }
            (Step::Cancel { .. } | Step::Supersede { .. }, StepResult::WouldApply) => {
                self.freed.extend(cancelled_slot);
            }
            (Step::Book { booking, .. }, StepResult::WouldApply) => {
                self.freed.remove(&booking.slot_id);
                self.taken.insert(booking.slot_id.clone());
            }
            _ => {}
        }
    }
}

impl Reconciler<'_> {
    /// One run over every unsettled journal row. With `dry_run`, nothing is written
    /// anywhere: each step reports what would happen.
    pub async fn run(
        &mut self,
        dry_run: bool,
        observer: &mut dyn ReplayObserver,
    ) -> Result<ReconcileReport, ReconcileError> {
        if is_drill(self.store)? {
            return Err(ReconcileError::Drill);
        }
        if dry_run {
            return self.replay(true, observer).await;
        }
        // Recording each step must not wait for the disk once per entry: every upstream
        // write carries its journal id, so a record lost to a power cut (a kill of Lifeboat
        // loses none) is found again by the next run, and the steps that write nothing
        // upstream are planned again the same way. The caller's next ordinary commit on the
        // file (the mode change and audit entry after a run) makes these durable too.
        self.store
            .set_durability(lifeboat_store::Durability::Deferred)?;
        let result = self.replay(false, observer).await;
        let restored = self.store.set_durability(lifeboat_store::Durability::Full);
        let report = result?;
        restored?;
        Ok(report)
    }

    async fn replay(
        &mut self,
        dry_run: bool,
        observer: &mut dyn ReplayObserver,
    ) -> Result<ReconcileReport, ReconcileError> {
        let journal = self.store.journal(&[])?;
        let steps = plan(&journal, self.now);
        if !observer.on(ReplayEvent::Planned { steps: steps.len() }) {
            return Err(ReconcileError::Interrupted);
        }
        // The lines the report shows are read from the cache while the up-front checks are
        // on their way (yielding now and then so each next request goes out promptly).
        let (upfront, summaries) = tokio::join!(Upfront::fetch(self.upstream, &steps), async {
            let mut lines = Vec::with_capacity(steps.len());
            for (i, step) in steps.iter().enumerate() {
                if i % 16 == 0 {
                    tokio::task::yield_now().await;
                }
                lines.push(self.describe(step));
            }
            lines
        });
        let upfront = upfront?;
        let mut report = ReconcileReport {
            dry_run,
            ..ReconcileReport::default()
        };
        let mut state = RunState::default();
        // Bookings' local records wait to be written in a batch during a later booking's
        // request (see `apply`); any other step writes them first, as does the end of the
        // run or a stop.
        let mut pending = Vec::new();
        for ((index, step), summary) in steps.iter().enumerate().zip(summaries) {
            if !observer.on(ReplayEvent::Applying { index, step }) {
                return Err(ReconcileError::Interrupted);
            }
            if !matches!(step, Step::Book { .. }) || state.blocked_by(step).is_some() {
                write_pending(self.store, &mut pending, self.now)?;
            }
            let result = if let Some(kind) = state.blocked_by(step) {
                if dry_run {
                    StepResult::WouldConflict { kind }
                } else {
                    self.wait_behind_conflict(step)?;
                    StepResult::Conflict { kind }
                }
            } else if dry_run {
                let (result, cancelled_slot) = self.predict(step, &upfront, &state).await?;
                state.learn(step, &result, cancelled_slot);
                result
            } else {
                match self
                    .apply(index, step, &upfront, observer, &mut pending)
                    .await?
                {
                    Applied::Done(r) => {
                        state.learn(step, &r, None);
                        r
                    }
                    Applied::Stop(e) => {
                        write_pending(self.store, &mut pending, self.now)?;
                        report.steps.push(StepOutcome {
                            entries: step.entries().iter().map(|s| s.to_string()).collect(),
                            summary,
                            result: StepResult::Failed {
                                code: e.code().into(),
                            },
                        });
                        report.stopped = Some(e.to_string());
                        return Ok(report);
                    }
                }
            };
            if !dry_run && !observer.on(ReplayEvent::Recorded { index }) {
                return Err(ReconcileError::Interrupted);
            }
            report.steps.push(StepOutcome {
                entries: step.entries().iter().map(|s| s.to_string()).collect(),
                summary: settled_summary(step, &result, summary),
                result,
            });
        }
        write_pending(self.store, &mut pending, self.now)?;
        Ok(report)
    }

    /// A line a practice manager can read.
    fn describe(&self, step: &Step) -> String {
        let who = |id: &str| {
            self.store
                .patient_brief(id)
                .ok()
                .flatten()
                .map(|p| format!("{} {}", p.given, p.family.to_uppercase()))
                .unwrap_or_else(|| "a patient no longer in the cache".into())
        };
        match step {
            Step::Book { booking, .. } => format!(
                "Book {} at {}",
                who(&booking.patient_id),
                format_uk(booking.start)
            ),
            Step::Cancel {
                appointment_id,
                part_of_move,
                ..
            } => {
                let a = self.store.appointment(appointment_id).ok().flatten();
                let name = a
                    .as_ref()
                    .and_then(|a| a.patient.as_ref())
                    .map(|p| who(&p.id))
                    .unwrap_or_else(|| "an appointment".into());
                let when = a.map(|a| format_uk(a.start)).unwrap_or_default();
                if *part_of_move {
                    format!("Move {name} from {when}: cancel the original")
                } else {
                    format!("Cancel {name} at {when}")
                }
            }
            Step::Supersede { why, .. } => format!("Nothing to send: {why}"),
            Step::BackEntry { summary, .. } => summary.clone(),
            Step::FileNote {
                patient_id,
                author,
                written_at,
                ..
            } => {
                format!(
                    "File the note by {author} for {} ({})",
                    who(patient_id),
                    format_uk(*written_at)
                )
            }
        }
    }

    /// What a step would do, reading the upstream but writing nothing. Slots freed or taken
    /// by earlier steps of the same run count as such (`state`). Also returns, for a
    /// cancellation that would go through, the slot it would free.
    async fn predict(
        &self,
        step: &Step,
        upfront: &Upfront,
        state: &RunState,
    ) -> Result<(StepResult, Option<String>), ReconcileError> {
        let would_conflict = |kind| Ok((StepResult::WouldConflict { kind }, None));
        Ok(match step {
            Step::Book {
                identity, booking, ..
            } => {
                if let Some((kind, _)) = upfront.booking_conflict(booking) {
                    return would_conflict(kind);
                }
                if state.taken.contains(&booking.slot_id) {
                    return would_conflict(ConflictKind::SlotTaken);
                }
                match self.upstream.read("Slot", &booking.slot_id).await {
                    Err(UpstreamError::NotFound { .. }) => {
                        return would_conflict(ConflictKind::SlotGone);
                    }
                    Err(e) => return Err(e.into()),
                    Ok(slot)
                        if slot.body.get("status").and_then(Value::as_str) != Some("free")
                            && !state.freed.contains(&booking.slot_id) =>
                    {
                        if self
                            .existing_by_marker("Appointment", identity)
                            .await?
                            .is_none()
                        {
                            return would_conflict(ConflictKind::SlotTaken);
                        }
                        (StepResult::WouldApply, None)
                    }
                    Ok(_) => (StepResult::WouldApply, None),
                }
            }
            Step::Cancel {
                entry,
                appointment_id,
                based_on,
                ..
            } => match self.upstream.read("Appointment", appointment_id).await {
                Err(UpstreamError::NotFound { .. }) => {
                    return would_conflict(ConflictKind::AppointmentGone);
                }
                Err(e) => return Err(e.into()),
                Ok(a) if carries_cancel_marker(&a.body, entry) => (StepResult::WouldApply, None),
                Ok(a) if a.body.get("status").and_then(Value::as_str) == Some("cancelled") => {
                    return would_conflict(ConflictKind::AppointmentCancelledUpstream);
                }
                Ok(a)
                    if a.body.pointer("/meta/versionId").and_then(Value::as_str)
                        != Some(based_on) =>
                {
                    return would_conflict(ConflictKind::AppointmentChanged);
                }
                Ok(a) => (StepResult::WouldApply, slot_of(&a.body)),
            },
            Step::Supersede { entries, .. } => {
                match self.booked_by_an_earlier_run(entries).await? {
                    Some(a) if a.get("status").and_then(Value::as_str) == Some("booked") => {
                        (StepResult::WouldApply, slot_of(&a))
                    }
                    Some(_) => (StepResult::BackEntry, None),
                    None => (StepResult::Superseded, None),
                }
            }
            Step::BackEntry { entries, .. } => match self.already_sent(entries).await? {
                Some(_) => (StepResult::WouldApply, None),
                None => (StepResult::BackEntry, None),
            },
            Step::FileNote { .. } => (StepResult::WouldApply, None),
        })
    }

    /// A change that has become past may still have reached the upstream, in an earlier run
    /// interrupted between the upstream write and its local record. Then it is applied, and
    /// must not be put on the worklist (a person entering it again would duplicate it).
    /// Returns the upstream outcome to record, if so.
    async fn already_sent(&self, entries: &[String]) -> Result<Option<String>, ReconcileError> {
        let Some(first) = entries.first() else {
            return Ok(None);
        };
        let Some(entry) = self.store.journal_entry(first)? else {
            return Ok(None);
        };
        match (entry.kind, entry.target_type.as_deref()) {
            (JournalKind::Book, _) | (JournalKind::Move, Some("Appointment")) => Ok(self
                .existing_by_marker("Appointment", first)
                .await?
                .and_then(|a| a.get("id").and_then(Value::as_str).map(str::to_string))
                .map(|id| format!("Appointment/{id}"))),
            (JournalKind::Cancel, Some("Appointment")) => {
                let id = entry.target_id.unwrap_or_default();
                match self.upstream.read("Appointment", &id).await {
                    Ok(a) if carries_cancel_marker(&a.body, first) => {
                        Ok(Some(format!("Appointment/{id} cancelled")))
                    }
                    Ok(_) | Err(UpstreamError::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
            _ => Ok(None),
        }
    }

    /// The rest of a move's chain waits behind the conflict on its first row: folded into
    /// it, so the manager's decision on that row settles them all.
    fn wait_behind_conflict(&mut self, step: &Step) -> Result<(), StoreError> {
        let entries = step.entries();
        let Some((identity, rest)) = entries.split_first() else {
            return Ok(());
        };
        let tx = self.store.transaction()?;
        for e in rest {
            tx.set_journal_state(
                e,
                JournalState::Superseded,
                Some(&format!("folded into {identity}")),
                self.now,
            )?;
        }
        tx.commit()
    }

    async fn existing_by_marker(
        &self,
        resource_type: &str,
        journal_id: &str,
    ) -> Result<Option<Value>, UpstreamError> {
        let url = self.upstream.url(&format!(
            "{resource_type}?identifier={OFFLINE_CHANGE_SYSTEM}|{journal_id}&_count=1"
        ));
        let page = self.upstream.search_page(&url).await?;
        Ok(page
            .resources
            .first()
            .and_then(|r| serde_json::from_str(r.get()).ok()))
    }

    /// Sends `appointment` (as the upstream last had it, at version `based_on`) back
    /// cancelled for `reason`, carrying `entry`'s marker. `Ok(Ok(version))` once it is
    /// cancelled by us (also when an interrupted run had already sent it); `Ok(Err(..))` when
    /// the upstream no longer has it as it was, with what it holds now.
    async fn send_cancellation(
        &self,
        appointment_id: &str,
        appointment: Value,
        based_on: &str,
        reason: &str,
        entry: &str,
    ) -> Result<Result<String, (ConflictKind, Option<Value>)>, UpstreamError> {
        let body = cancelled(appointment, reason, entry);
        let sent = self
            .upstream
            .update(
                "Appointment",
                appointment_id,
                &body,
                Precondition::IfMatch(based_on),
            )
            .await;
        Ok(match sent {
            Ok(answer) => Ok(answer.etag_version.unwrap_or_default()),
            Err(UpstreamError::VersionConflict { .. }) => {
                // Ours from an earlier, interrupted run? Or changed by someone else?
                let now_upstream = self.upstream.read("Appointment", appointment_id).await?;
                if carries_cancel_marker(&now_upstream.body, entry) {
                    Ok(now_upstream.etag_version.unwrap_or_default())
                } else if now_upstream.body.get("status").and_then(Value::as_str)
                    == Some("cancelled")
                {
                    Err((
                        ConflictKind::AppointmentCancelledUpstream,
                        Some(now_upstream.body),
                    ))
                } else {
                    Err((ConflictKind::AppointmentChanged, Some(now_upstream.body)))
                }
            }
            Err(UpstreamError::NotFound { .. }) => Err((ConflictKind::AppointmentGone, None)),
            Err(e) if e.is_retryable() => return Err(e),
            Err(_) => Err((ConflictKind::Refused, None)),
        })
    }

    /// For a chain that cancels out and began with an offline booking: that booking as the
    /// upstream holds it, if an earlier, interrupted run had already created it there.
    async fn booked_by_an_earlier_run(
        &self,
        entries: &[String],
    ) -> Result<Option<Value>, ReconcileError> {
        let Some(first) = entries.first() else {
            return Ok(None);
        };
        if self.store.journal_entry(first)?.map(|e| e.kind) != Some(JournalKind::Book) {
            return Ok(None);
        }
        Ok(self.existing_by_marker("Appointment", first).await?)
    }

    /// A chain that cancels out (booked, then cancelled offline) whose booking an
    /// interrupted run had already created upstream: cancelled there, as it now is, with
    /// the offline cancellation's reason and marker. If the upstream has since marked it
    /// arrived, fulfilled or did not attend, a person settles it from the worklist; it is
    /// never left booked unseen. `None` when there is nothing upstream to settle.
    async fn cancel_earlier_booking(
        &mut self,
        index: usize,
        entries: &[String],
        observer: &mut dyn ReplayObserver,
    ) -> Result<Option<StepResult>, ReconcileError> {
        let Some(booked) = self.booked_by_an_earlier_run(entries).await? else {
            return Ok(None);
        };
        let text = |pointer: &str| {
            booked
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (id, version, status) = (text("/id"), text("/meta/versionId"), text("/status"));
        let (cancel_entry, reason) = match entries.last() {
            Some(last) => match self.store.journal_entry(last)? {
                Some(e) if e.kind == JournalKind::Cancel => {
                    let reason = e.payload["reason"].as_str().unwrap_or_default().to_string();
                    (e.id, reason)
                }
                _ => (last.clone(), String::new()),
            },
            None => return Ok(None),
        };
        let outcome = match status.as_str() {
            "booked" => {
                self.send_cancellation(&id, booked, &version, &reason, &cancel_entry)
                    .await?
            }
            "cancelled" => Err((ConflictKind::AppointmentCancelledUpstream, None)),
            // Marked arrived, fulfilled or did not attend upstream: not ours to undo.
            _ => Err((ConflictKind::AppointmentChanged, None)),
        };
        let upstream_id = format!("Appointment/{id}");
        Ok(Some(match outcome {
            Ok(_) => {
                if !observer.on(ReplayEvent::UpstreamWritten { index }) {
                    return Err(ReconcileError::Interrupted);
                }
                self.record_sent_earlier(entries, &format!("{upstream_id} cancelled"))?;
                StepResult::Applied { upstream_id }
            }
            Err((
                ConflictKind::AppointmentCancelledUpstream | ConflictKind::AppointmentGone,
                _,
            )) => {
                // Cancelled (or removed) upstream meanwhile: what the practice wanted.
                self.record_sent_earlier(entries, &format!("{upstream_id} no longer booked"))?;
                StepResult::Applied { upstream_id }
            }
            Err(_) => {
                let patient = self
                    .store
                    .journal_entry(&entries[0])?
                    .and_then(|e| e.payload["patient_id"].as_str().map(str::to_string));
                self.send_to_worklist(
                    entries,
                    "manual",
                    patient.as_deref(),
                    &format!(
                        "Booked upstream ({upstream_id}) by an interrupted reconciliation, then cancelled offline ({reason}), but the upstream now has it as {status}: settle it by hand"
                    ),
                )?;
                StepResult::BackEntry
            }
        }))
    }

    async fn apply(
        &mut self,
        index: usize,
        step: &Step,
        upfront: &Upfront,
        observer: &mut dyn ReplayObserver,
        pending: &mut Vec<PendingRecord>,
    ) -> Result<Applied, ReconcileError> {
        let now = self.now;
        macro_rules! upstream_call {
            ($e:expr) => {
                match $e {
                    Ok(v) => Ok(v),
                    Err(e) if e.is_retryable() => {
                        self.record_failure(step, &e)?;
                        return Ok(Applied::Stop(e));
                    }
                    Err(e) => Err(e),
                }
            };
        }
        let result = match step {
            Step::Book {
                identity,
                entries,
                booking,
                replaces,
            } => {
                if let Some((kind, upstream)) = upfront.booking_conflict(booking) {
                    write_pending(self.store, pending, now)?;
                    self.record_conflict(
                        identity,
                        entries,
                        kind,
                        serde_json::to_value(booking).unwrap_or_default(),
                        upstream,
                    )?;
                    return Ok(Applied::Done(StepResult::Conflict { kind }));
                }
                let body = appointment_resource(identity, booking, now);
                let search = format!("identifier={OFFLINE_CHANGE_SYSTEM}|{identity}");
                // Earlier bookings' local records are written in batches while this request
                // is on its way: the upstream's answer is what makes a re-run safe (a
                // booking whose record was lost is found again by its identifier).
                let upstream = self.upstream;
                let store = &mut *self.store;
                let (sent, recorded) = tokio::join!(
                    upstream.create("Appointment", &body, Precondition::IfNoneExist(&search)),
                    async {
                        if pending.len() < RECORD_BATCH {
                            return Ok(());
                        }
                        // Let the request reach the socket first (a task woken from here
                        // waits for this one to yield), then write while the upstream works.
                        tokio::task::yield_now().await;
                        write_pending(store, pending, now)
                    }
                );
                recorded?;
                match upstream_call!(sent) {
                    Ok(answer) => {
                        if !observer.on(ReplayEvent::UpstreamWritten { index }) {
                            return Err(ReconcileError::Interrupted);
                        }
                        let id = answer
                            .body
                            .get("id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                        let upstream_id = format!("Appointment/{id}");
                        pending.push(PendingRecord {
                            entries: entries.clone(),
                            identity: identity.clone(),
                            upstream_id: upstream_id.clone(),
                            replaces: replaces.clone(),
                        });
                        StepResult::Applied { upstream_id }
                    }
                    Err(e) => {
                        let mut kind = match e {
                            UpstreamError::Duplicate { .. }
                            | UpstreamError::VersionConflict { .. } => ConflictKind::SlotTaken,
                            UpstreamError::NotFound { .. } => ConflictKind::SlotGone,
                            _ => ConflictKind::Refused,
                        };
                        // GP Connect refuses a booking of a slot that no longer exists with
                        // 422 INVALID_REFERENCE: tell that apart from other refusals.
                        if kind == ConflictKind::Refused
                            && matches!(
                                upstream_call!(self.upstream.read("Slot", &booking.slot_id).await),
                                Err(UpstreamError::NotFound { .. })
                            )
                        {
                            kind = ConflictKind::SlotGone;
                        }
                        let in_the_way = match kind {
                            ConflictKind::SlotTaken => {
                                upstream_call!(self.who_has_slot(&booking.slot_id).await)?
                            }
                            _ => None,
                        };
                        let mut ours = serde_json::to_value(booking).unwrap_or_default();
                        if let Some(old) = replaces {
                            // The first half of this move went through: say so beside ours.
                            ours["replaces"] = json!(old);
                            ours["original_cancelled_upstream"] = json!(true);
                        }
                        self.record_conflict(identity, entries, kind, ours, in_the_way)?;
                        StepResult::Conflict { kind }
                    }
                }
            }
            Step::Cancel {
                entry,
                appointment_id,
                based_on,
                reason,
                part_of_move,
            } => {
                let Some(cached) = self
                    .store
                    .resource(ResourceKind::Appointment, appointment_id)?
                else {
                    self.record_conflict(
                        entry,
                        std::slice::from_ref(entry),
                        ConflictKind::AppointmentGone,
                        json!({"cancel": appointment_id, "reason": reason}),
                        None,
                    )?;
                    return Ok(Applied::Done(StepResult::Conflict {
                        kind: ConflictKind::AppointmentGone,
                    }));
                };
                let cached = serde_json::from_str(&cached.raw).unwrap_or(Value::Null);
                let outcome = upstream_call!(
                    self.send_cancellation(appointment_id, cached, based_on, reason, entry)
                        .await
                )?;
                match outcome {
                    Ok(version) => {
                        if !observer.on(ReplayEvent::UpstreamWritten { index }) {
                            return Err(ReconcileError::Interrupted);
                        }
                        let tx = self.store.transaction()?;
                        if *part_of_move {
                            // The move settles with its new booking; remember this half is done.
                            tx.set_journal_state(
                                entry,
                                JournalState::Pending,
                                Some(&format!("{CANCEL_HALF_SENT}: version {version}")),
                                now,
                            )?;
                        } else {
                            tx.set_journal_state(
                                entry,
                                JournalState::Applied,
                                Some(&format!("Appointment/{appointment_id} cancelled")),
                                now,
                            )?;
                            tx.retire_appointment_change(appointment_id)?;
                        }
                        tx.commit()?;
                        StepResult::Applied {
                            upstream_id: format!("Appointment/{appointment_id}"),
                        }
                    }
                    Err((kind, upstream)) => {
                        self.record_conflict(entry, std::slice::from_ref(entry), kind, json!({"cancel": appointment_id, "reason": reason, "based_on": based_on}), upstream)?;
                        StepResult::Conflict { kind }
                    }
                }
            }
            Step::Supersede { entries, why } => {
                // Booked and cancelled offline cancels out, unless an earlier run was
                // interrupted after the booking reached the upstream: then it is there
                // (found by its identifier), and it is cancelled there.
                match self.cancel_earlier_booking(index, entries, observer).await {
                    Err(ReconcileError::Upstream(e)) if e.is_retryable() => {
                        self.record_failure(step, &e)?;
                        return Ok(Applied::Stop(e));
                    }
                    Ok(Some(settled)) => return Ok(Applied::Done(settled)),
                    Ok(None) => {}
                    Err(e) => return Err(e),
                }
                let tx = self.store.transaction()?;
                for e in entries {
                    tx.set_journal_state(e, JournalState::Superseded, Some(why), now)?;
                }
                if let Some(first) = entries.first() {
                    tx.retire_offline_booking(first, "superseded")?;
                }
                tx.commit()?;
                StepResult::Superseded
            }
            Step::BackEntry {
                entries,
                patient_id,
                summary,
            } => {
                let sent = match self.already_sent(entries).await {
                    Err(ReconcileError::Upstream(e)) if e.is_retryable() => {
                        self.record_failure(step, &e)?;
                        return Ok(Applied::Stop(e));
                    }
                    other => other?,
                };
                match sent {
                    Some(upstream_id) => {
                        self.record_sent_earlier(entries, &upstream_id)?;
                        StepResult::Applied { upstream_id }
                    }
                    None => {
                        self.send_to_worklist(
                            entries,
                            "past_change",
                            patient_id.as_deref(),
                            summary,
                        )?;
                        StepResult::BackEntry
                    }
                }
            }
            Step::FileNote {
                entry,
                patient_id,
                text,
                author,
                written_at,
                ..
            } => {
                let body = note_resource(entry, patient_id, text, author, *written_at);
                let search = format!("identifier={OFFLINE_CHANGE_SYSTEM}|{entry}");
                let pushed = upstream_call!(
                    self.upstream
                        .create(
                            "DocumentReference",
                            &body,
                            Precondition::IfNoneExist(&search)
                        )
                        .await
                );
                if pushed.is_ok() && !observer.on(ReplayEvent::UpstreamWritten { index }) {
                    return Err(ReconcileError::Interrupted);
                }
                let summary = format!(
                    "File the offline note by {author} ({}) in the clinical record",
                    format_uk(*written_at)
                );
                let tx = self.store.transaction()?;
                tx.add_work_item(entry, "note", Some(patient_id), &summary, now)?;
                let result = match pushed {
                    Ok(answer) => {
                        let id = format!(
                            "DocumentReference/{}",
                            answer
                                .body
                                .get("id")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                        );
                        tx.set_journal_state(entry, JournalState::Applied, Some(&id), now)?;
                        StepResult::Applied { upstream_id: id }
                    }
                    Err(e) => {
                        // The upstream does not take notes this way: the worklist carries it.
                        tx.set_journal_state(
                            entry,
                            JournalState::Superseded,
                            Some(&format!(
                                "back-entry: upstream refused the note ({})",
                                e.code()
                            )),
                            now,
                        )?;
                        StepResult::BackEntry
                    }
                };
                tx.commit()?;
                result
            }
        };
        Ok(Applied::Done(result))
    }

    /// The appointment now holding a slot upstream, to show beside ours.
    async fn who_has_slot(&self, slot_id: &str) -> Result<Option<Value>, UpstreamError> {
        let url = self.upstream.url(&format!(
            "Appointment?slot=Slot/{slot_id}&status=booked&_count=1"
        ));
        let page = self.upstream.search_page(&url).await?;
        Ok(page
            .resources
            .first()
            .and_then(|r| serde_json::from_str(r.get()).ok()))
    }

    fn record_conflict(
        &mut self,
        identity: &str,
        entries: &[String],
        kind: ConflictKind,
        ours: Value,
        upstream: Option<Value>,
    ) -> Result<(), StoreError> {
        let record = ConflictRecord {
            kind,
            summary: kind.describe().to_string(),
            ours,
            upstream,
        };
        let tx = self.store.transaction()?;
        for e in entries {
            if e == identity {
                tx.set_journal_state(
                    e,
                    JournalState::Conflict,
                    Some(&serde_json::to_string(&record).unwrap_or_default()),
                    self.now,
                )?;
            } else {
                tx.set_journal_state(
                    e,
                    JournalState::Superseded,
                    Some(&format!("folded into {identity}")),
                    self.now,
                )?;
            }
        }
        tx.commit()
    }

    /// Records rows found already applied upstream by an earlier, interrupted run.
    fn record_sent_earlier(
        &mut self,
        entries: &[String],
        upstream_id: &str,
    ) -> Result<(), StoreError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let replaced = self
            .store
            .journal_entry(first)?
            .filter(|e| e.target_type.as_deref() == Some("Appointment"))
            .and_then(|e| e.target_id);
        let tx = self.store.transaction()?;
        for e in entries {
            tx.set_journal_state(e, JournalState::Applied, Some(upstream_id), self.now)?;
        }
        tx.retire_offline_booking(first, upstream_id)?;
        if let Some(old) = replaced {
            tx.retire_appointment_change(&old)?;
        }
        tx.commit()
    }

    fn record_failure(&mut self, step: &Step, e: &UpstreamError) -> Result<(), StoreError> {
        let tx = self.store.transaction()?;
        for entry in step.entries() {
            tx.set_journal_state(
                entry,
                JournalState::Failed,
                Some(&format!("retryable: {}", e.code())),
                self.now,
            )?;
        }
        tx.commit()
    }

    fn send_to_worklist(
        &mut self,
        entries: &[String],
        kind: &str,
        patient_id: Option<&str>,
        summary: &str,
    ) -> Result<(), StoreError> {
        let tx = self.store.transaction()?;
        if let Some(first) = entries.first() {
            tx.add_work_item(first, kind, patient_id, summary, self.now)?;
            tx.retire_offline_booking(first, "back-entry")?;
        }
        for e in entries {
            tx.set_journal_state(e, JournalState::Superseded, Some("back-entry"), self.now)?;
        }
        tx.commit()
    }
}

/// A manager's decision on a conflict.
#[derive(Debug, Clone)]
pub struct Decision {
    pub choice: Choice,
    /// For `Rebook`: the upstream slot to book into instead.
    pub slot_id: Option<String>,
    /// Required for `KeepUpstream`; recorded for every choice.
    pub reason: Option<String>,
}

impl Reconciler<'_> {
    /// Carries out a manager's decision on one conflict, and audits it with who and why.
    pub async fn resolve(
        &mut self,
        journal_id: &str,
        decision: &Decision,
        user: &str,
        workstation: &str,
    ) -> Result<JournalEntry, ReconcileError> {
        if is_drill(self.store)? {
            return Err(ReconcileError::Drill);
        }
        let entry = self
            .store
            .journal_entry(journal_id)?
            .ok_or(ReconcileError::NoSuchEntry)?;
        let record = conflict_of(&entry).ok_or(ReconcileError::NotInConflict)?;
        if !record.kind.choices().contains(&decision.choice) {
            return Err(ReconcileError::ChoiceNotOffered(record.kind.describe()));
        }
        let reason = decision
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        let now = self.now;
        // (new state, outcome, worklist item (kind, summary), a new conflict in its place)
        let mut work: Option<(&str, String)> = None;
        let mut new_conflict: Option<ConflictRecord> = None;
        let (state, outcome) = match decision.choice {
            Choice::KeepUpstream => {
                let reason = reason.ok_or(ReconcileError::ReasonRequired)?;
                (
                    JournalState::Discarded,
                    format!("kept the upstream's version: {reason}"),
                )
            }
            Choice::Retry => (JournalState::Pending, String::new()),
            Choice::Manual => {
                work = Some((
                    "manual",
                    format!(
                        "Handle by hand: {} ({})",
                        record.summary,
                        reason.unwrap_or("no note")
                    ),
                ));
                (
                    JournalState::Superseded,
                    "manual: on the back-entry worklist".into(),
                )
            }
            Choice::Rebook => {
                let slot_id =
                    decision
                        .slot_id
                        .as_deref()
                        .ok_or(ReconcileError::ChoiceNotOffered(
                            "choose a slot to re-book into",
                        ))?;
                match self.rebook(&entry, &record, slot_id).await? {
                    Ok(upstream_id) => (JournalState::Applied, upstream_id),
                    Err(kind) => {
                        self.record_conflict(
                            &entry.id,
                            std::slice::from_ref(&entry.id),
                            kind,
                            record.ours.clone(),
                            None,
                        )?;
                        return Err(ReconcileError::ChoiceNotOffered(kind.describe()));
                    }
                }
            }
            Choice::CancelAnyway => {
                let appointment_id = entry.target_id.clone().unwrap_or_default();
                let current = self.upstream.read("Appointment", &appointment_id).await?;
                // Already cancelled by this very decision, if an earlier attempt at it stopped
                // after the upstream write: do not cancel twice.
                if !carries_cancel_marker(&current.body, &entry.id) {
                    if current.body.get("status").and_then(Value::as_str) != Some("booked") {
                        return Err(ReconcileError::ChoiceNotOffered(
                            "the appointment is no longer booked upstream",
                        ));
                    }
                    let version = current.etag_version.clone().unwrap_or_default();
                    let reason_text = record
                        .ours
                        .get("reason")
                        .and_then(Value::as_str)
                        .unwrap_or("cancelled during an outage")
                        .to_string();
                    let body = cancelled(current.body, &reason_text, &entry.id);
                    self.upstream
                        .update(
                            "Appointment",
                            &appointment_id,
                            &body,
                            Precondition::IfMatch(&version),
                        )
                        .await?;
                }
                let cancelled_outcome = format!("Appointment/{appointment_id} cancelled");
                if entry.kind != JournalKind::Move {
                    (JournalState::Applied, cancelled_outcome)
                } else {
                    // The second half of the move: the booking as staff left it.
                    let journal = self.store.journal(&[])?;
                    match chain_of(&journal, &entry.id).1 {
                        ChainEnd::Live(booking) if booking.start > now => {
                            match self.create_booking(&entry.id, &booking).await? {
                                Ok(upstream_id) => (JournalState::Applied, upstream_id),
                                Err(kind) => {
                                    let in_the_way = match kind {
                                        ConflictKind::SlotTaken => {
                                            self.who_has_slot(&booking.slot_id).await?
                                        }
                                        _ => None,
                                    };
                                    let mut ours =
                                        serde_json::to_value(&booking).unwrap_or_default();
                                    ours["replaces"] = json!(appointment_id);
                                    ours["original_cancelled_upstream"] = json!(true);
                                    new_conflict = Some(ConflictRecord {
                                        kind,
                                        summary: kind.describe().to_string(),
                                        ours,
                                        upstream: in_the_way,
                                    });
                                    (JournalState::Conflict, String::new())
                                }
                            }
                        }
                        ChainEnd::Live(booking) => {
                            work = Some((
                                "past_change",
                                format!(
                                    "Moved offline to {}, which has now passed (the original is cancelled upstream): enter it by hand",
                                    format_uk(booking.start)
                                ),
                            ));
                            (JournalState::Superseded, "back-entry".into())
                        }
                        ChainEnd::Cancelled => (JournalState::Applied, cancelled_outcome),
                        ChainEnd::Marked | ChainEnd::Unreadable => {
                            work = Some((
                                "past_change",
                                "Moved offline, then marked or unreadable (the original is cancelled upstream): record the new appointment by hand".into(),
                            ));
                            (JournalState::Superseded, "back-entry".into())
                        }
                    }
                }
            }
        };
        let journal = self.store.journal(&[])?;
        let tx = self.store.transaction()?;
        let outcome = match &new_conflict {
            Some(record) => serde_json::to_string(record).unwrap_or_default(),
            None => outcome,
        };
        tx.set_journal_state(
            &entry.id,
            state,
            (!outcome.is_empty()).then_some(outcome.as_str()),
            now,
        )?;
        if !matches!(state, JournalState::Pending | JournalState::Conflict) {
            match entry.target_type.as_deref() {
                Some("Appointment") if entry.kind == JournalKind::Cancel => {
                    tx.retire_appointment_change(entry.target_id.as_deref().unwrap_or_default())?;
                }
                Some("Appointment") => {
                    tx.retire_appointment_change(entry.target_id.as_deref().unwrap_or_default())?;
                    tx.retire_offline_booking(&entry.id, &outcome)?;
                }
                _ => tx.retire_offline_booking(&entry.id, &outcome)?,
            }
            // Later changes to the same booking are settled by this decision too.
            for row in chain_of(&journal, &entry.id).0.iter().skip(1) {
                if journal.iter().any(|e| {
                    &e.id == row && matches!(e.state, JournalState::Pending | JournalState::Failed)
                }) {
                    tx.set_journal_state(
                        row,
                        JournalState::Superseded,
                        Some(&format!("folded into {}", entry.id)),
                        now,
                    )?;
                }
            }
        }
        if let Some((kind, summary)) = work {
            let patient = record.ours.get("patient_id").and_then(Value::as_str);
            tx.add_work_item(&entry.id, kind, patient, &summary, now)?;
        }
        tx.append_audit(
            &lifeboat_store::AuditEntry::new(
                now,
                user,
                workstation,
                lifeboat_store::AuditAction::ConflictResolved,
            )
            .subject(format!("OfflineChange/{}", entry.id))
            .detail(format!(
                "{}: {:?}{}{}",
                record.kind.describe(),
                decision.choice,
                reason.map(|r| format!(" because {r}")).unwrap_or_default(),
                new_conflict
                    .as_ref()
                    .map(|c| format!("; then {}", c.kind.describe()))
                    .unwrap_or_default()
            )),
        )?;
        tx.commit()?;
        self.store
            .journal_entry(&entry.id)?
            .ok_or(ReconcileError::NoSuchEntry)
    }

    /// Creates the appointment for an offline booking under its journal id, conditionally,
    /// so it happens at most once however often it is tried. Ok(upstream id) or the conflict
    /// in the way.
    async fn create_booking(
        &self,
        identity: &str,
        booking: &BookingDetails,
    ) -> Result<Result<String, ConflictKind>, UpstreamError> {
        let body = appointment_resource(identity, booking, self.now);
        let search = format!("identifier={OFFLINE_CHANGE_SYSTEM}|{identity}");
        match self
            .upstream
            .create("Appointment", &body, Precondition::IfNoneExist(&search))
            .await
        {
            Ok(answer) => Ok(Ok(format!(
                "Appointment/{}",
                answer
                    .body
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            ))),
            Err(UpstreamError::Duplicate { .. } | UpstreamError::VersionConflict { .. }) => {
                Ok(Err(ConflictKind::SlotTaken))
            }
            Err(UpstreamError::NotFound { .. }) => Ok(Err(ConflictKind::SlotGone)),
            Err(e) => Err(e),
        }
    }

    /// Books the offline booking's patient into another upstream slot, carrying the same
    /// journal id (so this, too, happens exactly once). Ok(upstream id) or the new conflict.
    async fn rebook(
        &mut self,
        entry: &JournalEntry,
        record: &ConflictRecord,
        slot_id: &str,
    ) -> Result<Result<String, ConflictKind>, ReconcileError> {
        let Ok(mut booking) = serde_json::from_value::<BookingDetails>(record.ours.clone()) else {
            return Err(ReconcileError::ChoiceNotOffered(
                "this change is not a booking",
            ));
        };
        let slot = match self.upstream.read("Slot", slot_id).await {
            Ok(a) => a.body,
            Err(UpstreamError::NotFound { .. }) => return Ok(Err(ConflictKind::SlotGone)),
            Err(e) => return Err(e.into()),
        };
        let instant = |f: &str| {
            slot.get(f)
                .and_then(|v| serde_json::from_value::<DateTime<Utc>>(v.clone()).ok())
        };
        let (Some(start), Some(end)) = (instant("start"), instant("end")) else {
            return Ok(Err(ConflictKind::SlotGone));
        };
        if start <= self.now {
            return Err(ReconcileError::ChoiceNotOffered(
                "that slot has already started",
            ));
        }
        let schedule_id = slot
            .pointer("/schedule/reference")
            .and_then(Value::as_str)
            .and_then(|r| r.rsplit('/').next())
            .unwrap_or_default()
            .to_string();
        let schedule = self.upstream.read("Schedule", &schedule_id).await?.body;
        let actor_of = |t: &str| {
            schedule
                .get("actor")
                .and_then(Value::as_array)
                .and_then(|a| {
                    a.iter()
                        .filter_map(|x| x.get("reference").and_then(Value::as_str))
                        .find_map(|r| r.strip_prefix(&format!("{t}/")).map(str::to_string))
                })
        };
        booking.slot_id = slot_id.to_string();
        booking.slot_version = slot
            .pointer("/meta/versionId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        booking.start = start;
        booking.end = end;
        booking.practitioner_id = actor_of("Practitioner");
        booking.location_id = actor_of("Location").or(booking.location_id);
        Ok(self.create_booking(&entry.id, &booking).await?)
    }
}

/// Free upstream slots nearest after `from` (within GP Connect's 14-day search window).
pub async fn nearest_free_slots(
    upstream: &Upstream,
    from: DateTime<Utc>,
    count: usize,
) -> Result<Vec<Value>, UpstreamError> {
    let to = from + chrono::Duration::days(14);
    let fmt = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let url = upstream.url(&format!(
        "Slot?status=free&start=ge{}&start=lt{}&_sort=start&_count={count}",
        fmt(from),
        fmt(to)
    ));
    let page = upstream.search_page(&url).await?;
    Ok(page
        .resources
        .iter()
        .filter_map(|r| serde_json::from_str(r.get()).ok())
        .collect())
}

/// The conflict recorded on a journal row, if it is waiting for a decision.
pub fn conflict_of(entry: &JournalEntry) -> Option<ConflictRecord> {
    (entry.state == JournalState::Conflict)
        .then(|| {
            entry
                .outcome
                .as_deref()
                .and_then(|o| serde_json::from_str(o).ok())
        })
        .flatten()
}
