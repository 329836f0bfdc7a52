//! The reconciliation planner: a pure function from the journal to the steps that settle it
//! upstream. It squashes what cancels out (booked then cancelled offline: nothing to send),
//! folds moves of an offline booking into its one creation, splits a move of an upstream
//! appointment into a cancellation and a new booking (GP Connect has no reschedule), and
//! sends to the back-entry worklist what can no longer be sent (it became past, or GP
//! Connect cannot express it: arrivals and did-not-attends).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lifeboat_model::time::format_uk;
use lifeboat_store::{JournalEntry, JournalKind, JournalState};
use serde::{Deserialize, Serialize};

/// How a move's journal row records that its first half (cancelling the original upstream)
/// is done, so a later run sends only the new booking.
pub(crate) const CANCEL_HALF_SENT: &str = "cancelled upstream";

/// Where and for whom an offline booking is, as its journal payload records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingDetails {
    pub slot_id: String,
    pub slot_version: String,
    pub patient_id: String,
    pub practitioner_id: Option<String>,
    pub location_id: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub description: Option<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Create an appointment upstream for an offline booking. `identity` is the journal
    /// id it carries upstream; `entries` are every journal row folded into it.
    Book {
        identity: String,
        entries: Vec<String>,
        booking: BookingDetails,
        /// For a move of an upstream appointment: the appointment it replaces.
        replaces: Option<String>,
    },
    /// Cancel an upstream appointment: a cancellation, or the first half of a move.
    Cancel {
        entry: String,
        appointment_id: String,
        based_on: String,
        reason: String,
        /// Set when this is the first half of a move (the entry settles with its booking).
        part_of_move: bool,
    },
    /// What was done offline cancels out: nothing to send.
    Supersede { entries: Vec<String>, why: String },
    /// Cannot be sent: a person enters it by hand.
    BackEntry {
        entries: Vec<String>,
        patient_id: Option<String>,
        summary: String,
    },
    /// An offline clinical note: offered upstream as a DocumentReference, and always put
    /// on the worklist to be filed in the clinical record.
    FileNote {
        entry: String,
        patient_id: String,
        appointment_id: Option<String>,
        text: String,
        author: String,
        written_at: DateTime<Utc>,
    },
}

impl Step {
    /// The journal rows this step settles.
    pub fn entries(&self) -> Vec<&str> {
        match self {
            Self::Book { entries, .. }
            | Self::Supersede { entries, .. }
            | Self::BackEntry { entries, .. } => entries.iter().map(String::as_str).collect(),
            Self::Cancel { entry, .. } | Self::FileNote { entry, .. } => vec![entry.as_str()],
        }
    }
}

fn unsettled(e: &JournalEntry) -> bool {
    matches!(e.state, JournalState::Pending | JournalState::Failed)
}

/// An offline booking and what happened to it afterwards, in journal order.
struct Chain<'a> {
    first: &'a JournalEntry,
    details: Option<BookingDetails>,
    /// The journal position of the entry that set `details` (the booking, or its last
    /// move): the chain is sent from there, after anything earlier that freed its slot.
    details_seq: i64,
    entries: Vec<&'a JournalEntry>,
    ended: Option<&'a JournalEntry>,
    /// A move of an upstream appointment whose original has passed before its
    /// cancellation could be sent: the upstream cannot be told, so a person must.
    original_passed: bool,
}

impl<'a> Chain<'a> {
    fn new(first: &'a JournalEntry) -> Self {
        Self {
            first,
            details: details(first),
            details_seq: first.seq,
            entries: vec![first],
            ended: None,
            original_passed: false,
        }
    }

    fn push(&mut self, e: &'a JournalEntry) {
        self.entries.push(e);
        match e.kind {
            JournalKind::Move => {
                self.details = details(e);
                self.details_seq = e.seq;
            }
            _ => self.ended = Some(e),
        }
    }

    /// The upstream appointment this chain's booking replaces (a move of one).
    fn replaces(&self) -> Option<String> {
        (self.first.kind == JournalKind::Move)
            .then(|| self.first.target_id.clone())
            .flatten()
    }
}

/// How an offline booking (or a move of an upstream appointment) stands now, all its later
/// changes considered: what a manager's decision on it must carry out.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ChainEnd {
    /// Still wanted, at these details.
    Live(BookingDetails),
    Cancelled,
    /// Marked arrived or did-not-attend offline: only a person can record that.
    Marked,
    Unreadable,
}

/// The journal rows of the booking chain that starts at `identity` (itself first), and how
/// it stands now.
pub(crate) fn chain_of(journal: &[JournalEntry], identity: &str) -> (Vec<String>, ChainEnd) {
    let Some(first) = journal.iter().find(|e| e.id == identity) else {
        return (Vec::new(), ChainEnd::Unreadable);
    };
    let mut chain = Chain::new(first);
    for e in journal.iter().filter(|e| {
        e.seq > first.seq
            && e.target_type.as_deref() == Some("OfflineBooking")
            && e.target_id.as_deref() == Some(identity)
    }) {
        chain.push(e);
    }
    let end = match (chain.ended.map(|e| e.kind), chain.details) {
        (Some(JournalKind::Cancel), _) => ChainEnd::Cancelled,
        (Some(_), _) => ChainEnd::Marked,
        (None, Some(d)) => ChainEnd::Live(d),
        (None, None) => ChainEnd::Unreadable,
    };
    (chain.entries.iter().map(|e| e.id.clone()).collect(), end)
}

fn details(e: &JournalEntry) -> Option<BookingDetails> {
    serde_json::from_value(e.payload.clone()).ok()
}

fn text(e: &JournalEntry, field: &str) -> Option<String> {
    e.payload
        .get(field)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// Plans the steps that settle every unsettled journal row, in journal order. `now` decides
/// what has become past.
pub fn plan(journal: &[JournalEntry], now: DateTime<Utc>) -> Vec<Step> {
    // (seq of first entry, step), sorted at the end.
    let mut steps: Vec<(i64, Step)> = Vec::new();
    let mut chains: BTreeMap<&str, Chain<'_>> = BTreeMap::new();
    let mut chain_order: Vec<&str> = Vec::new();
    for e in journal {
        match (e.kind, e.target_type.as_deref()) {
            (JournalKind::Note, _) => {
                if unsettled(e) {
                    steps.push((
                        e.seq,
                        Step::FileNote {
                            entry: e.id.clone(),
                            patient_id: text(e, "patient_id").unwrap_or_default(),
                            appointment_id: text(e, "appointment_id"),
                            text: text(e, "text").unwrap_or_default(),
                            author: e.author.clone(),
                            written_at: e.created_at,
                        },
                    ));
                }
            }
            (JournalKind::Book, _) => {
                chains.insert(&e.id, Chain::new(e));
                chain_order.push(&e.id);
            }
            (kind, Some("OfflineBooking")) => {
                let target = e.target_id.as_deref().unwrap_or_default();
                match chains.get_mut(target) {
                    Some(chain) => chain.push(e),
                    None if unsettled(e) => steps.push((
                        e.seq,
                        Step::BackEntry {
                            entries: vec![e.id.clone()],
                            patient_id: None,
                            summary: format!("A {} of an offline booking Lifeboat no longer holds: check by hand", kind),
                        },
                    )),
                    None => {}
                }
            }
            (JournalKind::Cancel | JournalKind::Move, Some("Appointment")) => {
                let appointment_id = e.target_id.clone().unwrap_or_default();
                let start: Option<DateTime<Utc>> = e
                    .payload
                    .get(if e.kind == JournalKind::Move {
                        "from_start"
                    } else {
                        "start"
                    })
                    .and_then(|v| serde_json::from_value(v.clone()).ok());
                let cancel_sent = e
                    .outcome
                    .as_deref()
                    .is_some_and(|o| o.starts_with(CANCEL_HALF_SENT));
                let passed = start.is_some_and(|s| s <= now);
                if e.kind == JournalKind::Move {
                    let mut chain = Chain::new(e);
                    // Only a cancellation not yet sent is too late: once the original is
                    // cancelled upstream, the new booking goes ahead by its own time.
                    chain.original_passed = passed && !cancel_sent;
                    chains.insert(&e.id, chain);
                    chain_order.push(&e.id);
                }
                if !unsettled(e) || cancel_sent {
                    continue;
                }
                if passed {
                    if e.kind == JournalKind::Cancel {
                        steps.push((
                            e.seq,
                            Step::BackEntry {
                                entries: vec![e.id.clone()],
                                patient_id: None,
                                summary: format!(
                                    "Cancelled offline ({}), but the appointment has now passed: record the cancellation by hand",
                                    text(e, "reason").unwrap_or_default()
                                ),
                            },
                        ));
                    }
                    continue;
                }
                steps.push((
                    e.seq,
                    Step::Cancel {
                        entry: e.id.clone(),
                        appointment_id,
                        based_on: e.based_on_version.clone().unwrap_or_default(),
                        reason: text(e, "reason").unwrap_or_else(|| "Moved to another slot".into()),
                        part_of_move: e.kind == JournalKind::Move,
                    },
                ));
            }
            (JournalKind::Arrived | JournalKind::DidNotAttend, _) => {
                if unsettled(e) {
                    let what = if e.kind == JournalKind::Arrived {
                        "arrived"
                    } else {
                        "did not attend"
                    };
                    let when = e
                        .payload
                        .get("start")
                        .and_then(|v| serde_json::from_value(v.clone()).ok())
                        .map(format_uk);
                    steps.push((
                        e.seq,
                        Step::BackEntry {
                            entries: vec![e.id.clone()],
                            patient_id: None,
                            summary: format!(
                                "Marked {what} offline for the appointment at {}: record it by hand",
                                when.unwrap_or_else(|| "an unknown time".into())
                            ),
                        },
                    ));
                }
            }
            (kind, _) => {
                if unsettled(e) {
                    steps.push((
                        e.seq,
                        Step::BackEntry {
                            entries: vec![e.id.clone()],
                            patient_id: None,
                            summary: format!(
                                "An offline {kind} Lifeboat cannot send: check by hand"
                            ),
                        },
                    ));
                }
            }
        }
    }
    for id in chain_order {
        let chain = &chains[id];
        if !chain.entries.iter().any(|e| unsettled(e)) {
            continue;
        }
        match chain.first.state {
            JournalState::Applied | JournalState::Superseded | JournalState::Discarded => continue,
            // Waiting for a manager's decision, unless staff cancelled the booking since
            // (a move of an upstream appointment waits all the same: its cancellation of
            // the original still needs the decision).
            JournalState::Conflict if chain.ended.is_none() || chain.replaces().is_some() => {
                continue;
            }
            _ => {}
        }
        let entries: Vec<String> = chain.entries.iter().map(|e| e.id.clone()).collect();
        let step = match (chain.ended, &chain.details) {
            _ if chain.original_passed => Step::BackEntry {
                entries,
                patient_id: chain.details.as_ref().map(|d| d.patient_id.clone()),
                summary: format!(
                    "Moved offline from {} to {}{}, but the original appointment has now passed, so the upstream can no longer be changed: record the move by hand",
                    chain
                        .first
                        .payload
                        .get("from_start")
                        .and_then(|v| serde_json::from_value(v.clone()).ok())
                        .map_or_else(|| "an unknown time".into(), format_uk),
                    chain
                        .details
                        .as_ref()
                        .map_or_else(|| "an unknown time".into(), |d| format_uk(d.start)),
                    match chain.ended.map(|e| e.kind) {
                        Some(JournalKind::Cancel) => ", then cancelled",
                        Some(JournalKind::Arrived) => ", then marked arrived",
                        Some(JournalKind::DidNotAttend) => ", then marked did not attend",
                        _ => "",
                    }
                ),
            },
            (Some(end), _) if end.kind == JournalKind::Cancel => Step::Supersede {
                entries,
                why: "booked and cancelled offline: nothing to send".into(),
            },
            (Some(end), details) => Step::BackEntry {
                entries,
                patient_id: details.as_ref().map(|d| d.patient_id.clone()),
                summary: format!(
                    "Booked offline for {} and marked {}: enter the appointment by hand",
                    details
                        .as_ref()
                        .map_or_else(|| "an unknown time".into(), |d| format_uk(d.start)),
                    if end.kind == JournalKind::Arrived {
                        "arrived"
                    } else {
                        "did not attend"
                    }
                ),
            },
            (None, None) => Step::BackEntry {
                entries,
                patient_id: None,
                summary: "An offline booking whose details cannot be read: check by hand".into(),
            },
            (None, Some(d)) if d.start <= now => Step::BackEntry {
                entries,
                patient_id: Some(d.patient_id.clone()),
                summary: format!(
                    "Booked offline for {}, which has now passed: enter it by hand",
                    format_uk(d.start)
                ),
            },
            (None, Some(d)) => Step::Book {
                identity: chain.first.id.clone(),
                entries,
                booking: d.clone(),
                replaces: chain.replaces(),
            },
        };
        steps.push((chain.details_seq, step));
    }
    steps.sort_by_key(|(seq, step)| (*seq, !matches!(step, Step::Cancel { .. })));
    steps.into_iter().map(|(_, s)| s).collect()
}
