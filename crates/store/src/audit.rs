//! The audit log: who did what to which record, when, and from which workstation.
//!
//! This module owns appending entries (always at the end, each chained to the one before by
//! a SHA-256 hash), verifying that chain, and reading entries back for a manager's export.
//! It must never update or delete an entry, and must never hold a second copy of patient
//! data: the subject is a record reference (`Patient/<id>`), and a search is recorded by its
//! shape ("name+birth year"), never by what was typed.
//!
//! What the chain can and cannot show is written up in `docs/security.md`: any edited,
//! deleted, inserted or reordered entry breaks it, but deleting the *last* entries leaves a
//! shorter, valid chain. The access layer therefore keeps the chain head (last seq and hash)
//! outside the cache, and [`Store::verify_audit_against`] compares the log with it.

use chrono::{DateTime, Utc};
use ring::digest;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{OptionalExtension, Row, Transaction, params};
use serde::Serialize;

use crate::hex::{hex, unhex};
use crate::{CacheTx, Result, Store, parse_ts, ts};

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// Separates this hash's inputs from any other SHA-256 use; bump it if the encoding changes.
const DOMAIN: &[u8] = b"lifeboat audit entry v1";

/// What happened, in the practice's words. Stored as the snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    // Staff and sessions.
    PracticeSetUp,
    LoggedIn,
    LoggedOut,
    SessionLocked,
    SessionUnlocked,
    AccountAdded,
    AccountDisabled,
    AccountEnabled,
    PasswordReset,
    PasswordChanged,
    // Looking at records.
    PatientSearched,
    DemographicsViewed,
    AlertsViewed,
    AppointmentsViewed,
    ClinicalSummaryViewed,
    // Changes made offline.
    AppointmentBooked,
    AppointmentMoved,
    AppointmentCancelled,
    MarkedArrived,
    MarkedDidNotAttend,
    ClinicalNoteWritten,
    // Running the practice through an outage.
    SyncRun,
    ModeChanged,
    OutageDeclared,
    OutageEnded,
    DrillStarted,
    DrillEnded,
    ReconciliationStarted,
    ReconciliationFinished,
    ConflictResolved,
    BackEntryCompleted,
    // The audit itself, and what leaves the building on paper or in files.
    AuditViewed,
    AuditExported,
    AuditVerified,
    ClinicalSummaryPackPrinted,
    DayListPrinted,
    ContactListExported,
    DowntimePackPrepared,
}

impl AuditAction {
    pub const ALL: [AuditAction; 38] = {
        use AuditAction::*;
        [
            PracticeSetUp,
            LoggedIn,
            LoggedOut,
            SessionLocked,
            SessionUnlocked,
            AccountAdded,
            AccountDisabled,
            AccountEnabled,
            PasswordReset,
            PasswordChanged,
            PatientSearched,
            DemographicsViewed,
            AlertsViewed,
            AppointmentsViewed,
            ClinicalSummaryViewed,
            AppointmentBooked,
            AppointmentMoved,
            AppointmentCancelled,
            MarkedArrived,
            MarkedDidNotAttend,
            ClinicalNoteWritten,
            SyncRun,
            ModeChanged,
            OutageDeclared,
            OutageEnded,
            DrillStarted,
            DrillEnded,
            ReconciliationStarted,
            ReconciliationFinished,
            ConflictResolved,
            BackEntryCompleted,
            AuditViewed,
            AuditExported,
            AuditVerified,
            ClinicalSummaryPackPrinted,
            DayListPrinted,
            ContactListExported,
            DowntimePackPrepared,
        ]
    };

    pub fn as_str(self) -> &'static str {
        use AuditAction::*;
        match self {
            PracticeSetUp => "practice_set_up",
            LoggedIn => "logged_in",
            LoggedOut => "logged_out",
            SessionLocked => "session_locked",
            SessionUnlocked => "session_unlocked",
            AccountAdded => "account_added",
            AccountDisabled => "account_disabled",
            AccountEnabled => "account_enabled",
            PasswordReset => "password_reset",
            PasswordChanged => "password_changed",
            PatientSearched => "patient_searched",
            DemographicsViewed => "demographics_viewed",
            AlertsViewed => "alerts_viewed",
            AppointmentsViewed => "appointments_viewed",
            ClinicalSummaryViewed => "clinical_summary_viewed",
            AppointmentBooked => "appointment_booked",
            AppointmentMoved => "appointment_moved",
            AppointmentCancelled => "appointment_cancelled",
            MarkedArrived => "marked_arrived",
            MarkedDidNotAttend => "marked_did_not_attend",
            ClinicalNoteWritten => "clinical_note_written",
            SyncRun => "sync_run",
            ModeChanged => "mode_changed",
            OutageDeclared => "outage_declared",
            OutageEnded => "outage_ended",
            DrillStarted => "drill_started",
            DrillEnded => "drill_ended",
            ReconciliationStarted => "reconciliation_started",
            ReconciliationFinished => "reconciliation_finished",
            ConflictResolved => "conflict_resolved",
            BackEntryCompleted => "back_entry_completed",
            AuditViewed => "audit_viewed",
            AuditExported => "audit_exported",
            AuditVerified => "audit_verified",
            ClinicalSummaryPackPrinted => "clinical_summary_pack_printed",
            DayListPrinted => "day_list_printed",
            ContactListExported => "contact_list_exported",
            DowntimePackPrepared => "downtime_pack_prepared",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing to record. `subject` is a record reference such as `Patient/<id>` or
/// `Appointment/<id>` (what a manager exports by), never a name or an NHS number; `detail` is
/// free text for the reason or outcome and must not carry patient data either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// The staff username, or `lifeboat` for what the core did by itself (e.g. a mode change
    /// after failed health checks).
    pub actor: String,
    pub workstation: String,
    pub action: AuditAction,
    pub subject: Option<String>,
    pub detail: Option<String>,
}

impl AuditEntry {
    pub fn new(
        at: DateTime<Utc>,
        actor: impl Into<String>,
        workstation: impl Into<String>,
        action: AuditAction,
    ) -> Self {
        Self {
            at,
            actor: actor.into(),
            workstation: workstation.into(),
            action,
            subject: None,
            detail: None,
        }
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// An entry as read back for export. `action` is the stored text, so an entry written by a
/// newer Lifeboat (or by hand) still shows as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub workstation: String,
    pub action: String,
    pub subject: Option<String>,
    pub detail: Option<String>,
}

/// The last entry of the chain: what the access layer keeps outside the cache so that
/// deleting the newest entries can be noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChainHead {
    pub seq: i64,
    #[serde(serialize_with = "serialize_hex")]
    pub hash: [u8; 32],
}

impl ChainHead {
    pub fn hash_hex(&self) -> String {
        hex(&self.hash)
    }

    /// Reads a head kept as text; `None` if the hash is not 64 hex digits.
    pub fn from_hex(seq: i64, hash: &str) -> Option<Self> {
        let bytes = unhex(hash)?;
        Some(Self {
            seq,
            hash: bytes.try_into().ok()?,
        })
    }
}

fn serialize_hex<S: serde::Serializer>(h: &[u8; 32], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex(h))
}

/// Which entries a manager exports. Every condition given must hold; none given means all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Exactly this record reference, e.g. `Patient/<id>`.
    pub subject: Option<String>,
    pub actor: Option<String>,
    /// From this time, inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Until this time, exclusive.
    pub until: Option<DateTime<Utc>>,
    pub limit: Option<usize>,
}

/// How an entry was found to be wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TamperKind {
    /// The entry's content (or its sequence number) is not what was written.
    Edited,
    /// One or more entries before this point are missing.
    Deleted,
    /// An entry was added that Lifeboat did not write.
    Inserted,
    /// Entries are intact but not in the order they were written.
    Reordered,
}

impl TamperKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TamperKind::Edited => "edited",
            TamperKind::Deleted => "deleted",
            TamperKind::Inserted => "inserted",
            TamperKind::Reordered => "reordered",
        }
    }
}

/// The first place the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditProblem {
    /// The sequence number of the first broken entry (for a deletion: the first missing one).
    pub seq: i64,
    pub kind: TamperKind,
    /// A sentence for the manager.
    pub explanation: String,
}

/// How the log's end compares with the chain head recorded outside the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum HeadCheck {
    /// No head was given to compare with.
    NotRecorded,
    /// The recorded head is in the log, unchanged (entries after it are normal).
    Matches,
    /// The log ends before the recorded head: its newest entries were deleted.
    Truncated {
        recorded_seq: i64,
        last_seq: Option<i64>,
    },
    /// The entry at the recorded head's seq is not the one recorded: the log was rewritten.
    Rewritten { seq: i64 },
}

/// What `audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditVerification {
    /// Entries checked and found intact, from the first.
    pub intact_entries: u64,
    /// The last entry as found in the log (even if the chain is broken before it).
    pub last: Option<ChainHead>,
    pub problem: Option<AuditProblem>,
    pub head: HeadCheck,
}

impl AuditVerification {
    pub fn is_intact(&self) -> bool {
        self.problem.is_none() && matches!(self.head, HeadCheck::NotRecorded | HeadCheck::Matches)
    }

    /// One or two sentences for the CLI and the manager's screen.
    pub fn describe(&self) -> String {
        let mut out = match &self.problem {
            None => format!(
                "the audit log is intact: {} entries, each chained to the one before",
                self.intact_entries
            ),
            Some(p) => format!(
                "the audit log has been tampered with: entry {} {} ({}); the {} entries before it are intact",
                p.seq,
                p.kind.as_str(),
                p.explanation,
                self.intact_entries
            ),
        };
        match self.head {
            HeadCheck::NotRecorded | HeadCheck::Matches => {}
            HeadCheck::Truncated {
                recorded_seq,
                last_seq,
            } => out.push_str(&format!(
                "; the newest entries were deleted: the log should reach at least entry {recorded_seq} but ends at {}",
                last_seq.map_or_else(|| "nothing (it is empty)".to_string(), |s| format!("entry {s}"))
            )),
            HeadCheck::Rewritten { seq } => out.push_str(&format!(
                "; entry {seq} is not the one recorded outside the cache when it was written: the log was rewritten from there or earlier"
            )),
        }
        out
    }
}

/// A stored row, read as raw SQLite values so a tampered row (wrong types, odd blobs) is
/// reported rather than failing the read.
struct RawRow {
    seq: i64,
    /// at, actor, workstation, action, subject, detail: in the order they are hashed.
    fields: [Value; 6],
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

const SELECT_RAW: &str =
    "SELECT seq, at, actor, workstation, action, subject, detail, prev_hash, hash FROM audit";

impl RawRow {
    fn read(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            seq: r.get(0)?,
            fields: [
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ],
            prev_hash: bytes_of(r.get(7)?),
            hash: bytes_of(r.get(8)?),
        })
    }

    fn hash_as_if_at(&self, seq: i64) -> [u8; 32] {
        let refs = self.fields.each_ref().map(ValueRef::from);
        entry_hash(&self.prev_hash, seq, &refs)
    }

    fn content_matches_hash(&self) -> bool {
        self.hash_as_if_at(self.seq).as_slice() == self.hash.as_slice()
    }
}

fn bytes_of(v: Value) -> Vec<u8> {
    match v {
        Value::Blob(b) => b,
        Value::Text(t) => t.into_bytes(),
        // Not a hash at all: an empty value never equals a real one.
        _ => Vec::new(),
    }
}

/// SHA-256 over the previous hash and an unambiguous encoding of the entry: every field is
/// tagged with its SQLite type and length-prefixed, so no two different entries (e.g. moving
/// text between actor and workstation, or NULL versus empty) encode the same.
fn entry_hash(prev_hash: &[u8], seq: i64, fields: &[ValueRef<'_>; 6]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    put(&mut ctx, DOMAIN);
    put(&mut ctx, prev_hash);
    ctx.update(&seq.to_be_bytes());
    for f in fields {
        match f {
            ValueRef::Null => ctx.update(&[0]),
            ValueRef::Text(t) => {
                ctx.update(&[1]);
                put(&mut ctx, t);
            }
            ValueRef::Integer(i) => {
                ctx.update(&[2]);
                ctx.update(&i.to_be_bytes());
            }
            ValueRef::Real(x) => {
                ctx.update(&[3]);
                ctx.update(&x.to_bits().to_be_bytes());
            }
            ValueRef::Blob(b) => {
                ctx.update(&[4]);
                put(&mut ctx, b);
            }
        }
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn put(ctx: &mut digest::Context, bytes: &[u8]) {
    ctx.update(&(bytes.len() as u64).to_be_bytes());
    ctx.update(bytes);
}

fn opt_text(s: &Option<String>) -> ValueRef<'_> {
    s.as_deref()
        .map_or(ValueRef::Null, |s| ValueRef::Text(s.as_bytes()))
}

fn append(tx: &Transaction<'_>, e: &AuditEntry) -> Result<ChainHead> {
    // Runs inside an IMMEDIATE transaction (Store::transaction), so no other writer can take
    // the same seq between this read and the insert.
    let last: Option<(i64, Value)> = tx
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (seq, prev_hash) = match last {
        None => (1, GENESIS_HASH.to_vec()),
        // Chain onto whatever is there, even a damaged hash: verify reports the damage.
        Some((seq, hash)) => (seq + 1, bytes_of(hash)),
    };
    let at = ts(e.at);
    let fields = [
        ValueRef::Text(at.as_bytes()),
        ValueRef::Text(e.actor.as_bytes()),
        ValueRef::Text(e.workstation.as_bytes()),
        ValueRef::Text(e.action.as_str().as_bytes()),
        opt_text(&e.subject),
        opt_text(&e.detail),
    ];
    let hash = entry_hash(&prev_hash, seq, &fields);
    tx.prepare_cached(
        "INSERT INTO audit (seq, at, actor, workstation, action, subject, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        seq,
        at,
        e.actor,
        e.workstation,
        e.action.as_str(),
        e.subject,
        e.detail,
        prev_hash,
        hash.as_slice(),
    ])?;
    Ok(ChainHead { seq, hash })
}

impl CacheTx<'_> {
    /// Appends an entry in this transaction, so the record of a change commits or rolls back
    /// with the change itself. Returns the new chain head.
    pub fn append_audit(&self, entry: &AuditEntry) -> Result<ChainHead> {
        append(&self.tx, entry)
    }
}

impl Store {
    /// Appends an entry on its own (login, logout, lock, a view): one short transaction.
    pub fn append_audit(&mut self, entry: &AuditEntry) -> Result<ChainHead> {
        let tx = self.transaction()?;
        let head = tx.append_audit(entry)?;
        tx.commit()?;
        Ok(head)
    }

    /// The last entry, as stored.
    pub fn audit_head(&self) -> Result<Option<ChainHead>> {
        let last: Option<(i64, Value)> = self
            .conn
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(last.map(|(seq, hash)| {
            let mut h = [0u8; 32];
            let bytes = bytes_of(hash);
            if bytes.len() == 32 {
                h.copy_from_slice(&bytes);
            }
            ChainHead { seq, hash: h }
        }))
    }

    /// Entries matching `filter`, oldest first.
    pub fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let mut sql = String::from(
            "SELECT seq, at, actor, workstation, action, subject, detail FROM audit WHERE 1 = 1",
        );
        let mut args: Vec<Value> = Vec::new();
        let mut cond = |sql: &mut String, clause: &str, v: Value| {
            args.push(v);
            sql.push_str(&format!(" AND {clause} ?{}", args.len()));
        };
        if let Some(s) = &filter.subject {
            cond(&mut sql, "subject =", Value::Text(s.clone()));
        }
        if let Some(a) = &filter.actor {
            cond(&mut sql, "actor =", Value::Text(a.clone()));
        }
        if let Some(t) = filter.from {
            cond(&mut sql, "at >=", Value::Text(ts(t)));
        }
        if let Some(t) = filter.until {
            cond(&mut sql, "at <", Value::Text(ts(t)));
        }
        sql.push_str(" ORDER BY seq");
        if let Some(n) = filter.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                let at: String = r.get(1)?;
                Ok(AuditRecord {
                    seq: r.get(0)?,
                    // A time that does not parse was not written by Lifeboat; show it at the
                    // epoch rather than refuse the whole export (verify will name the entry).
                    at: parse_ts(&at).unwrap_or_default(),
                    actor: r.get(2)?,
                    workstation: r.get(3)?,
                    action: r.get(4)?,
                    subject: r.get(5)?,
                    detail: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Walks the whole chain and reports the first broken entry, if any.
    pub fn verify_audit(&self) -> Result<AuditVerification> {
        self.verify_audit_against(None)
    }

    /// As [`Store::verify_audit`], and also checks the log still reaches `recorded` (the head
    /// kept outside the cache), which is how deleting the newest entries shows.
    pub fn verify_audit_against(&self, recorded: Option<&ChainHead>) -> Result<AuditVerification> {
        let mut stmt = self.conn.prepare(&format!("{SELECT_RAW} ORDER BY seq"))?;
        let mut rows = stmt.query([])?;
        let mut prev: Option<(i64, Vec<u8>)> = None;
        let mut intact_entries = 0u64;
        let mut problem = None;
        while let Some(r) = rows.next()? {
            let row = RawRow::read(r)?;
            let expected_seq = prev.as_ref().map_or(1, |(s, _)| s + 1);
            let expected_prev = prev
                .as_ref()
                .map_or(&GENESIS_HASH[..], |(_, h)| h.as_slice());
            let content_ok = row.content_matches_hash();
            let link_ok = row.prev_hash == expected_prev;
            if content_ok && link_ok && row.seq == expected_seq {
                intact_entries += 1;
                prev = Some((row.seq, row.hash));
                continue;
            }
            problem = Some(self.classify_break(&row, prev.as_ref(), content_ok, link_ok)?);
            break;
        }
        drop(rows);
        let last = self.audit_head()?;
        let head = match recorded {
            None => HeadCheck::NotRecorded,
            Some(rec) => self.check_head(rec, last)?,
        };
        Ok(AuditVerification {
            intact_entries,
            last,
            problem,
            head,
        })
    }

    /// Whether the log still reaches `recorded` unchanged: one lookup, cheap enough to run
    /// before every update of the recorded head (so a truncation is never papered over).
    pub fn check_audit_head(&self, recorded: &ChainHead) -> Result<HeadCheck> {
        let last = self.audit_head()?;
        self.check_head(recorded, last)
    }

    fn check_head(&self, rec: &ChainHead, last: Option<ChainHead>) -> Result<HeadCheck> {
        let at_rec: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT hash FROM audit WHERE seq = ?1", [rec.seq], |r| {
                r.get::<_, Value>(0)
            })
            .optional()?
            .map(bytes_of);
        Ok(match at_rec {
            Some(h) if h == rec.hash => HeadCheck::Matches,
            Some(_) => HeadCheck::Rewritten { seq: rec.seq },
            None if last.is_none_or(|l| l.seq < rec.seq) => HeadCheck::Truncated {
                recorded_seq: rec.seq,
                last_seq: last.map(|l| l.seq),
            },
            None => HeadCheck::Rewritten { seq: rec.seq },
        })
    }

    /// Works out what happened at the first broken entry, from the links that remain: every
    /// intact entry still names (by hash) the entry that was written just before it.
    fn classify_break(
        &self,
        row: &RawRow,
        prev: Option<&(i64, Vec<u8>)>,
        content_ok: bool,
        link_ok: bool,
    ) -> Result<AuditProblem> {
        let expected_seq = prev.map_or(1, |(s, _)| s + 1);
        let expected_prev = prev.map_or(&GENESIS_HASH[..], |(_, h)| h.as_slice());
        // An entry whose content is intact but which was renumbered hashes correctly at the
        // seq it was written with.
        let written_as = if content_ok {
            Some(row.seq)
        } else {
            self.original_seq(row)?
        };
        let problem = |seq, kind, explanation: String| AuditProblem {
            seq,
            kind,
            explanation,
        };
        let Some(written_as) = written_as else {
            // The content no longer matches its hash. If the entry after it still links to
            // the entry before it, this one was slipped in between; otherwise it was edited.
            let next_links_past = match self.raw_row_after(row.seq)? {
                Some(next) => next.prev_hash == expected_prev,
                None => false,
            };
            return Ok(if next_links_past {
                problem(
                    row.seq,
                    TamperKind::Inserted,
                    "this entry was not written by Lifeboat: the entry after it follows on from the one before it".into(),
                )
            } else if row.seq == expected_seq {
                problem(
                    row.seq,
                    TamperKind::Edited,
                    "its content no longer matches its hash: it was changed after it was written (or added by hand)".into(),
                )
            } else {
                problem(
                    row.seq,
                    TamperKind::Edited,
                    format!(
                        "its content no longer matches its hash, and the log jumps to it from entry {}",
                        expected_seq - 1
                    ),
                )
            });
        };
        if link_ok {
            // Intact and linked to the right predecessor, yet not where it should be.
            return Ok(if written_as != row.seq {
                problem(
                    row.seq,
                    TamperKind::Edited,
                    format!(
                        "its sequence number was changed (it was written as entry {written_as})"
                    ),
                )
            } else {
                problem(
                    expected_seq,
                    TamperKind::Deleted,
                    missing_range(expected_seq, row.seq),
                )
            });
        }
        // Intact, but written after some other entry than the one now before it.
        match self.seq_of_hash(&row.prev_hash)? {
            Some(s) if s > row.seq => Ok(problem(
                row.seq,
                TamperKind::Reordered,
                format!(
                    "it was written after the entry now numbered {s}, which comes later in the log"
                ),
            )),
            Some(s) if prev.is_some_and(|(p, _)| s < *p) => {
                let first_inserted = self.seq_after(s)?.unwrap_or(expected_seq - 1);
                Ok(problem(
                    first_inserted,
                    TamperKind::Inserted,
                    format!(
                        "entries from {first_inserted} to {} were not written by Lifeboat: entry {} was written straight after entry {s}",
                        expected_seq - 1,
                        row.seq
                    ),
                ))
            }
            Some(_) => Ok(problem(
                row.seq,
                TamperKind::Edited,
                "its link to the entry before it was changed".into(),
            )),
            None if written_as == row.seq && row.seq == expected_seq && prev.is_some() => {
                // No seq is missing and this entry is intact, but the entry before it is not
                // the one it was chained to: that one was replaced and given a fresh hash.
                let edited = expected_seq - 1;
                Ok(problem(
                    edited,
                    TamperKind::Edited,
                    format!(
                        "it was replaced and re-hashed: entry {} was chained to a different entry {edited}",
                        row.seq
                    ),
                ))
            }
            None if row.seq > expected_seq => Ok(problem(
                expected_seq,
                TamperKind::Deleted,
                missing_range(expected_seq, row.seq),
            )),
            None => Ok(problem(
                expected_seq,
                TamperKind::Deleted,
                format!(
                    "entries were deleted and the rest renumbered: entry {} was written as entry {written_as}",
                    row.seq
                ),
            )),
        }
    }

    /// The seq this row's content was hashed with, if it is intact but was renumbered. Looks
    /// nearest first; only runs once, at the first break.
    fn original_seq(&self, row: &RawRow) -> Result<Option<i64>> {
        let (count, max): (i64, i64) = self.conn.query_row(
            "SELECT count(*), coalesce(max(seq), 0) FROM audit",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        // Renumbering moves an entry by at most the number of entries added or removed; this
        // bound covers a deletion of as many entries as remain.
        let bound = max.saturating_add(count).max(1);
        for distance in 1..=bound {
            for candidate in [row.seq - distance, row.seq + distance] {
                if candidate >= 1
                    && candidate <= bound
                    && row.hash_as_if_at(candidate).as_slice() == row.hash.as_slice()
                {
                    return Ok(Some(candidate));
                }
            }
        }
        Ok(None)
    }

    fn raw_row_after(&self, seq: i64) -> Result<Option<RawRow>> {
        Ok(self
            .conn
            .query_row(
                &format!("{SELECT_RAW} WHERE seq > ?1 ORDER BY seq LIMIT 1"),
                [seq],
                RawRow::read,
            )
            .optional()?)
    }

    fn seq_of_hash(&self, hash: &[u8]) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT seq FROM audit WHERE hash = ?1 ORDER BY seq LIMIT 1",
                [hash],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn seq_after(&self, seq: i64) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row("SELECT min(seq) FROM audit WHERE seq > ?1", [seq], |r| {
                r.get(0)
            })
            .optional()?
            .flatten())
    }
}

fn missing_range(first: i64, next_present: i64) -> String {
    if next_present - first <= 1 {
        format!("entry {first} is missing: entry {next_present} was written after it")
    } else {
        format!(
            "entries {first} to {} are missing: entry {next_present} was written after them",
            next_present - 1
        )
    }
}

/// What kind of search was run, without what was typed: "nhs number", or the parts in order
/// such as "name+birth year" or "name+date of birth". Follows how patient search reads a
/// query (`search.rs`); the result never contains a character of the query.
pub fn search_shape(query: &str) -> String {
    use lifeboat_model::time::parse_uk_date;
    let text = query.trim();
    if text.is_empty() {
        return "empty".into();
    }
    let compact: String = text.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if compact.len() == 10 && compact.bytes().all(|b| b.is_ascii_digit()) {
        return "nhs number".into();
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut parts: Vec<&'static str> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let part = if i + 2 < words.len() && parse_uk_date(&words[i..i + 3].join(" ")).is_some() {
            i += 2;
            "date of birth"
        } else if parse_uk_date(words[i]).is_some() {
            "date of birth"
        } else if words[i].len() == 4 && words[i].bytes().all(|b| b.is_ascii_digit()) {
            "birth year"
        } else if words[i].chars().any(char::is_alphabetic) {
            "name"
        } else {
            "unreadable"
        };
        i += 1;
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    parts.join("+")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{key, open_temp};
    use chrono::TimeZone;
    use rusqlite::Connection;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 7, 19, 9, minute, 0).unwrap()
    }

    fn entry(n: u32) -> AuditEntry {
        AuditEntry::new(
            at(n),
            "sam.patel",
            "reception-1",
            AuditAction::DemographicsViewed,
        )
        .subject(format!("Patient/p{n}"))
    }

    /// A cache with entries 1..=n and a raw connection holding the key, as someone with the
    /// key and an SQLite shell would have.
    fn log_of(n: u32) -> (tempfile::TempDir, Store, Connection) {
        let (dir, mut store) = open_temp();
        for i in 1..=n {
            store.append_audit(&entry(i)).unwrap();
        }
        let raw = Connection::open(dir.path().join("cache.db")).unwrap();
        let hex: String = key()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        raw.execute_batch(&format!(
            "PRAGMA key = \"x'{hex}'\"; {}",
            crate::CIPHER.pragmas("main")
        ))
        .unwrap();
        (dir, store, raw)
    }

    fn hash_at(raw: &Connection, seq: i64) -> Vec<u8> {
        raw.query_row("SELECT hash FROM audit WHERE seq = ?1", [seq], |r| r.get(0))
            .unwrap()
    }

    /// Moves rows from `from_seq` on by `by` (two steps, so the primary key never clashes).
    fn shift(raw: &Connection, from_seq: i64, by: i64) {
        raw.execute("UPDATE audit SET seq = -seq WHERE seq >= ?1", [from_seq])
            .unwrap();
        raw.execute("UPDATE audit SET seq = -seq + ?1 WHERE seq < 0", [by])
            .unwrap();
    }

    /// A row made by someone who knows the algorithm: correct hash for its content.
    fn forge(raw: &Connection, seq: i64, prev_hash: &[u8], detail: &str) {
        let at = ts(at(30));
        let fields = [
            ValueRef::Text(at.as_bytes()),
            ValueRef::Text(b"intruder"),
            ValueRef::Text(b"reception-1"),
            ValueRef::Text(b"demographics_viewed"),
            ValueRef::Null,
            ValueRef::Text(detail.as_bytes()),
        ];
        let hash = entry_hash(prev_hash, seq, &fields);
        raw.execute(
            "INSERT INTO audit VALUES (?1, ?2, 'intruder', 'reception-1', 'demographics_viewed', NULL, ?3, ?4, ?5)",
            params![seq, at, detail, prev_hash, hash.as_slice()],
        )
        .unwrap();
    }

    fn problem(store: &Store) -> AuditProblem {
        let v = store.verify_audit().unwrap();
        assert!(!v.is_intact());
        v.problem.expect("a problem is reported")
    }

    #[test]
    fn an_untouched_log_verifies_and_an_empty_one_too() {
        let (_dir, store) = open_temp();
        let v = store.verify_audit().unwrap();
        assert!(v.is_intact());
        assert_eq!(v.last, None);
        let (_dir, store, _raw) = log_of(6);
        let v = store.verify_audit().unwrap();
        assert!(v.is_intact(), "{}", v.describe());
        assert_eq!(v.intact_entries, 6);
        assert_eq!(v.last.unwrap().seq, 6);
        assert!(v.describe().contains("intact: 6 entries"));
    }

    #[test]
    fn entries_chain_from_the_genesis_hash_in_order() {
        let (_dir, store, raw) = log_of(3);
        let first: Vec<u8> = raw
            .query_row("SELECT prev_hash FROM audit WHERE seq = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(first, GENESIS_HASH);
        let second: Vec<u8> = raw
            .query_row("SELECT prev_hash FROM audit WHERE seq = 2", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(second, hash_at(&raw, 1));
        assert_eq!(
            store.audit_head().unwrap().unwrap().hash.to_vec(),
            hash_at(&raw, 3)
        );
    }

    #[test]
    fn an_edited_entry_is_reported_at_its_seq() {
        let (_dir, store, raw) = log_of(6);
        raw.execute(
            "UPDATE audit SET subject = 'Patient/other' WHERE seq = 3",
            [],
        )
        .unwrap();
        let p = problem(&store);
        assert_eq!(
            (p.seq, p.kind),
            (3, TamperKind::Edited),
            "{}",
            p.explanation
        );
        let v = store.verify_audit().unwrap();
        assert_eq!(v.intact_entries, 2);
        assert!(v.describe().contains("entry 3 edited"), "{}", v.describe());
    }

    #[test]
    fn an_edit_to_any_column_is_seen_even_a_change_of_type() {
        for change in [
            "UPDATE audit SET at = '2024-07-19T09:04:00.001Z' WHERE seq = 4",
            "UPDATE audit SET actor = 'someone.else' WHERE seq = 4",
            "UPDATE audit SET workstation = 'home-pc' WHERE seq = 4",
            "UPDATE audit SET action = 'logged_in' WHERE seq = 4",
            "UPDATE audit SET detail = 'added later' WHERE seq = 4",
            "UPDATE audit SET subject = NULL WHERE seq = 4",
            "UPDATE audit SET actor = 4 WHERE seq = 4",
            "UPDATE audit SET hash = 'not a hash' WHERE seq = 4",
            "UPDATE audit SET prev_hash = zeroblob(32) WHERE seq = 4",
        ] {
            let (_dir, store, raw) = log_of(6);
            raw.execute(change, []).unwrap();
            let p = problem(&store);
            assert_eq!(p.seq, 4, "{change}: {p:?}");
            assert_eq!(p.kind, TamperKind::Edited, "{change}: {p:?}");
        }
    }

    #[test]
    fn an_edited_entry_given_a_fresh_hash_is_still_found() {
        let (_dir, store, raw) = log_of(6);
        let prev = hash_at(&raw, 2);
        raw.execute("DELETE FROM audit WHERE seq = 3", []).unwrap();
        forge(&raw, 3, &prev, "nothing to see");
        let p = problem(&store);
        assert_eq!(
            (p.seq, p.kind),
            (3, TamperKind::Edited),
            "{}",
            p.explanation
        );
    }

    #[test]
    fn a_deleted_entry_is_reported_as_missing() {
        let (_dir, store, raw) = log_of(6);
        raw.execute("DELETE FROM audit WHERE seq = 3", []).unwrap();
        let p = problem(&store);
        assert_eq!(
            (p.seq, p.kind),
            (3, TamperKind::Deleted),
            "{}",
            p.explanation
        );
        assert!(p.explanation.contains("entry 3 is missing"));
    }

    #[test]
    fn several_deleted_entries_and_the_first_entry_are_reported() {
        let (_dir, store, raw) = log_of(8);
        raw.execute("DELETE FROM audit WHERE seq BETWEEN 3 AND 5", [])
            .unwrap();
        let p = problem(&store);
        assert_eq!((p.seq, p.kind), (3, TamperKind::Deleted));
        assert!(
            p.explanation.contains("entries 3 to 5 are missing"),
            "{}",
            p.explanation
        );

        let (_dir, store, raw) = log_of(4);
        raw.execute("DELETE FROM audit WHERE seq = 1", []).unwrap();
        let p = problem(&store);
        assert_eq!((p.seq, p.kind), (1, TamperKind::Deleted));
    }

    #[test]
    fn a_deletion_hidden_by_renumbering_is_still_a_deletion() {
        let (_dir, store, raw) = log_of(6);
        raw.execute("DELETE FROM audit WHERE seq = 3", []).unwrap();
        shift(&raw, 4, -1);
        let p = problem(&store);
        assert_eq!(
            (p.seq, p.kind),
            (3, TamperKind::Deleted),
            "{}",
            p.explanation
        );
    }

    #[test]
    fn an_inserted_entry_is_reported_even_with_a_correct_hash() {
        let (_dir, store, raw) = log_of(6);
        let prev = hash_at(&raw, 2);
        shift(&raw, 3, 1);
        forge(&raw, 3, &prev, "slipped in");
        let p = problem(&store);
        assert_eq!(
            (p.seq, p.kind),
            (3, TamperKind::Inserted),
            "{}",
            p.explanation
        );
    }

    #[test]
    fn an_inserted_entry_with_a_made_up_hash_is_reported() {
        let (_dir, store, raw) = log_of(6);
        let prev = hash_at(&raw, 2);
        shift(&raw, 3, 1);
        raw.execute(
            "INSERT INTO audit VALUES (3, '2024-07-19T09:30:00.000Z', 'intruder', 'pc', 'logged_in', NULL, NULL, ?1, zeroblob(32))",
            [prev],
        )
        .unwrap();
        let p = problem(&store);
        assert_eq!(
            (p.seq, p.kind),
            (3, TamperKind::Inserted),
            "{}",
            p.explanation
        );
    }

    #[test]
    fn swapped_entries_are_reported_as_reordered() {
        let (_dir, store, raw) = log_of(6);
        raw.execute_batch(
            "UPDATE audit SET seq = -1 WHERE seq = 3;
             UPDATE audit SET seq = 3 WHERE seq = 4;
             UPDATE audit SET seq = 4 WHERE seq = -1;",
        )
        .unwrap();
        let p = problem(&store);
        assert_eq!(
            (p.seq, p.kind),
            (3, TamperKind::Reordered),
            "{}",
            p.explanation
        );
    }

    #[test]
    fn an_entry_moved_to_the_end_is_reported_as_reordered() {
        let (_dir, store, raw) = log_of(6);
        raw.execute("UPDATE audit SET seq = 7 WHERE seq = 2", [])
            .unwrap();
        shift(&raw, 3, -1);
        let p = problem(&store);
        assert_eq!(
            (p.seq, p.kind),
            (2, TamperKind::Reordered),
            "{}",
            p.explanation
        );
    }

    #[test]
    fn deleting_the_newest_entries_shows_only_against_the_recorded_head() {
        let (_dir, store, raw) = log_of(6);
        let recorded = store.audit_head().unwrap().unwrap();
        raw.execute("DELETE FROM audit WHERE seq >= 5", []).unwrap();
        // The honest limit of a chain: what remains is valid.
        assert!(store.verify_audit().unwrap().is_intact());
        let v = store.verify_audit_against(Some(&recorded)).unwrap();
        assert!(!v.is_intact());
        assert_eq!(
            v.head,
            HeadCheck::Truncated {
                recorded_seq: 6,
                last_seq: Some(4)
            }
        );
        assert!(
            v.describe().contains("newest entries were deleted"),
            "{}",
            v.describe()
        );

        raw.execute("DELETE FROM audit", []).unwrap();
        let v = store.verify_audit_against(Some(&recorded)).unwrap();
        assert_eq!(
            v.head,
            HeadCheck::Truncated {
                recorded_seq: 6,
                last_seq: None
            }
        );
    }

    #[test]
    fn newest_entries_replaced_by_fresh_ones_show_as_rewritten() {
        let (_dir, mut store, raw) = log_of(6);
        let recorded = store.audit_head().unwrap().unwrap();
        raw.execute("DELETE FROM audit WHERE seq >= 5", []).unwrap();
        store.append_audit(&entry(50)).unwrap();
        store.append_audit(&entry(51)).unwrap();
        let v = store.verify_audit_against(Some(&recorded)).unwrap();
        assert!(v.problem.is_none());
        assert_eq!(v.head, HeadCheck::Rewritten { seq: 6 });
        assert!(!v.is_intact());
        // Entries after the recorded head are normal.
        store.append_audit(&entry(52)).unwrap();
        let (_d, store2, _r) = log_of(3);
        let head = store2.audit_head().unwrap().unwrap();
        let mut store2 = store2;
        store2.append_audit(&entry(9)).unwrap();
        assert_eq!(store2.check_audit_head(&head).unwrap(), HeadCheck::Matches);
    }

    #[test]
    fn an_entry_written_in_a_transaction_is_rolled_back_with_it() {
        let (_dir, mut store) = open_temp();
        {
            let tx = store.transaction().unwrap();
            tx.append_audit(&entry(1)).unwrap();
            tx.set_setting("mode", "offline").unwrap();
            // Dropped without commit: neither the change nor its record stays.
        }
        assert_eq!(store.audit_head().unwrap(), None);
        let tx = store.transaction().unwrap();
        let head = tx.append_audit(&entry(1)).unwrap();
        tx.commit().unwrap();
        assert_eq!(head.seq, 1);
        assert_eq!(store.audit_head().unwrap(), Some(head));
    }

    #[test]
    fn the_encoding_does_not_let_text_move_between_fields() {
        let f = |a: &'static str, b: &'static str| {
            entry_hash(
                &GENESIS_HASH,
                1,
                &[
                    ValueRef::Text(b"t"),
                    ValueRef::Text(a.as_bytes()),
                    ValueRef::Text(b.as_bytes()),
                    ValueRef::Text(b"x"),
                    ValueRef::Null,
                    ValueRef::Null,
                ],
            )
        };
        assert_ne!(f("ab", "c"), f("a", "bc"));
        let null_vs_empty = |v: ValueRef<'static>| {
            entry_hash(
                &GENESIS_HASH,
                1,
                &[
                    ValueRef::Null,
                    ValueRef::Null,
                    ValueRef::Null,
                    ValueRef::Null,
                    v,
                    ValueRef::Null,
                ],
            )
        };
        assert_ne!(
            null_vs_empty(ValueRef::Null),
            null_vs_empty(ValueRef::Text(b""))
        );
    }

    #[test]
    fn entries_are_exported_by_subject_actor_and_time_range() {
        let (_dir, mut store, _raw) = log_of(6);
        store
            .append_audit(
                &AuditEntry::new(
                    at(7),
                    "dr.okafor",
                    "room-3",
                    AuditAction::ClinicalSummaryViewed,
                )
                .subject("Patient/p2"),
            )
            .unwrap();
        let by_patient = store
            .audit_entries(&AuditFilter {
                subject: Some("Patient/p2".into()),
                ..AuditFilter::default()
            })
            .unwrap();
        assert_eq!(by_patient.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 7]);
        assert_eq!(by_patient[1].action, "clinical_summary_viewed");
        assert_eq!(by_patient[1].at, at(7));
        let in_range = store
            .audit_entries(&AuditFilter {
                from: Some(at(3)),
                until: Some(at(5)),
                ..AuditFilter::default()
            })
            .unwrap();
        assert_eq!(in_range.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4]);
        let by_actor = store
            .audit_entries(&AuditFilter {
                actor: Some("dr.okafor".into()),
                limit: Some(5),
                ..AuditFilter::default()
            })
            .unwrap();
        assert_eq!(by_actor.len(), 1);
    }

    #[test]
    fn a_search_is_recorded_by_its_shape_never_its_text() {
        for (query, shape) in [
            ("smith 1958", "name+birth year"),
            ("943 476 5919", "nhs number"),
            ("9434765919", "nhs number"),
            ("o'brien 30/05/1947", "name+date of birth"),
            ("12 Mar 1958", "date of birth"),
            ("smi jo", "name"),
            ("  ", "empty"),
            ("#!?", "unreadable"),
        ] {
            let got = search_shape(query);
            assert_eq!(got, shape, "{query}");
        }
        let shape = search_shape("Okafor 03/11/1971");
        for fragment in ["okafor", "Okafor", "1971", "03"] {
            assert!(!shape.contains(fragment));
        }
    }

    #[test]
    fn actions_read_back_from_their_stored_names() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
        }
        let mut names: Vec<_> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), AuditAction::ALL.len());
    }
}
