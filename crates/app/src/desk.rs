//! The desk: Lifeboat on one workstation, as both doors (the desktop app and the CLI) use
//! it. One method per use case; each checks the session (logged in, not locked, role
//! permits it) and the mode before it calls the engine, and audits what it did.
//!
//! The desk holds at most one session. The cache key lives only inside that session, in
//! memory; background work (health checks, scheduled sync, the idle lock) uses it while
//! someone is logged in, locked or not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, NaiveDate, Utc};
use lifeboat_access::{
    Access, AccessSettings, Account, NewAccount, Operation, Password, Role, Session,
};
use lifeboat_engine::booking::{self, Actor, Attendance, BookRequest, Confirmation};
use lifeboat_engine::reconcile::{
    self, ConflictRecord, Decision, ReconcileReport, Reconciler, ReplayEvent, ReplayObserver,
};
use lifeboat_engine::{Mode, ModeController, ModeEvent, SyncProgress, Syncer};
use lifeboat_model::time::{format_uk, london_to_utc};
use lifeboat_model::{Clock, DataAge};
use lifeboat_store::{
    AppointmentView, AuditAction, AuditFilter, DiaryLine, JournalEntry, JournalState, OfflineNote,
    PackKind, PatientMatch, SavedPack, SlotQuery, SlotView, Store, SummaryLine, WorkItem,
    search_shape,
};
use lifeboat_upstream::Upstream;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};

use crate::{AppError, Config, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub workstation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionState {
    pub setup_needed: bool,
    pub user: Option<UserInfo>,
    pub locked: bool,
}

/// What the mode banner shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    pub mode: Mode,
    pub declared: bool,
    pub drill: bool,
    pub data_as_of: String,
    pub data_age_seconds: Option<i64>,
    pub unsettled_changes: u64,
    pub last_sync_error: Option<String>,
    pub upstream: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncSummary {
    pub fetched: u64,
    pub written: u64,
    pub rejected: u64,
    pub removed: u64,
    pub requests: u64,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PatientOverview {
    pub patient: PatientMatch,
    pub phone: Option<String>,
    pub alerts: Vec<SummaryLine>,
    pub appointments: Vec<AppointmentView>,
    pub data_as_of: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClinicalSummary {
    pub patient: PatientMatch,
    pub alerts: Vec<SummaryLine>,
    pub allergies: Vec<SummaryLine>,
    pub medications: Vec<SummaryLine>,
    pub problems: Vec<SummaryLine>,
    pub results: Vec<SummaryLine>,
    pub immunisations: Vec<SummaryLine>,
    pub encounters: Vec<SummaryLine>,
    pub offline_notes: Vec<OfflineNote>,
    pub data_as_of: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Practitioner {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DayBook {
    pub date: NaiveDate,
    pub lines: Vec<DiaryLine>,
    pub data_as_of: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConflictView {
    pub journal_id: String,
    pub kind: reconcile::ConflictKind,
    pub summary: String,
    pub ours: Value,
    pub upstream: Option<Value>,
    pub choices: Vec<reconcile::Choice>,
    pub nearest_slots: Vec<SlotView>,
    /// Who the references on either side are, from the cache: `Patient/<id>` to
    /// "SMITH, John (born 12 Mar 1958, NHS 999 176 8378)", `Practitioner/<id>` to a name.
    pub names: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DrillSummary {
    pub changes: usize,
    pub by_kind: BTreeMap<String, usize>,
}

/// How the cache stands, per resource type, for `lifeboat status` and the manager's screen.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheStatus {
    pub status: StatusView,
    pub kinds: Vec<KindStatus>,
    pub rejected: Vec<Rejection>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KindStatus {
    pub kind: lifeboat_model::ResourceKind,
    pub cached: u64,
    pub phase: Option<String>,
    pub done: u64,
    pub total: Option<u64>,
    pub last_completed: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    pub kind: String,
    pub id: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditCheck {
    pub entries: u64,
    pub ok: bool,
    pub problem: Option<String>,
}

/// A downtime pack just prepared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreparedPack {
    pub for_date: NaiveDate,
    pub prepared_at: DateTime<Utc>,
    pub data_as_of: String,
    /// The folder the PDFs were also written to, if one is configured.
    pub written_to: Option<PathBuf>,
}

/// What the desk tells its screens as it happens.
#[derive(Debug, Clone, Serialize)]
#[serde(
    tag = "event",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum DeskEvent {
    Status(StatusView),
    SyncProgress(SyncProgress),
    ReconcileProgress { index: usize, steps: usize },
    Locked { reason: String },
}

/// A free-slot search as a screen asks it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SlotSearch {
    pub practitioner_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub days: Option<i64>,
    pub limit: Option<usize>,
}

struct DeskState {
    session: Option<Session>,
    /// The drill's copy of the cache, while a drill runs.
    drill: Option<PathBuf>,
}

pub struct Desk {
    config: Config,
    access: Access,
    clock: Arc<dyn Clock>,
    state: Mutex<DeskState>,
    events: broadcast::Sender<DeskEvent>,
}

fn wrong_mode(mode: Mode) -> AppError {
    AppError::new(
        "wrong_mode",
        match mode {
            Mode::Online => {
                "Lifeboat is online: make changes in the clinical system. A manager can declare an outage if it is unusable."
            }
            Mode::Reconciling => "Reconciliation is running: changes are paused until it finishes.",
            _ => "This cannot be done in the current mode.",
        },
    )
}

fn not_logged_in() -> AppError {
    AppError::new("not_logged_in", "log in first")
}

/// Setting in a drill's copy: the journal seq of the drill's first own change.
const DRILL_FIRST_SEQ: &str = "drill.first_seq";

/// The path of a drill's copy beside the cache.
fn drill_path(cache: &Path) -> PathBuf {
    let mut name = cache.file_name().unwrap_or_default().to_os_string();
    name.push(".drill");
    cache.with_file_name(name)
}

impl Desk {
    pub fn open(config: Config, clock: Arc<dyn Clock>) -> Self {
        Self::with_access_settings(config, clock, AccessSettings::default())
    }

    /// As `open`, with access settings of the caller's choosing (tests use a cheap KDF).
    pub fn with_access_settings(
        config: Config,
        clock: Arc<dyn Clock>,
        settings: AccessSettings,
    ) -> Self {
        let access = Access::new(&config.cache, settings, clock.clone());
        let (events, _) = broadcast::channel(256);
        Self {
            config,
            access,
            clock,
            state: Mutex::new(DeskState {
                session: None,
                drill: None,
            }),
            events,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn subscribe(&self) -> broadcast::Receiver<DeskEvent> {
        self.events.subscribe()
    }

    fn state(&self) -> MutexGuard<'_, DeskState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, e: DeskEvent) {
        let _ = self.events.send(e);
    }

    fn cache_path(&self, state: &DeskState) -> PathBuf {
        state
            .drill
            .clone()
            .unwrap_or_else(|| self.config.cache.clone())
    }

    /// Runs `f` for the logged-in person if their session allows `op`.
    fn act<T>(
        &self,
        op: Operation,
        f: impl FnOnce(&Session, &mut Store, DateTime<Utc>) -> Result<T>,
    ) -> Result<T> {
        let now = self.clock.now();
        let mut state = self.state();
        let path = self.cache_path(&state);
        let session = state.session.as_mut().ok_or_else(not_logged_in)?;
        session.require(op, now)?;
        let mut store = Store::open(&path, session.cache_key())?;
        f(session, &mut store, now)
    }

    /// As `act`, for offline changes: also refused unless the mode accepts them.
    fn change<T>(
        &self,
        op: Operation,
        f: impl FnOnce(Actor<'_>, &mut Store, DateTime<Utc>) -> Result<T>,
    ) -> Result<T> {
        let result = self.act(op, |session, store, now| {
            let mode = ModeController::current(store)?.mode;
            if !mode.accepts_offline_changes() {
                return Err(wrong_mode(mode));
            }
            let actor = Actor {
                user: session.username(),
                workstation: session.workstation(),
            };
            f(actor, store, now)
        });
        if result.is_ok() {
            self.publish_status();
        }
        result
    }

    /// The key, cache path, user and workstation for work that awaits (sync, reconcile).
    fn for_async(
        &self,
        op: Operation,
    ) -> Result<(lifeboat_store::CacheKey, PathBuf, String, String)> {
        let now = self.clock.now();
        let mut state = self.state();
        let path = self.cache_path(&state);
        let session = state.session.as_mut().ok_or_else(not_logged_in)?;
        session.require(op, now)?;
        Ok((
            session.cache_key().clone(),
            path,
            session.username().to_string(),
            session.workstation().to_string(),
        ))
    }

    /// The key and real cache for background work: only while someone is logged in (locked
    /// or not) and no drill is running.
    fn for_background(&self) -> Option<(lifeboat_store::CacheKey, PathBuf)> {
        let state = self.state();
        if state.drill.is_some() {
            return None;
        }
        let session = state.session.as_ref()?;
        Some((session.cache_key().clone(), self.cache_path(&state)))
    }

    fn upstream(&self) -> Result<Upstream> {
        Ok(Upstream::new(self.config.upstream_config()?)?)
    }

    // ---- Session ----

    pub fn session_state(&self) -> SessionState {
        let state = self.state();
        SessionState {
            setup_needed: !self.access.is_set_up(),
            user: state.session.as_ref().map(user_info),
            locked: state.session.as_ref().is_some_and(Session::is_locked),
        }
    }

    /// First run: creates the cache and its first manager, who is then logged in.
    pub fn setup(&self, username: &str, display_name: &str, password: &str) -> Result<UserInfo> {
        let session = self.access.setup(
            username,
            display_name,
            &Password::new(password),
            &self.config.workstation,
        )?;
        let info = user_info(&session);
        self.state().session = Some(session);
        Ok(info)
    }

    pub fn login(&self, username: &str, password: &str) -> Result<UserInfo> {
        let session =
            self.access
                .login(username, &Password::new(password), &self.config.workstation)?;
        let info = user_info(&session);
        let previous = self.state().session.replace(session);
        if let Some(old) = previous {
            let _ = old.logout();
        }
        self.publish_status();
        Ok(info)
    }

    pub fn lock(&self) -> Result<()> {
        let mut state = self.state();
        let session = state.session.as_mut().ok_or_else(not_logged_in)?;
        session.lock()?;
        Ok(())
    }

    pub fn unlock(&self, password: &str) -> Result<UserInfo> {
        let mut state = self.state();
        let session = state.session.as_mut().ok_or_else(not_logged_in)?;
        session.unlock(&Password::new(password))?;
        Ok(user_info(session))
    }

    pub fn logout(&self) -> Result<()> {
        if let Some(session) = self.state().session.take() {
            session.logout()?;
        }
        Ok(())
    }

    /// Locks an idle session (for the screen's timer); true if it locked it now.
    pub fn lock_if_idle(&self) -> Result<bool> {
        let now = self.clock.now();
        let locked = match self.state().session.as_mut() {
            Some(s) => s.lock_if_idle(now)?,
            None => false,
        };
        if locked {
            self.emit(DeskEvent::Locked {
                reason: "idle".into(),
            });
        }
        Ok(locked)
    }

    /// Activity at the screen that is not itself a use case (typing, scrolling).
    pub fn touch(&self) {
        let now = self.clock.now();
        if let Some(s) = self.state().session.as_mut() {
            s.touch(now);
        }
    }

    // ---- Status and mode ----

    pub fn status(&self) -> Result<StatusView> {
        let state = self.state();
        let session = state.session.as_ref().ok_or_else(not_logged_in)?;
        let store = Store::open(self.cache_path(&state), session.cache_key())?;
        self.status_of(&store, state.drill.is_some())
    }

    /// How old the cache is: since the start of the last complete sync.
    fn data_age(&self, store: &Store) -> Result<Option<DataAge>> {
        let now = self.clock.now();
        Ok(store
            .setting(lifeboat_engine::sync::DATA_AS_OF)?
            .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
            .map(|t| DataAge::new(t.with_timezone(&Utc), now)))
    }

    /// The "data as of" line every screen with cached data shows.
    fn data_as_of(&self, store: &Store) -> Result<String> {
        Ok(describe_age(self.data_age(store)?))
    }

    fn status_of(&self, store: &Store, drill: bool) -> Result<StatusView> {
        let mode = ModeController::current(store)?;
        let age = self.data_age(store)?;
        Ok(StatusView {
            mode: mode.mode,
            declared: mode.declared,
            drill,
            data_as_of: describe_age(age),
            data_age_seconds: age.map(|a| a.seconds),
            unsettled_changes: store.unsettled_journal_count()?,
            last_sync_error: store
                .setting(lifeboat_engine::sync::LAST_ERROR)?
                .filter(|s| !s.is_empty()),
            upstream: self.config.upstream.base_url.clone(),
        })
    }

    /// Counts, sync progress and refused resources per type (manager).
    pub fn cache_status(&self) -> Result<CacheStatus> {
        let drill = self.state().drill.is_some();
        self.act(Operation::Sync, |_, store, _| {
            let states = store.sync_states()?;
            let kinds = lifeboat_model::ResourceKind::ALL
                .into_iter()
                .map(|kind| {
                    let state = states.iter().find(|s| s.kind == kind);
                    Ok(KindStatus {
                        kind,
                        cached: store.count(kind)?,
                        phase: state.map(|s| s.phase.clone()),
                        done: state.map_or(0, |s| s.done),
                        total: state.and_then(|s| s.total),
                        last_completed: state.and_then(|s| s.completed_at).map(format_uk),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let rejected = store
                .rejections()?
                .into_iter()
                .map(|(kind, id, reason, _)| Rejection { kind, id, reason })
                .collect();
            Ok(CacheStatus {
                status: self.status_of(store, drill)?,
                kinds,
                rejected,
            })
        })
    }

    fn publish_status(&self) {
        if let Ok(s) = self.status() {
            self.emit(DeskEvent::Status(s));
        }
    }

    fn move_mode(
        &self,
        op: Operation,
        event: ModeEvent,
        action: AuditAction,
    ) -> Result<StatusView> {
        self.act(op, |session, store, now| {
            let moved = ModeController::apply(store, event, session.username(), now)?;
            let mut entry = session.audit_entry(now, action);
            if let Some(t) = &moved {
                entry = entry.detail(format!("{} -> {}", t.from, t.to));
            }
            store.append_audit(&entry)?;
            Ok(())
        })?;
        let status = self.status()?;
        self.emit(DeskEvent::Status(status.clone()));
        Ok(status)
    }

    pub fn declare_outage(&self) -> Result<StatusView> {
        self.move_mode(
            Operation::DeclareOutage,
            ModeEvent::DeclareOutage,
            AuditAction::OutageDeclared,
        )
    }

    pub fn end_outage(&self) -> Result<StatusView> {
        self.move_mode(
            Operation::EndOutage,
            ModeEvent::EndOutage,
            AuditAction::OutageEnded,
        )
    }

    /// What the health monitor saw, applied to the mode (actor: the monitor).
    pub fn upstream_health(&self, up: bool) -> Result<Option<StatusView>> {
        let Some((key, path)) = self.for_background() else {
            return Ok(None);
        };
        let mut store = Store::open(&path, &key)?;
        let event = if up {
            ModeEvent::UpstreamUp
        } else {
            ModeEvent::UpstreamDown
        };
        let now = self.clock.now();
        let moved = ModeController::apply(&mut store, event, "health monitor", now)?;
        let Some(t) = moved else { return Ok(None) };
        store.append_audit(
            &lifeboat_store::AuditEntry::new(
                now,
                "health monitor",
                &self.config.workstation,
                AuditAction::ModeChanged,
            )
            .detail(format!("{} -> {}: {}", t.from, t.to, t.cause)),
        )?;
        let status = self.status_of(&store, false)?;
        self.emit(DeskEvent::Status(status.clone()));
        Ok(Some(status))
    }

    /// A sync now (manager), with progress as events.
    pub async fn sync_now(&self) -> Result<SyncSummary> {
        let (key, path, user, workstation) = self.for_async(Operation::Sync)?;
        self.sync_with(key, &path, &user, &workstation).await
    }

    /// A scheduled sync by the background scheduler, if someone is logged in.
    pub async fn scheduled_sync(&self) -> Result<Option<SyncSummary>> {
        let Some((key, path)) = self.for_background() else {
            return Ok(None);
        };
        let mode = ModeController::current(&Store::open(&path, &key)?)?.mode;
        if !matches!(mode, Mode::Online | Mode::Recovering) {
            return Ok(None);
        }
        self.sync_with(
            key,
            &path,
            "sync scheduler",
            &self.config.workstation.clone(),
        )
        .await
        .map(Some)
    }

    async fn sync_with(
        &self,
        key: lifeboat_store::CacheKey,
        path: &Path,
        user: &str,
        workstation: &str,
    ) -> Result<SyncSummary> {
        if self.state().drill.is_some() {
            return Err(AppError::new(
                "drill",
                "a drill never talks to the upstream",
            ));
        }
        let syncer = Syncer::new(
            Arc::new(self.upstream()?),
            path,
            key.clone(),
            self.clock.clone(),
            self.config.sync_settings(),
        );
        let (tx, mut rx) = mpsc::unbounded_channel();
        let events = self.events.clone();
        let forward = tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                let _ = events.send(DeskEvent::SyncProgress(p));
            }
        });
        let result = syncer.run(Some(tx)).await;
        let _ = forward.await;
        let mut store = Store::open(path, &key)?;
        let now = self.clock.now();
        let detail = match &result {
            Ok(r) => format!(
                "{} fetched, {} refused, {} removed",
                r.total().fetched,
                r.total().rejected,
                r.total().removed
            ),
            Err(e) => format!("failed: {e}"),
        };
        store.append_audit(
            &lifeboat_store::AuditEntry::new(now, user, workstation, AuditAction::SyncRun)
                .detail(detail),
        )?;
        if result.is_ok() {
            self.publish_status();
        }
        // The cache's data is all in and shown; the file's tidying finishes before the
        // syncer goes (so never on an async thread).
        syncer.tidied().await;
        let report = result?;
        let t = report.total();
        Ok(SyncSummary {
            fetched: t.fetched,
            written: t.written,
            rejected: t.rejected,
            removed: t.removed,
            requests: t.requests,
            elapsed_ms: report.elapsed_ms,
        })
    }

    // ---- Patients ----

    pub fn search_patients(&self, query: &str, limit: usize) -> Result<Vec<PatientMatch>> {
        self.act(Operation::SearchPatients, |session, store, now| {
            let found =
                store.search_patients(query, limit.clamp(1, 100), self.clock.today_in_london())?;
            store.append_audit(
                &session
                    .audit_entry(now, AuditAction::PatientSearched)
                    .detail(search_shape(query)),
            )?;
            Ok(found)
        })
    }

    /// Demographics, alerts and upcoming appointments: what reception may see.
    pub fn patient_overview(&self, patient_id: &str) -> Result<PatientOverview> {
        self.act(Operation::ViewDemographics, |session, store, now| {
            let patient = store
                .patient_match(patient_id, self.clock.today_in_london())?
                .ok_or_else(|| AppError::new("not_found", "that patient is not in the cache"))?;
            let brief = store.patient_brief(patient_id)?;
            let alerts = store
                .clinical_entries(patient_id)?
                .into_iter()
                .filter(|l| l.kind == "Flag")
                .collect();
            let appointments =
                store.patient_appointments(patient_id, now - chrono::Duration::days(1))?;
            store.append_audit(
                &session
                    .audit_entry(now, AuditAction::DemographicsViewed)
                    .subject(format!("Patient/{patient_id}")),
            )?;
            Ok(PatientOverview {
                patient,
                phone: brief.and_then(|b| b.phone),
                alerts,
                appointments,
                data_as_of: self.data_as_of(store)?,
            })
        })
    }

    /// The clinical summary: clinicians and managers only.
    pub fn patient_summary(&self, patient_id: &str) -> Result<ClinicalSummary> {
        self.act(Operation::ViewClinicalSummary, |session, store, now| {
            let patient = store
                .patient_match(patient_id, self.clock.today_in_london())?
                .ok_or_else(|| AppError::new("not_found", "that patient is not in the cache"))?;
            let mut by_kind: BTreeMap<String, Vec<SummaryLine>> = BTreeMap::new();
            for line in store.clinical_entries(patient_id)? {
                by_kind.entry(line.kind.clone()).or_default().push(line);
            }
            let mut take = |kinds: &[&str]| {
                kinds
                    .iter()
                    .flat_map(|k| by_kind.remove(*k).unwrap_or_default())
                    .collect::<Vec<_>>()
            };
            let summary = ClinicalSummary {
                patient,
                alerts: take(&["Flag"]),
                allergies: take(&["AllergyIntolerance"]),
                medications: take(&["MedicationStatement", "MedicationRequest"]),
                problems: take(&["Condition"]),
                results: take(&["Observation"]),
                immunisations: take(&["Immunization"]),
                encounters: take(&["Encounter"]),
                offline_notes: store.notes_for_patient(patient_id)?,
                data_as_of: self.data_as_of(store)?,
            };
            store.append_audit(
                &session
                    .audit_entry(now, AuditAction::ClinicalSummaryViewed)
                    .subject(format!("Patient/{patient_id}")),
            )?;
            Ok(summary)
        })
    }

    pub fn write_note(
        &self,
        patient_id: &str,
        appointment_id: Option<&str>,
        text: &str,
    ) -> Result<OfflineNote> {
        self.change(Operation::WriteClinicalNote, |actor, store, now| {
            Ok(booking::write_note(
                store,
                actor,
                patient_id,
                appointment_id,
                text,
                now,
            )?)
        })
    }

    // ---- Appointment book ----

    pub fn practitioners(&self) -> Result<Vec<Practitioner>> {
        self.act(Operation::ViewAppointments, |_, store, _| {
            Ok(store
                .practitioners()?
                .into_iter()
                .map(|(id, name)| Practitioner { id, name })
                .collect())
        })
    }

    /// One London day of the book.
    pub fn day_book(&self, date: NaiveDate, practitioner_id: Option<&str>) -> Result<DayBook> {
        self.act(Operation::ViewAppointments, |session, store, now| {
            let from = london_to_utc(date.and_hms_opt(0, 0, 0).unwrap_or_default());
            let to = london_to_utc(
                (date + chrono::Days::new(1))
                    .and_hms_opt(0, 0, 0)
                    .unwrap_or_default(),
            );
            let lines = store.day_book(from, to, practitioner_id)?;
            store.append_audit(
                &session
                    .audit_entry(now, AuditAction::AppointmentsViewed)
                    .detail(format!("day book {date}")),
            )?;
            Ok(DayBook {
                date,
                lines,
                data_as_of: self.data_as_of(store)?,
            })
        })
    }

    /// Free slots, soonest first, never in the past.
    pub fn free_slots(&self, q: &SlotSearch) -> Result<Vec<SlotView>> {
        self.act(Operation::ViewAppointments, |_, store, now| {
            let from = q.from.map_or(now, |f| f.max(now));
            Ok(store.free_slots(&SlotQuery {
                practitioner_id: q.practitioner_id.clone(),
                service_type: None,
                from: Some(from),
                to: Some(from + chrono::Duration::days(q.days.unwrap_or(14).clamp(1, 56))),
                limit: q.limit.unwrap_or(50).clamp(1, 500),
            })?)
        })
    }

    pub fn book(&self, req: &BookRequest) -> Result<Confirmation> {
        self.change(Operation::BookAppointment, |actor, store, now| {
            Ok(booking::book(store, actor, req, now)?)
        })
    }

    pub fn cancel_appointment(&self, appointment_id: &str, reason: &str) -> Result<Confirmation> {
        self.change(Operation::CancelAppointment, |actor, store, now| {
            Ok(booking::cancel(store, actor, appointment_id, reason, now)?)
        })
    }

    pub fn move_appointment(&self, appointment_id: &str, slot_id: &str) -> Result<Confirmation> {
        self.change(Operation::MoveAppointment, |actor, store, now| {
            Ok(booking::move_appointment(
                store,
                actor,
                appointment_id,
                slot_id,
                now,
            )?)
        })
    }

    pub fn mark_attendance(
        &self,
        appointment_id: &str,
        attendance: Attendance,
    ) -> Result<Confirmation> {
        let op = match attendance {
            Attendance::Arrived => Operation::MarkArrived,
            Attendance::DidNotAttend => Operation::MarkDidNotAttend,
        };
        self.change(op, |actor, store, now| {
            Ok(booking::mark_attendance(
                store,
                actor,
                appointment_id,
                attendance,
                now,
            )?)
        })
    }

    /// Offline changes held locally, oldest first.
    pub fn journal(&self) -> Result<Vec<JournalEntry>> {
        self.act(Operation::ViewAppointments, |_, store, _| {
            Ok(store.journal(&[])?)
        })
    }

    // ---- Reconciliation ----

    /// Replays the journal upstream (manager). Not a dry run: moves the mode to Reconciling,
    /// then to Online (all settled, after a sync) or Recovering (decisions wait), or Offline
    /// if the upstream failed again.
    pub async fn reconcile(&self, dry_run: bool) -> Result<ReconcileReport> {
        let (key, path, user, workstation) = self.for_async(Operation::Reconcile)?;
        if self.state().drill.is_some() {
            return Err(reconcile::ReconcileError::Drill.into());
        }
        let upstream = self.upstream()?;
        let mut store = Store::open(&path, &key)?;
        let now = self.clock.now();
        if !dry_run {
            ModeController::apply(&mut store, ModeEvent::StartReconciliation, &user, now)?;
            store.append_audit(&lifeboat_store::AuditEntry::new(
                now,
                &user,
                &workstation,
                AuditAction::ReconciliationStarted,
            ))?;
            self.publish_status();
        }
        let mut observer = Progress {
            events: self.events.clone(),
            steps: 0,
        };
        let result = Reconciler {
            upstream: &upstream,
            store: &mut store,
            now,
        }
        .run(dry_run, &mut observer)
        .await;
        if dry_run {
            return Ok(result?);
        }
        let report = match result {
            Ok(r) => r,
            Err(e) => {
                ModeController::apply(
                    &mut store,
                    ModeEvent::ReconciliationStopped,
                    &user,
                    self.clock.now(),
                )?;
                self.publish_status();
                return Err(e.into());
            }
        };
        if report.stopped.is_some() {
            ModeController::apply(
                &mut store,
                ModeEvent::ReconciliationStopped,
                &user,
                self.clock.now(),
            )?;
        } else {
            // Bring the cache up to date with what was just written, then leave Reconciling.
            drop(store);
            let synced = self
                .sync_with(key.clone(), &path, &user, &workstation)
                .await;
            store = Store::open(&path, &key)?;
            let event = if synced.is_ok() {
                ModeEvent::ReconciliationFinished
            } else {
                ModeEvent::ReconciliationStopped
            };
            ModeController::apply(&mut store, event, &user, self.clock.now())?;
        }
        let count = |f: fn(&reconcile::StepResult) -> bool| report.count(f);
        store.append_audit(
            &lifeboat_store::AuditEntry::new(
                self.clock.now(),
                &user,
                &workstation,
                AuditAction::ReconciliationFinished,
            )
            .detail(format!(
                "{} applied, {} conflicts, {} to the worklist, {} superseded{}",
                count(|r| matches!(r, reconcile::StepResult::Applied { .. })),
                count(|r| matches!(r, reconcile::StepResult::Conflict { .. })),
                count(|r| matches!(r, reconcile::StepResult::BackEntry)),
                count(|r| matches!(r, reconcile::StepResult::Superseded)),
                report
                    .stopped
                    .as_deref()
                    .map(|s| format!("; stopped: {s}"))
                    .unwrap_or_default()
            )),
        )?;
        self.publish_status();
        Ok(report)
    }

    /// Conflicts waiting for a decision, with both sides and (for bookings) the nearest free
    /// upstream slots to re-book into.
    pub async fn conflicts(&self) -> Result<Vec<ConflictView>> {
        let (key, path, _, _) = self.for_async(Operation::ResolveConflict)?;
        let entries: Vec<(JournalEntry, ConflictRecord, BTreeMap<String, String>)> = {
            let store = Store::open(&path, &key)?;
            let clinicians: BTreeMap<String, String> = store.practitioners()?.into_iter().collect();
            let mut entries = Vec::new();
            for e in store.journal(&[JournalState::Conflict])? {
                let Some(c) = reconcile::conflict_of(&e) else {
                    continue;
                };
                let mut names = BTreeMap::new();
                for reference in references(&c.ours).chain(c.upstream.iter().flat_map(references)) {
                    if names.contains_key(&reference) {
                        continue; // named already (the same person on both sides)
                    }
                    let name = match reference.split_once('/') {
                        Some(("Patient", id)) => store.patient_brief(id)?.map(|p| p.label()),
                        Some(("Practitioner", id)) => clinicians.get(id).cloned(),
                        _ => None,
                    };
                    if let Some(name) = name {
                        names.insert(reference, name);
                    }
                }
                entries.push((e, c, names));
            }
            entries
        };
        let upstream = self.upstream().ok();
        let mut views = Vec::new();
        for (entry, record, names) in entries {
            let mut nearest_slots = Vec::new();
            if let (Some(up), true) = (
                &upstream,
                record.kind.choices().contains(&reconcile::Choice::Rebook),
            ) {
                let from = record
                    .ours
                    .get("start")
                    .and_then(|v| serde_json::from_value::<DateTime<Utc>>(v.clone()).ok())
                    .unwrap_or_else(|| self.clock.now())
                    .max(self.clock.now());
                if let Ok(found) = reconcile::nearest_free_slots(up, from, 5).await {
                    let store = Store::open(&path, &key)?;
                    nearest_slots = found
                        .iter()
                        .filter_map(|s| s.get("id").and_then(Value::as_str))
                        .filter_map(|id| store.slot(id).ok().flatten())
                        .collect();
                }
            }
            views.push(ConflictView {
                journal_id: entry.id,
                kind: record.kind,
                summary: record.summary,
                ours: record.ours,
                upstream: record.upstream,
                choices: record.kind.choices(),
                nearest_slots,
                names,
            });
        }
        Ok(views)
    }

    pub async fn resolve_conflict(
        &self,
        journal_id: &str,
        decision: &Decision,
    ) -> Result<JournalEntry> {
        let (key, path, user, workstation) = self.for_async(Operation::ResolveConflict)?;
        let upstream = self.upstream()?;
        let mut store = Store::open(&path, &key)?;
        let entry = Reconciler {
            upstream: &upstream,
            store: &mut store,
            now: self.clock.now(),
        }
        .resolve(journal_id, decision, &user, &workstation)
        .await?;
        // A conflict settled outside a run may leave nothing unsettled: back to Online.
        if store.unsettled_journal_count()? == 0
            && ModeController::current(&store)?.mode == Mode::Recovering
        {
            ModeController::apply(&mut store, ModeEvent::EndOutage, &user, self.clock.now())?;
        }
        self.publish_status();
        Ok(entry)
    }

    pub fn worklist(&self, include_done: bool) -> Result<Vec<WorkItem>> {
        self.act(Operation::BackEntryWorklist, |_, store, _| {
            Ok(store.worklist(include_done)?)
        })
    }

    pub fn complete_work_item(&self, id: i64) -> Result<Vec<WorkItem>> {
        self.act(Operation::BackEntryWorklist, |session, store, now| {
            let tx = store.transaction()?;
            if !tx.complete_work_item(id, session.username(), now)? {
                return Err(AppError::new("not_found", "that worklist item is not open"));
            }
            tx.append_audit(
                &session
                    .audit_entry(now, AuditAction::BackEntryCompleted)
                    .subject(format!("WorkItem/{id}")),
            )?;
            tx.commit()?;
            Ok(store.worklist(false)?)
        })
    }

    // ---- Accounts and audit ----

    fn with_session<T>(&self, f: impl FnOnce(&Access, &mut Session) -> Result<T>) -> Result<T> {
        let mut state = self.state();
        let session = state.session.as_mut().ok_or_else(not_logged_in)?;
        f(&self.access, session)
    }

    pub fn accounts(&self) -> Result<Vec<Account>> {
        self.with_session(|a, s| Ok(a.accounts(s)?))
    }

    pub fn add_account(
        &self,
        username: &str,
        display_name: &str,
        role: Role,
        password: &str,
    ) -> Result<Account> {
        self.with_session(|a, s| {
            Ok(a.add_account(
                s,
                &NewAccount {
                    username: username.into(),
                    display_name: display_name.into(),
                    role,
                    password: Password::new(password),
                },
            )?)
        })
    }

    pub fn disable_account(&self, username: &str) -> Result<Vec<Account>> {
        self.with_session(|a, s| {
            a.disable_account(s, username)?;
            Ok(a.accounts(s)?)
        })
    }

    pub fn reset_password(&self, username: &str, password: &str) -> Result<()> {
        self.with_session(|a, s| Ok(a.reset_password(s, username, &Password::new(password))?))
    }

    pub fn audit_verify(&self) -> Result<AuditCheck> {
        self.with_session(|a, s| {
            let v = a.verify_audit(s)?;
            Ok(AuditCheck {
                entries: v.intact_entries,
                ok: v.is_intact(),
                problem: (!v.is_intact()).then(|| v.describe()),
            })
        })
    }

    /// The audit (all, or for one patient, or a time range) as CSV.
    pub fn audit_export(&self, filter: &AuditFilter) -> Result<String> {
        self.with_session(|a, s| {
            let rows = a.export_audit(s, filter)?;
            let mut csv = String::from("seq,at,actor,workstation,action,subject,detail\n");
            for r in rows {
                let field = |v: &str| format!("\"{}\"", v.replace('"', "\"\""));
                csv.push_str(&format!(
                    "{},{},{},{},{},{},{}\n",
                    r.seq,
                    field(&format_uk(r.at)),
                    field(&r.actor),
                    field(&r.workstation),
                    field(&r.action),
                    field(r.subject.as_deref().unwrap_or_default()),
                    field(r.detail.as_deref().unwrap_or_default())
                ));
            }
            Ok(csv)
        })
    }

    /// Patients booked in `[from, to)` (London days, inclusive of `to`) with their phone
    /// numbers and appointment details, as CSV, for ringing them about rescheduling during
    /// an outage. Managers only; audited with the period and the number of rows.
    pub fn contact_list(&self, from: NaiveDate, to: NaiveDate) -> Result<String> {
        self.act(Operation::ExportContactList, |session, store, now| {
            let start = london_to_utc(from.and_hms_opt(0, 0, 0).unwrap_or_default());
            let end = london_to_utc(
                (to + chrono::Days::new(1))
                    .and_hms_opt(0, 0, 0)
                    .unwrap_or_default(),
            );
            let mut csv =
                String::from("appointment,clinician,status,patient,born,nhs_number,phone,reason\n");
            let mut rows = 0;
            for line in store.day_book(start, end, None)? {
                let Some(a) = line.appointment else { continue };
                let Some(p) = &a.patient else { continue };
                let field = |v: &str| format!("\"{}\"", v.replace('"', "\"\""));
                csv.push_str(&format!(
                    "{},{},{},{},{},{},{},{}\n",
                    field(&format_uk(a.start)),
                    field(a.practitioner_name.as_deref().unwrap_or_default()),
                    field(&a.status),
                    field(&format!("{}, {}", p.family.to_uppercase(), p.given)),
                    field(
                        &p.birth_date
                            .map(|d| d.format("%d/%m/%Y").to_string())
                            .unwrap_or_default()
                    ),
                    field(p.nhs_number.as_deref().unwrap_or_default()),
                    field(p.phone.as_deref().unwrap_or_default()),
                    field(a.description.as_deref().unwrap_or_default()),
                ));
                rows += 1;
            }
            store.append_audit(
                &session
                    .audit_entry(now, AuditAction::ContactListExported)
                    .detail(format!("{from} to {to}: {rows} appointments")),
            )?;
            Ok(csv)
        })
    }

    /// The day list (PDF) for one clinician or all: any member of staff; audited.
    pub fn day_list_pdf(&self, date: NaiveDate, practitioner_id: Option<&str>) -> Result<Vec<u8>> {
        self.act(Operation::PrintDayList, |session, store, now| {
            let pdf = crate::downtime::day_list(
                store,
                date,
                practitioner_id,
                now,
                &self.data_as_of(store)?,
            )?;
            store.append_audit(
                &session
                    .audit_entry(now, AuditAction::DayListPrinted)
                    .detail(format!("{date}")),
            )?;
            Ok(pdf)
        })
    }

    /// The clinical summary pack (PDF) for a day's patients: clinicians and managers; audited.
    pub fn summary_pack_pdf(
        &self,
        date: NaiveDate,
        practitioner_id: Option<&str>,
    ) -> Result<Vec<u8>> {
        self.act(
            Operation::PrintClinicalSummaryPack,
            |session, store, now| {
                let today = self.clock.today_in_london();
                let pdf = crate::downtime::summary_pack(
                    store,
                    date,
                    practitioner_id,
                    today,
                    now,
                    &self.data_as_of(store)?,
                )?;
                store.append_audit(
                    &session
                        .audit_entry(now, AuditAction::ClinicalSummaryPackPrinted)
                        .detail(format!("{date}")),
                )?;
                Ok(pdf)
            },
        )
    }

    /// Prepares the downtime pack now, whatever the time of day (clinicians and managers):
    /// e.g. before a planned outage.
    pub fn prepare_downtime_pack(&self) -> Result<PreparedPack> {
        self.act(
            Operation::PrintClinicalSummaryPack,
            |session, store, now| self.prepare_pack(store, now, session.username()),
        )
    }

    /// The scheduler's preparation: only when one is due (see `downtime::pack_due`), the
    /// upstream is up, someone is logged in and no drill is running.
    pub fn prepare_downtime_pack_if_due(&self) -> Result<Option<PreparedPack>> {
        let settings = &self.config.downtime_pack;
        if !settings.enabled {
            return Ok(None);
        }
        let at = settings.prepare_time()?;
        let Some((key, path)) = self.for_background() else {
            return Ok(None);
        };
        let mut store = Store::open(&path, &key)?;
        let now = self.clock.now();
        if ModeController::current(&store)?.mode != Mode::Online
            || !crate::downtime::pack_due(now, at, store.last_pack_prepared()?)
        {
            return Ok(None);
        }
        self.prepare_pack(&mut store, now, "pack scheduler")
            .map(Some)
    }

    fn prepare_pack(
        &self,
        store: &mut Store,
        now: DateTime<Utc>,
        by: &str,
    ) -> Result<PreparedPack> {
        // To the millisecond, as the cache keeps it, so what this returns is what is kept.
        let now = chrono::SubsecRound::trunc_subsecs(now, 3);
        let settings = &self.config.downtime_pack;
        let for_date = crate::downtime::pack_date(store, now, settings.prepare_time()?)?;
        let data_as_of = self.data_as_of(store)?;
        let documents = crate::downtime::render_pack(
            store,
            for_date,
            self.clock.today_in_london(),
            now,
            &data_as_of,
        )?;
        let keep = settings.keep.max(1);
        let tx = store.transaction()?;
        for (kind, pdf) in &documents {
            tx.save_pack(now, for_date, *kind, &data_as_of, pdf)?;
        }
        tx.prune_packs(keep)?;
        tx.append_audit(
            &lifeboat_store::AuditEntry::new(
                now,
                by,
                &self.config.workstation,
                AuditAction::DowntimePackPrepared,
            )
            .detail(format!("for {for_date}")),
        )?;
        tx.commit()?;
        if let Some(dir) = &settings.directory {
            crate::downtime::write_pack_files(dir, now, for_date, &documents, keep).map_err(
                |e| {
                    AppError::new(
                        "io",
                        format!(
                            "the pack is kept in the cache, but could not be written to {}: {e}",
                            dir.display()
                        ),
                    )
                },
            )?;
        }
        Ok(PreparedPack {
            for_date,
            prepared_at: now,
            data_as_of,
            written_to: settings.directory.clone(),
        })
    }

    /// The prepared packs kept in the cache, newest first (anyone: fetching a clinical
    /// summary pack still needs a clinical role).
    pub fn saved_packs(&self) -> Result<Vec<SavedPack>> {
        self.act(Operation::PrintDayList, |_, store, _| {
            Ok(store.saved_packs()?)
        })
    }

    /// One kept document, checked against the role as printing it fresh would be, and
    /// audited the same way.
    pub fn saved_pack_pdf(&self, id: i64) -> Result<Vec<u8>> {
        let found = self.act(Operation::PrintDayList, |_, store, _| {
            Ok(store.saved_pack_pdf(id)?)
        })?;
        let (meta, pdf) =
            found.ok_or_else(|| AppError::new("not_found", "no such prepared pack is kept"))?;
        let (op, action) = match meta.kind {
            PackKind::DayList => (Operation::PrintDayList, AuditAction::DayListPrinted),
            PackKind::SummaryPack => (
                Operation::PrintClinicalSummaryPack,
                AuditAction::ClinicalSummaryPackPrinted,
            ),
        };
        self.act(op, |session, store, now| {
            store.append_audit(&session.audit_entry(now, action).detail(format!(
                "{} (prepared {})",
                meta.for_date,
                format_uk(meta.prepared_at)
            )))?;
            Ok(pdf)
        })
    }

    // ---- Drills ----

    /// Starts a drill: staff practise offline work on a copy of the cache that can never
    /// reach the upstream. The real cache is untouched until the drill ends.
    pub fn start_drill(&self) -> Result<StatusView> {
        let now = self.clock.now();
        let mut state = self.state();
        if state.drill.is_some() {
            return Err(AppError::new("drill", "a drill is already running"));
        }
        let session = state.session.as_mut().ok_or_else(not_logged_in)?;
        session.require(Operation::StartDrill, now)?;
        let copy = drill_path(&self.config.cache);
        lifeboat_store::remove_cache_files(&copy);
        let mut real = Store::open(&self.config.cache, session.cache_key())?;
        real.copy_to(&copy)?;
        real.append_audit(&session.audit_entry(now, AuditAction::DrillStarted))?;
        let mut drill = Store::open(&copy, session.cache_key())?;
        {
            // The copy holds the real journal too: the drill's own changes come after it.
            let first_drill_seq = drill.journal(&[])?.last().map_or(0, |e| e.seq) + 1;
            let tx = drill.transaction()?;
            tx.set_setting(reconcile::DRILL_SETTING, "1")?;
            tx.set_setting(DRILL_FIRST_SEQ, &first_drill_seq.to_string())?;
            tx.commit()?;
        }
        if ModeController::current(&drill)?.mode != Mode::Offline {
            ModeController::apply(&mut drill, ModeEvent::DeclareOutage, "drill", now)?;
        }
        state.drill = Some(copy);
        let status = self.status_of(&drill, true)?;
        drop(state);
        self.emit(DeskEvent::Status(status.clone()));
        Ok(status)
    }

    /// Ends the drill: its changes are counted for the summary and thrown away.
    pub fn end_drill(&self) -> Result<DrillSummary> {
        let now = self.clock.now();
        let mut state = self.state();
        let copy = state
            .drill
            .clone()
            .ok_or_else(|| AppError::new("drill", "no drill is running"))?;
        let session = state.session.as_mut().ok_or_else(not_logged_in)?;
        session.require(Operation::EndDrill, now)?;
        let drill = Store::open(&copy, session.cache_key())?;
        let first: i64 = drill
            .setting(DRILL_FIRST_SEQ)?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let journal: Vec<JournalEntry> = drill
            .journal(&[])?
            .into_iter()
            .filter(|e| e.seq >= first)
            .collect();
        drop(drill);
        let mut by_kind = BTreeMap::new();
        for e in &journal {
            *by_kind.entry(e.kind.as_str().to_string()).or_insert(0) += 1;
        }
        let mut real = Store::open(&self.config.cache, session.cache_key())?;
        real.append_audit(
            &session
                .audit_entry(now, AuditAction::DrillEnded)
                .detail(format!("{} practice changes discarded", journal.len())),
        )?;
        lifeboat_store::remove_cache_files(&copy);
        state.drill = None;
        drop(state);
        self.publish_status();
        Ok(DrillSummary {
            changes: journal.len(),
            by_kind,
        })
    }

    /// Imports a practice from NDJSON files (fixtures, bulk export) into the cache (manager).
    pub fn import(&self, dir: &Path) -> Result<lifeboat_store::ImportReport> {
        self.act(Operation::Sync, |_, store, now| {
            Ok(store.import_ndjson_dir(dir, now)?)
        })
    }
}

/// The patients and clinicians one side of a conflict refers to, as `Type/id`: an offline
/// change's `patient_id` and `practitioner_id`, and any `Patient/…` or `Practitioner/…`
/// reference in an upstream resource.
fn references(side: &Value) -> impl Iterator<Item = String> + '_ {
    let own = [
        ("patient_id", "Patient"),
        ("practitioner_id", "Practitioner"),
    ]
    .into_iter()
    .filter_map(|(key, kind)| Some(format!("{kind}/{}", side.get(key)?.as_str()?)));
    let participants = side
        .get("participant")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.pointer("/actor/reference")?.as_str())
        .filter(|r| r.starts_with("Patient/") || r.starts_with("Practitioner/"))
        .map(str::to_string);
    own.chain(participants)
}

fn describe_age(age: Option<DataAge>) -> String {
    age.map_or_else(
        || "no complete sync yet: the cache may be incomplete".into(),
        |a| a.describe(),
    )
}

fn user_info(s: &Session) -> UserInfo {
    UserInfo {
        username: s.username().to_string(),
        display_name: s.display_name().to_string(),
        role: s.role(),
        workstation: s.workstation().to_string(),
    }
}

/// Forwards a replay's progress to the screens.
struct Progress {
    events: broadcast::Sender<DeskEvent>,
    steps: usize,
}

impl ReplayObserver for Progress {
    fn on(&mut self, event: ReplayEvent<'_>) -> bool {
        match event {
            ReplayEvent::Planned { steps } => self.steps = steps,
            ReplayEvent::Recorded { index } => {
                let _ = self.events.send(DeskEvent::ReconcileProgress {
                    index: index + 1,
                    steps: self.steps,
                });
            }
            _ => {}
        }
        true
    }
}
