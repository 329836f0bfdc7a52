//! Roles and the operations they permit: the one table that says who may do what.
//!
//! Every use case of the core is an [`Operation`]; the app checks the session's role against
//! it before doing anything (`Session::require`). This module owns that table only; it must
//! not know how an operation is carried out, and nothing else may decide permissions.

use serde::{Deserialize, Serialize};

/// A member of staff's job, as far as Lifeboat cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Front desk: finds patients, sees demographics, alerts and appointments, books.
    Receptionist,
    /// GPs and nurses: everything reception does, plus clinical summaries and notes.
    Clinician,
    /// Practice manager: everything, including sync, outages, reconciliation, accounts, audit.
    Manager,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Receptionist, Role::Clinician, Role::Manager];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Receptionist => "receptionist",
            Role::Clinician => "clinician",
            Role::Manager => "manager",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role may carry out `op`. Deny unless listed: a new operation is refused
    /// to everyone but managers until someone decides otherwise here.
    pub fn permits(self, op: Operation) -> bool {
        use Operation::*;
        let reception = matches!(
            op,
            SearchPatients
                | ViewDemographics
                | ViewAlerts
                | ViewAppointments
                | BookAppointment
                | MoveAppointment
                | CancelAppointment
                | MarkArrived
                | MarkDidNotAttend
                | PrintDayList
        );
        let clinical = matches!(
            op,
            ViewClinicalSummary | WriteClinicalNote | PrintClinicalSummaryPack
        );
        match self {
            Role::Receptionist => reception,
            Role::Clinician => reception || clinical,
            Role::Manager => true,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every use case of the core that a person starts. Background work the core does by itself
/// (the scheduled sync, health checks) is not an operation: no person is behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    SearchPatients,
    ViewDemographics,
    ViewAlerts,
    ViewAppointments,
    BookAppointment,
    MoveAppointment,
    CancelAppointment,
    MarkArrived,
    MarkDidNotAttend,
    ViewClinicalSummary,
    WriteClinicalNote,
    /// A sync started by hand ("sync now").
    Sync,
    DeclareOutage,
    EndOutage,
    StartDrill,
    EndDrill,
    Reconcile,
    ResolveConflict,
    BackEntryWorklist,
    ManageAccounts,
    ViewAudit,
    ExportAudit,
    PrintClinicalSummaryPack,
    PrintDayList,
    ExportContactList,
}

impl Operation {
    pub const ALL: [Operation; 25] = {
        use Operation::*;
        [
            SearchPatients,
            ViewDemographics,
            ViewAlerts,
            ViewAppointments,
            BookAppointment,
            MoveAppointment,
            CancelAppointment,
            MarkArrived,
            MarkDidNotAttend,
            ViewClinicalSummary,
            WriteClinicalNote,
            Sync,
            DeclareOutage,
            EndOutage,
            StartDrill,
            EndDrill,
            Reconcile,
            ResolveConflict,
            BackEntryWorklist,
            ManageAccounts,
            ViewAudit,
            ExportAudit,
            PrintClinicalSummaryPack,
            PrintDayList,
            ExportContactList,
        ]
    };

    /// Completes "your role (receptionist) does not allow …".
    pub fn describe(self) -> &'static str {
        use Operation::*;
        match self {
            SearchPatients => "searching for patients",
            ViewDemographics => "viewing patient details",
            ViewAlerts => "viewing patient alerts",
            ViewAppointments => "viewing appointments",
            BookAppointment => "booking appointments",
            MoveAppointment => "moving appointments",
            CancelAppointment => "cancelling appointments",
            MarkArrived => "marking patients as arrived",
            MarkDidNotAttend => "marking patients as did not attend",
            ViewClinicalSummary => "viewing clinical summaries",
            WriteClinicalNote => "writing clinical notes",
            Sync => "starting a sync",
            DeclareOutage => "declaring an outage",
            EndOutage => "ending an outage",
            StartDrill => "starting a drill",
            EndDrill => "ending a drill",
            Reconcile => "reconciling offline changes with the clinical system",
            ResolveConflict => "resolving reconciliation conflicts",
            BackEntryWorklist => "working the back-entry list",
            ManageAccounts => "managing staff accounts",
            ViewAudit => "viewing the audit log",
            ExportAudit => "exporting the audit log",
            PrintClinicalSummaryPack => "printing clinical summary packs",
            PrintDayList => "printing the day list",
            ExportContactList => "exporting the patient contact list",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Operation::*;

    /// The practice's policy written out by hand, row by row, so that a change to `permits`
    /// must be matched by a deliberate change here: (operation, receptionist, clinician,
    /// manager).
    const POLICY: [(Operation, bool, bool, bool); 25] = [
        (SearchPatients, true, true, true),
        (ViewDemographics, true, true, true),
        (ViewAlerts, true, true, true),
        (ViewAppointments, true, true, true),
        (BookAppointment, true, true, true),
        (MoveAppointment, true, true, true),
        (CancelAppointment, true, true, true),
        (MarkArrived, true, true, true),
        (MarkDidNotAttend, true, true, true),
        (ViewClinicalSummary, false, true, true),
        (WriteClinicalNote, false, true, true),
        (Sync, false, false, true),
        (DeclareOutage, false, false, true),
        (EndOutage, false, false, true),
        (StartDrill, false, false, true),
        (EndDrill, false, false, true),
        (Reconcile, false, false, true),
        (ResolveConflict, false, false, true),
        (BackEntryWorklist, false, false, true),
        (ManageAccounts, false, false, true),
        (ViewAudit, false, false, true),
        (ExportAudit, false, false, true),
        (PrintClinicalSummaryPack, false, true, true),
        (PrintDayList, true, true, true),
        (ExportContactList, false, false, true),
    ];

    #[test]
    fn every_role_is_allowed_and_refused_exactly_what_the_policy_says() {
        for (op, reception, clinician, manager) in POLICY {
            assert_eq!(
                Role::Receptionist.permits(op),
                reception,
                "receptionist: {op:?}"
            );
            assert_eq!(Role::Clinician.permits(op), clinician, "clinician: {op:?}");
            assert_eq!(Role::Manager.permits(op), manager, "manager: {op:?}");
        }
    }

    #[test]
    fn the_policy_covers_every_operation_once() {
        // Adding a variant breaks this match until ALL and POLICY are updated too.
        let _exhaustive = |op: Operation| match op {
            SearchPatients
            | ViewDemographics
            | ViewAlerts
            | ViewAppointments
            | BookAppointment
            | MoveAppointment
            | CancelAppointment
            | MarkArrived
            | MarkDidNotAttend
            | ViewClinicalSummary
            | WriteClinicalNote
            | Sync
            | DeclareOutage
            | EndOutage
            | StartDrill
            | EndDrill
            | Reconcile
            | ResolveConflict
            | BackEntryWorklist
            | ManageAccounts
            | ViewAudit
            | ExportAudit
            | PrintClinicalSummaryPack
            | PrintDayList
            | ExportContactList => (),
        };
        let mut seen: Vec<Operation> = POLICY.iter().map(|p| p.0).collect();
        seen.sort_by_key(|o| o.describe());
        seen.dedup();
        assert_eq!(seen.len(), Operation::ALL.len());
        for op in Operation::ALL {
            assert!(POLICY.iter().any(|p| p.0 == op), "{op:?} has no policy row");
        }
    }

    #[test]
    fn a_receptionist_cannot_read_clinical_data_nor_run_the_practice() {
        for op in [
            ViewClinicalSummary,
            WriteClinicalNote,
            PrintClinicalSummaryPack,
            Reconcile,
            ManageAccounts,
            ViewAudit,
            ExportContactList,
        ] {
            assert!(!Role::Receptionist.permits(op), "{op:?}");
        }
    }

    #[test]
    fn roles_read_back_from_their_stored_names() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("Manager"), None);
        assert_eq!(Role::parse("admin"), None);
    }
}
