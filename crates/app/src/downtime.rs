//! The downtime pack: paper that still works when even the desk PC fails. Day lists per
//! clinician (reception) and summary packs for a session's patients (clinicians), as PDF,
//! every page with when it was printed, how old the data is, page numbers and a
//! confidentiality footer.

use chrono::{DateTime, NaiveDate, Utc};
use lifeboat_model::display_nhs_number as nhs;
use lifeboat_model::time::{format_uk, format_uk_date, london_to_utc};
use lifeboat_store::{AppointmentView, Store, StoreError, SummaryLine};

use crate::pdf::Document;

const FOOTER: &str = "CONFIDENTIAL: patient information. Keep secure; shred after use.";

fn header(printed: DateTime<Utc>, data_as_of: &str) -> Vec<String> {
    vec![
        format!("Printed at {}", format_uk(printed)),
        format!("Cache: {data_as_of}"),
    ]
}

/// A London day's live appointments, for one clinician or all, in time order.
fn appointments(
    store: &Store,
    date: NaiveDate,
    practitioner_id: Option<&str>,
) -> Result<Vec<AppointmentView>, StoreError> {
    let from = london_to_utc(date.and_hms_opt(0, 0, 0).unwrap_or_default());
    let to = london_to_utc(
        (date + chrono::Days::new(1))
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default(),
    );
    Ok(store
        .day_book(from, to, practitioner_id)?
        .into_iter()
        .filter_map(|line| line.appointment)
        .collect())
}

fn alerts(store: &Store, patient_id: &str) -> Result<Vec<String>, StoreError> {
    Ok(store
        .clinical_entries(patient_id)?
        .into_iter()
        .filter(|l| l.kind == "Flag")
        .map(|l| l.text)
        .collect())
}

/// The day list: time, patient, date of birth, NHS number, phone, reason, alerts.
pub fn day_list(
    store: &Store,
    date: NaiveDate,
    practitioner_id: Option<&str>,
    printed: DateTime<Utc>,
    data_as_of: &str,
) -> Result<Vec<u8>, StoreError> {
    let who = practitioner_id
        .and_then(|id| {
            store
                .practitioners()
                .ok()?
                .into_iter()
                .find(|(p, _)| p == id)
                .map(|(_, n)| n)
        })
        .unwrap_or_else(|| "all clinicians".into());
    let mut doc = Document::new(
        &format!("Day list: {who}, {}", format_uk_date(date)),
        header(printed, data_as_of),
        FOOTER,
    );
    let columns = [0.0, 36.0, 176.0, 232.0, 298.0, 364.0];
    doc.row(
        &[
            (columns[0], "Time"),
            (columns[1], "Patient"),
            (columns[2], "Born"),
            (columns[3], "NHS number"),
            (columns[4], "Phone"),
            (columns[5], "Reason / clinician"),
        ],
        9.0,
        true,
    );
    let list = appointments(store, date, practitioner_id)?;
    if list.is_empty() {
        doc.row(&[(0.0, "No appointments booked.")], 10.0, false);
    }
    for a in &list {
        let time = format_uk(a.start);
        let time = time.rsplit(' ').next().unwrap_or_default();
        let (name, born, number, phone, patient_id) = match &a.patient {
            Some(p) => (
                format!("{}, {}", p.family.to_uppercase(), p.given),
                p.birth_date.map(format_uk_date).unwrap_or_default(),
                nhs(p.nhs_number.as_deref()),
                p.phone.clone().unwrap_or_default(),
                Some(p.id.clone()),
            ),
            None => (
                "(no patient)".into(),
                String::new(),
                String::new(),
                String::new(),
                None,
            ),
        };
        let reason = format!(
            "{}{}",
            a.description.as_deref().unwrap_or(""),
            if practitioner_id.is_none() {
                format!(" ({})", a.practitioner_name.as_deref().unwrap_or("-"))
            } else {
                String::new()
            }
        );
        let status = if a.status == "booked" {
            String::new()
        } else {
            format!(" [{}]", a.status)
        };
        doc.row(
            &[
                (columns[0], time),
                (columns[1], &format!("{name}{status}")),
                (columns[2], &born),
                (columns[3], &number),
                (columns[4], &phone),
                (columns[5], &reason),
            ],
            9.0,
            false,
        );
        if let Some(id) = patient_id {
            for alert in alerts(store, &id)? {
                doc.row(&[(columns[1], &format!("ALERT: {alert}"))], 8.5, true);
            }
        }
    }
    Ok(doc.render())
}

fn section(doc: &mut Document, title: &str, lines: &[SummaryLine], most: usize) {
    doc.gap(4.0);
    doc.row(&[(0.0, title)], 10.5, true);
    if lines.is_empty() {
        doc.row(&[(12.0, "None recorded")], 9.0, false);
    }
    for l in lines.iter().take(most) {
        let detail = l
            .detail
            .as_deref()
            .map(|d| format!(" - {d}"))
            .unwrap_or_default();
        let date = l
            .date
            .as_deref()
            .map(|d| format!(" ({})", &d[..d.len().min(10)]))
            .unwrap_or_default();
        doc.row(&[(12.0, &format!("{}{detail}{date}", l.text))], 9.0, false);
    }
}

/// Summaries of every patient booked on the day (with one clinician, or all), one patient
/// per page: alerts and allergies first, then medications, problems, recent results,
/// immunisations, recent encounters, and any offline notes.
pub fn summary_pack(
    store: &Store,
    date: NaiveDate,
    practitioner_id: Option<&str>,
    today: NaiveDate,
    printed: DateTime<Utc>,
    data_as_of: &str,
) -> Result<Vec<u8>, StoreError> {
    let mut doc = Document::new(
        &format!("Clinical summary pack, {}", format_uk_date(date)),
        header(printed, data_as_of),
        FOOTER,
    );
    let mut seen = std::collections::BTreeSet::new();
    for a in appointments(store, date, practitioner_id)? {
        let Some(p) = a.patient.filter(|p| seen.insert(p.id.clone())) else {
            continue;
        };
        let Some(m) = store.patient_match(&p.id, today)? else {
            continue;
        };
        doc.new_page();
        let time = format_uk(a.start);
        doc.row(
            &[(
                0.0,
                &format!(
                    "{}, {} {}",
                    m.family.to_uppercase(),
                    m.given,
                    m.title
                        .as_deref()
                        .map(|t| format!("({t})"))
                        .unwrap_or_default()
                ),
            )],
            13.0,
            true,
        );
        doc.row(
            &[(
                0.0,
                &format!(
                    "Born {} (age {}), NHS number {}, {}",
                    m.birth_date.map(format_uk_date).unwrap_or_default(),
                    m.age.map(|a| a.to_string()).unwrap_or_default(),
                    nhs(m.nhs_number.as_deref()),
                    [m.address_line.as_deref(), m.postcode.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )],
            9.0,
            false,
        );
        doc.row(
            &[(
                0.0,
                &format!(
                    "Appointment {time} with {}",
                    a.practitioner_name.as_deref().unwrap_or("-")
                ),
            )],
            9.0,
            false,
        );
        let entries = store.clinical_entries(&p.id)?;
        let of = |kinds: &[&str]| {
            entries
                .iter()
                .filter(|l| kinds.contains(&l.kind.as_str()))
                .cloned()
                .collect::<Vec<_>>()
        };
        section(&mut doc, "Alerts", &of(&["Flag"]), 20);
        section(&mut doc, "Allergies", &of(&["AllergyIntolerance"]), 20);
        section(
            &mut doc,
            "Medications",
            &of(&["MedicationStatement", "MedicationRequest"]),
            30,
        );
        section(&mut doc, "Problems", &of(&["Condition"]), 30);
        section(&mut doc, "Recent results", &of(&["Observation"]), 8);
        section(&mut doc, "Immunisations", &of(&["Immunization"]), 8);
        section(&mut doc, "Recent encounters", &of(&["Encounter"]), 5);
        let notes = store.notes_for_patient(&p.id)?;
        if !notes.is_empty() {
            doc.gap(4.0);
            doc.row(
                &[(0.0, "Offline notes (not yet in the clinical record)")],
                10.5,
                true,
            );
            for n in notes {
                doc.row(
                    &[(
                        12.0,
                        &format!("{} by {}: {}", format_uk(n.written_at), n.author, n.text),
                    )],
                    9.0,
                    false,
                );
            }
        }
    }
    if seen.is_empty() {
        doc.row(&[(0.0, "No patients booked.")], 10.0, false);
    }
    Ok(doc.render())
}
