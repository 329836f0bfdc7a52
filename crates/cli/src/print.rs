//! How the CLI shows the core's answers: plain tables with UK dates (Europe/London) and the
//! "data as of" line wherever cached data is shown.

use std::collections::BTreeMap;

use lifeboat_app::desk::{CacheStatus, ConflictView, DayBook, StatusView};
use lifeboat_engine::booking::Confirmation;
use lifeboat_engine::reconcile::{ReconcileReport, StepResult};
use lifeboat_model::display_nhs_number as nhs;
use lifeboat_model::time::{format_uk, format_uk_date};
use lifeboat_store::{
    AppointmentView, JournalEntry, PackKind, PatientBrief, PatientMatch, SavedPack, SlotView,
    WorkItem,
};

pub fn matches(found: &[PatientMatch]) {
    if found.is_empty() {
        println!("No patients found.");
        return;
    }
    println!(
        "{:<36} {:<12} {:>4}  {:<12}  {:<44} Registered GP",
        "Name", "Born", "Age", "NHS number", "Address"
    );
    for m in found {
        let name = format!(
            "{}, {}{}{}",
            m.family.to_uppercase(),
            m.given,
            m.title
                .as_deref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default(),
            if m.deceased { " [DECEASED]" } else { "" }
        );
        let address = [m.address_line.as_deref(), m.postcode.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "{:<36} {:<12} {:>4}  {:<12}  {:<44} {}",
            name,
            m.birth_date
                .map(format_uk_date)
                .unwrap_or_else(|| "-".into()),
            m.age.map(|a| a.to_string()).unwrap_or_else(|| "-".into()),
            nhs(m.nhs_number.as_deref()),
            address,
            m.gp_name.as_deref().unwrap_or("-")
        );
    }
}

pub fn banner(s: &StatusView) {
    let mode = match (s.drill, s.mode.as_str()) {
        (true, _) => "DRILL (practice only, nothing reaches the clinical system)".to_string(),
        (false, "offline") if s.declared => "OFFLINE (outage declared)".into(),
        (false, m) => m.to_uppercase(),
    };
    println!(
        "Mode: {mode}. Cache: {}. Offline changes held here: {}.",
        s.data_as_of, s.unsettled_changes
    );
    if let Some(e) = &s.last_sync_error {
        println!("Last sync failed: {e}");
    }
}

pub fn cache_status(c: &CacheStatus) {
    banner(&c.status);
    println!(
        "\n{:<20} {:>9}  {:<9} Last complete pass",
        "Type", "Cached", "Sync"
    );
    for k in &c.kinds {
        let phase = match (k.phase.as_deref(), k.total) {
            (Some("initial"), Some(total)) => format!("{}/{}", k.done, total),
            (Some(p), _) => p.to_string(),
            (None, _) => "never".into(),
        };
        println!(
            "{:<20} {:>9}  {:<9} {}",
            k.kind.to_string(),
            k.cached,
            phase,
            k.last_completed.as_deref().unwrap_or("-")
        );
    }
    if c.rejected.is_empty() {
        println!("\nNo resources refused.");
    } else {
        println!("\nRefused from the upstream ({}):", c.rejected.len());
        for r in &c.rejected {
            println!("  {}/{}: {}", r.kind, r.id, r.reason);
        }
    }
}

fn who(a: &AppointmentView) -> String {
    a.patient
        .as_ref()
        .map_or_else(|| "-".into(), PatientBrief::label)
}

pub fn day_book(b: &DayBook) {
    println!(
        "Appointment book for {} ({}).",
        format_uk_date(b.date),
        b.data_as_of
    );
    for line in &b.lines {
        let s = &line.slot;
        let entry = match &line.appointment {
            Some(a) => format!(
                "{}{} {}",
                a.status,
                if a.changed_offline { " (offline)" } else { "" },
                who(a)
            ),
            None if s.available => "free".into(),
            None => s.cached_status.clone(),
        };
        println!(
            "{}  {:<24} {:<10} {}",
            format_uk(s.start),
            s.practitioner_name.as_deref().unwrap_or("-"),
            s.id.chars().take(8).collect::<String>(),
            entry
        );
    }
}

pub fn slots(slots: &[SlotView]) {
    if slots.is_empty() {
        println!("No free slots in that window.");
    }
    for s in slots {
        println!(
            "{}  {:<24} {}  slot {}",
            format_uk(s.start),
            s.practitioner_name.as_deref().unwrap_or("-"),
            s.service_type.as_deref().unwrap_or(""),
            s.id
        );
    }
}

pub fn confirmation(c: &Confirmation) {
    match &c.appointment {
        Some(a) => println!(
            "Done offline: {} at {} with {} for {}. Held as change {} until reconciliation.",
            a.status,
            format_uk(a.start),
            a.practitioner_name.as_deref().unwrap_or("-"),
            who(a),
            c.journal.id
        ),
        None => println!("Done offline (change {}).", c.journal.id),
    }
}

pub fn journal(entries: &[JournalEntry]) {
    if entries.is_empty() {
        println!("No offline changes.");
    }
    for e in entries {
        println!(
            "{}  {:<15} {:<11} {:<14} {}",
            format_uk(e.created_at),
            e.kind.as_str(),
            e.state.as_str(),
            e.author,
            e.id
        );
    }
}

pub fn reconcile(r: &ReconcileReport) {
    println!(
        "{}",
        if r.dry_run {
            "Dry run: nothing was sent."
        } else {
            "Reconciliation:"
        }
    );
    for s in &r.steps {
        let result = match &s.result {
            StepResult::Applied { upstream_id } => format!("done ({upstream_id})"),
            StepResult::Conflict { kind } => format!("CONFLICT: {}", kind.describe()),
            StepResult::Superseded => "nothing to send".into(),
            StepResult::BackEntry => "to the back-entry worklist".into(),
            StepResult::Failed { code } => format!("failed ({code}), will be retried"),
            StepResult::WouldApply => "would be sent".into(),
            StepResult::WouldConflict { kind } => format!("would conflict: {}", kind.describe()),
        };
        println!("  {} -> {result}", s.summary);
    }
    let n = |f: fn(&StepResult) -> bool| r.count(f);
    println!(
        "{} {}, {} conflicts, {} to the worklist, {} with nothing to send.",
        n(|x| matches!(x, StepResult::Applied { .. } | StepResult::WouldApply)),
        if r.dry_run {
            "would be sent"
        } else {
            "applied"
        },
        n(|x| matches!(
            x,
            StepResult::Conflict { .. } | StepResult::WouldConflict { .. }
        )),
        n(|x| matches!(x, StepResult::BackEntry)),
        n(|x| matches!(x, StepResult::Superseded)),
    );
    if let Some(why) = &r.stopped {
        println!("Stopped early: {why}. What was not sent stays to be retried.");
    }
}

pub fn conflicts(c: &[ConflictView]) {
    if c.is_empty() {
        println!("No conflicts waiting for a decision.");
    }
    for v in c {
        println!("Conflict {}: {}", v.journal_id, v.summary);
        println!("  Done offline: {}", describe_side(&v.ours, &v.names));
        match &v.upstream {
            Some(u) => println!("  Upstream now: {}", describe_side(u, &v.names)),
            None => println!("  Upstream now: (nothing to show)"),
        }
        let choices: Vec<String> = v
            .choices
            .iter()
            .map(|c| {
                serde_json::to_value(c)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect();
        println!("  Choices: {}", choices.join(", "));
        for s in &v.nearest_slots {
            println!(
                "  Free: {} with {} (slot {})",
                format_uk(s.start),
                s.practitioner_name.as_deref().unwrap_or("-"),
                s.id
            );
        }
    }
}

/// One side of a conflict in a line: what, when, for whom (named from the cache where it
/// can be); the JSON when it is neither a booking nor an appointment.
fn describe_side(v: &serde_json::Value, names: &BTreeMap<String, String>) -> String {
    let text = |k: &str| v.get(k).and_then(serde_json::Value::as_str);
    let name = |reference: String| names.get(&reference).cloned().unwrap_or(reference);
    let when = text("start")
        .and_then(|s| s.parse().ok())
        .map(format_uk)
        .unwrap_or_else(|| "an unknown time".into());
    if let Some(slot) = text("slot_id") {
        let patient = name(format!("Patient/{}", text("patient_id").unwrap_or("?")));
        return format!("a booking at {when} for {patient} (slot {slot})");
    }
    if text("resourceType") == Some("Appointment") {
        let patient = v
            .get("participant")
            .and_then(serde_json::Value::as_array)
            .and_then(|ps| {
                ps.iter()
                    .filter_map(|p| {
                        p.pointer("/actor/reference")
                            .and_then(serde_json::Value::as_str)
                    })
                    .find(|r| r.starts_with("Patient/"))
            })
            .map_or_else(|| "?".into(), |r| name(r.to_string()));
        return format!(
            "Appointment/{} {} at {when} for {patient} (version {})",
            text("id").unwrap_or("?"),
            text("status").unwrap_or("?"),
            v.pointer("/meta/versionId")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?")
        );
    }
    if let Some(cancel) = text("cancel") {
        return format!(
            "cancel Appointment/{cancel} ({})",
            text("reason").unwrap_or("no reason")
        );
    }
    v.to_string()
}

pub fn worklist(items: &[WorkItem]) {
    if items.is_empty() {
        println!("The back-entry worklist is empty.");
    }
    for i in items {
        let done = match (&i.done_by, i.done_at) {
            (Some(by), Some(at)) => format!("done by {by}, {}", format_uk(at)),
            _ => "TO DO".into(),
        };
        println!("#{:<4} {:<12} {:<28} {}", i.id, i.kind, done, i.summary);
    }
}

pub fn packs(packs: &[SavedPack]) {
    if packs.is_empty() {
        println!("No downtime pack has been prepared yet (`lifeboat packs prepare`).");
    }
    for p in packs {
        let what = match p.kind {
            PackKind::DayList => "day list",
            PackKind::SummaryPack => "clinical summaries",
        };
        println!(
            "#{:<4} for {:<12} {:<19} prepared {}  {}  {} KiB",
            p.id,
            format_uk_date(p.for_date),
            what,
            format_uk(p.prepared_at),
            p.data_as_of,
            p.bytes.div_ceil(1024)
        );
    }
}
