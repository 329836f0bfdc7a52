//! The mode state machine, owned by the core: Online, Offline, Recovering, Reconciling.
//! `next` is a pure function of the current state, what happened and whether offline changes
//! are still unsettled; `ModeController` persists each transition with its cause and actor.

use std::fmt;

use chrono::{DateTime, Utc};
use lifeboat_store::{Store, StoreError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Upstream healthy: staff work in the clinical system; Lifeboat keeps its copy fresh.
    Online,
    /// Upstream down (noticed or declared): staff work in Lifeboat; changes are journaled.
    Offline,
    /// Upstream back while offline changes wait: the manager is asked to reconcile.
    Recovering,
    /// The manager's reconciliation is replaying the journal (journal frozen).
    Reconciling,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
            Self::Recovering => "recovering",
            Self::Reconciling => "reconciling",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::Online,
            Self::Offline,
            Self::Recovering,
            Self::Reconciling,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }

    /// Whether staff may make offline changes (book, cancel, notes) in this mode.
    pub fn accepts_offline_changes(self) -> bool {
        matches!(self, Self::Offline | Self::Recovering)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What can move the mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeEvent {
    /// The health monitor's circuit breaker opened.
    UpstreamDown,
    /// The health monitor's circuit breaker closed again.
    UpstreamUp,
    /// A manager declared an outage (e.g. the clinical system is up but unusable).
    DeclareOutage,
    /// A manager ended a declared (or noticed) outage.
    EndOutage,
    StartReconciliation,
    /// Reconciliation finished its run; `unsettled` says whether anything still needs a decision.
    ReconciliationFinished,
    /// Reconciliation could not go on (the upstream failed again).
    ReconciliationStopped,
}

impl ModeEvent {
    pub fn describe(self) -> &'static str {
        match self {
            Self::UpstreamDown => "the upstream stopped answering health checks",
            Self::UpstreamUp => "the upstream answers health checks again",
            Self::DeclareOutage => "outage declared",
            Self::EndOutage => "outage ended",
            Self::StartReconciliation => "reconciliation started",
            Self::ReconciliationFinished => "reconciliation finished",
            Self::ReconciliationStopped => "reconciliation stopped: the upstream failed",
        }
    }
}

/// The persisted state: the mode, and whether a manager declared the outage (a declared
/// outage is not ended by health checks alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ModeState {
    pub mode: Mode,
    pub declared: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModeError {
    #[error("cannot {action} while Lifeboat is {mode}: {why}")]
    Illegal {
        mode: Mode,
        action: &'static str,
        why: &'static str,
    },
    #[error("could not record the mode change: {0}")]
    Store(String),
}

impl From<StoreError> for ModeError {
    fn from(e: StoreError) -> Self {
        Self::Store(e.to_string())
    }
}

/// The transition table. `unsettled` is whether the journal holds changes not yet settled
/// upstream. Returns the state after the event (possibly unchanged), or why it is illegal.
pub fn next(state: ModeState, event: ModeEvent, unsettled: bool) -> Result<ModeState, ModeError> {
    use Mode::*;
    use ModeEvent::*;
    let after_outage = if unsettled { Recovering } else { Online };
    let to = |mode, declared| Ok(ModeState { mode, declared });
    let illegal = |action, why| {
        Err(ModeError::Illegal {
            mode: state.mode,
            action,
            why,
        })
    };
    match (state.mode, event) {
        (Online, UpstreamDown) => to(Offline, false),
        (Online, DeclareOutage) | (Recovering, DeclareOutage) => to(Offline, true),
        (Offline, DeclareOutage) => to(Offline, true),
        (Online, UpstreamUp) => Ok(state),
        (Online, EndOutage) => illegal("end the outage", "there is no outage"),
        // Only a manager ends a declared outage; a noticed one ends when health returns.
        (Offline, UpstreamUp) if state.declared => Ok(state),
        (Offline, UpstreamUp) | (Offline, EndOutage) => to(after_outage, false),
        (Offline, UpstreamDown) => Ok(state),
        (Recovering, UpstreamDown) => to(Offline, false),
        (Recovering, UpstreamUp) => Ok(state),
        (Recovering, EndOutage) => to(after_outage, false),
        (Recovering, StartReconciliation) => to(Reconciling, false),
        (Online, StartReconciliation) if unsettled => to(Reconciling, false),
        (Online, StartReconciliation) => {
            illegal("reconcile", "there are no offline changes to reconcile")
        }
        (Offline, StartReconciliation) => {
            illegal("reconcile", "the upstream is down; end the outage first")
        }
        (Reconciling, ReconciliationFinished) => to(after_outage, false),
        (Reconciling, ReconciliationStopped) | (Reconciling, UpstreamDown) => to(Offline, false),
        (Reconciling, UpstreamUp) => Ok(state),
        (Reconciling, DeclareOutage) => illegal(
            "declare an outage",
            "reconciliation is running; wait for it to stop",
        ),
        (Reconciling, EndOutage) => illegal("end the outage", "reconciliation is running"),
        (Reconciling, StartReconciliation) => {
            illegal("reconcile", "reconciliation is already running")
        }
        (_, ReconciliationFinished) | (_, ReconciliationStopped) => {
            illegal("finish reconciliation", "no reconciliation is running")
        }
    }
}

/// One recorded transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub at: DateTime<Utc>,
    pub from: Mode,
    pub to: Mode,
    pub cause: String,
    pub actor: String,
}

/// Reads and moves the persisted mode.
pub struct ModeController;

impl ModeController {
    pub fn current(store: &Store) -> Result<ModeState, ModeError> {
        let mode = store
            .setting("mode")?
            .as_deref()
            .and_then(Mode::parse)
            .unwrap_or(Mode::Online);
        let declared = store.setting("mode.declared")?.as_deref() == Some("1");
        Ok(ModeState { mode, declared })
    }

    /// Applies `event` caused by `actor` ("health monitor" or a username). Returns the
    /// transition if the mode changed; writes nothing otherwise.
    pub fn apply(
        store: &mut Store,
        event: ModeEvent,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Transition>, ModeError> {
        let tx = store.transaction()?;
        let current = {
            let mode = tx
                .setting("mode")?
                .as_deref()
                .and_then(Mode::parse)
                .unwrap_or(Mode::Online);
            ModeState {
                mode,
                declared: tx.setting("mode.declared")?.as_deref() == Some("1"),
            }
        };
        let unsettled = tx.unsettled_journal_count()? > 0;
        let after = next(current, event, unsettled)?;
        if after == current {
            return Ok(None);
        }
        tx.set_setting("mode", after.mode.as_str())?;
        tx.set_setting("mode.declared", if after.declared { "1" } else { "0" })?;
        let transition = Transition {
            at: now,
            from: current.mode,
            to: after.mode,
            cause: event.describe().to_string(),
            actor: actor.to_string(),
        };
        if after.mode != current.mode {
            tx.record_mode_change(
                transition.from.as_str(),
                transition.to.as_str(),
                &transition.cause,
                actor,
                now,
            )?;
        }
        tx.commit()?;
        Ok((after.mode != current.mode).then_some(transition))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Mode::*;
    use ModeEvent::*;

    fn s(mode: Mode) -> ModeState {
        ModeState {
            mode,
            declared: false,
        }
    }

    #[test]
    fn a_noticed_outage_goes_offline_and_back() {
        let off = next(s(Online), UpstreamDown, false).unwrap();
        assert_eq!(off, s(Offline));
        assert_eq!(next(off, UpstreamUp, false).unwrap().mode, Online);
        assert_eq!(next(off, UpstreamUp, true).unwrap().mode, Recovering);
    }

    #[test]
    fn a_declared_outage_ends_only_when_a_manager_ends_it() {
        let off = next(s(Online), DeclareOutage, false).unwrap();
        assert_eq!(
            off,
            ModeState {
                mode: Offline,
                declared: true
            }
        );
        assert_eq!(next(off, UpstreamUp, true).unwrap(), off);
        assert_eq!(next(off, EndOutage, true).unwrap().mode, Recovering);
        assert_eq!(next(off, EndOutage, false).unwrap().mode, Online);
    }

    #[test]
    fn reconciliation_runs_from_recovering_and_ends_by_what_is_left() {
        let r = next(s(Recovering), StartReconciliation, true).unwrap();
        assert_eq!(r.mode, Reconciling);
        assert_eq!(next(r, ReconciliationFinished, false).unwrap().mode, Online);
        assert_eq!(
            next(r, ReconciliationFinished, true).unwrap().mode,
            Recovering
        );
        assert_eq!(next(r, ReconciliationStopped, true).unwrap().mode, Offline);
    }

    #[test]
    fn illegal_transitions_are_refused_with_a_reason() {
        for (mode, event, unsettled) in [
            (Online, EndOutage, false),
            (Online, StartReconciliation, false),
            (Offline, StartReconciliation, true),
            (Reconciling, StartReconciliation, true),
            (Reconciling, DeclareOutage, true),
            (Online, ReconciliationFinished, false),
        ] {
            let err = next(s(mode), event, unsettled).unwrap_err();
            assert!(
                matches!(err, ModeError::Illegal { .. }),
                "{mode:?} {event:?}"
            );
            assert!(err.to_string().starts_with("cannot "), "{err}");
        }
    }

    #[test]
    fn every_state_and_event_has_an_answer() {
        let events = [
            UpstreamDown,
            UpstreamUp,
            DeclareOutage,
            EndOutage,
            StartReconciliation,
            ReconciliationFinished,
            ReconciliationStopped,
        ];
        for mode in [Online, Offline, Recovering, Reconciling] {
            // Only an outage can be declared.
            for declared in [false, mode == Offline] {
                for e in events {
                    for unsettled in [false, true] {
                        // Must not panic; legal results keep the invariants.
                        if let Ok(after) = next(ModeState { mode, declared }, e, unsettled) {
                            assert!(!after.declared || after.mode == Offline);
                            if after.mode == Recovering {
                                assert!(unsettled || mode == Recovering);
                            }
                        }
                    }
                }
            }
        }
    }
}
