//! The downtime pack: paper that still works when even the desk PC fails. Day lists per
//! clinician (reception) and summary packs for a session's patients (clinicians), as PDF,
//! every page with when it was printed, how old the data is, page numbers and a
//! confidentiality footer. The pack is also prepared ahead of time (by default each
//! evening, for the next working day) and kept, so it is ready before any outage.

use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use lifeboat_model::display_nhs_number as nhs;
use lifeboat_model::time::{
    format_fhir_date, format_uk, format_uk_date, london_date, london_to_utc,
};
use lifeboat_store::{AppointmentView, PackKind, Store, StoreError, SummaryLine};

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
            .map(|d| format!(" ({})", format_fhir_date(d)))
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

/// Whether a preparation is due at `now`: one a day, from `prepare_at` (London time). One
/// missed because nobody was logged in or the upstream was down is made at the first chance
/// after it, until the next day's time comes round.
pub fn pack_due(now: DateTime<Utc>, prepare_at: NaiveTime, last: Option<DateTime<Utc>>) -> bool {
    let today = london_date(now);
    let todays = london_to_utc(today.and_time(prepare_at));
    let since = if now >= todays {
        todays
    } else {
        london_to_utc((today - chrono::Days::new(1)).and_time(prepare_at))
    };
    last.is_none_or(|l| l < since)
}

/// The day a pack prepared at `now` is for: before the preparation time, today; from it, the
/// next day with appointments booked within a week (Friday evening prepares Monday), or
/// tomorrow if none is.
pub fn pack_date(
    store: &Store,
    now: DateTime<Utc>,
    prepare_at: NaiveTime,
) -> Result<NaiveDate, StoreError> {
    let today = london_date(now);
    if now < london_to_utc(today.and_time(prepare_at)) {
        return Ok(today);
    }
    for ahead in 1..=7 {
        let day = today + chrono::Days::new(ahead);
        if !appointments(store, day, None)?.is_empty() {
            return Ok(day);
        }
    }
    Ok(today + chrono::Days::new(1))
}

/// Both documents of a pack for `date`, every clinician.
pub fn render_pack(
    store: &Store,
    date: NaiveDate,
    today: NaiveDate,
    printed: DateTime<Utc>,
    data_as_of: &str,
) -> Result<[(PackKind, Vec<u8>); 2], StoreError> {
    Ok([
        (
            PackKind::DayList,
            day_list(store, date, None, printed, data_as_of)?,
        ),
        (
            PackKind::SummaryPack,
            summary_pack(store, date, None, today, printed, data_as_of)?,
        ),
    ])
}

const FILE_PREFIX: &str = "lifeboat-pack-";

/// The file a prepared document is written to: the preparation time first, so names sort
/// oldest to newest.
fn file_name(prepared: DateTime<Utc>, date: NaiveDate, kind: PackKind) -> String {
    let what = match kind {
        PackKind::DayList => "day-list",
        PackKind::SummaryPack => "clinical-summaries",
    };
    format!(
        "{FILE_PREFIX}{}-for-{date}-{what}.pdf",
        prepared.format("%Y%m%dT%H%M%SZ")
    )
}

/// Writes a prepared pack into `dir` (each file whole or not at all, readable by its owner
/// only) and removes the files of all but the `keep` latest preparations.
pub fn write_pack_files(
    dir: &Path,
    prepared: DateTime<Utc>,
    date: NaiveDate,
    documents: &[(PackKind, Vec<u8>)],
    keep: usize,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (kind, pdf) in documents {
        let path = dir.join(file_name(prepared, date, *kind));
        let partial = path.with_extension("pdf.partial");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&partial)?;
        std::io::Write::write_all(&mut file, pdf)?;
        file.sync_all()?;
        std::fs::rename(&partial, &path)?;
    }
    let mut stamps: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stamp = name.strip_prefix(FILE_PREFIX)?.get(..16)?.to_string();
            Some((stamp, e.path()))
        })
        .collect();
    let mut kept: Vec<&String> = stamps.iter().map(|(s, _)| s).collect();
    kept.sort_unstable_by(|a, b| b.cmp(a));
    kept.dedup();
    let kept: Vec<String> = kept.into_iter().take(keep).cloned().collect();
    stamps.retain(|(s, _)| !kept.contains(s));
    for (_, old) in stamps {
        std::fs::remove_file(old)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        // July: London is UTC+1.
        london_to_utc(
            NaiveDate::from_ymd_opt(2024, 7, d)
                .unwrap()
                .and_hms_opt(h, m, 0)
                .unwrap(),
        )
    }

    #[test]
    fn one_preparation_a_day_from_the_set_time_and_a_missed_one_made_up() {
        let six = NaiveTime::from_hms_opt(18, 0, 0).unwrap();
        assert!(pack_due(at(19, 18, 0), six, None));
        assert!(pack_due(at(19, 9, 0), six, None));
        // Prepared at 18:05 on the 19th: nothing more due until 18:00 on the 20th.
        let last = Some(at(19, 18, 5));
        assert!(!pack_due(at(19, 23, 0), six, last));
        assert!(!pack_due(at(20, 8, 0), six, last));
        assert!(!pack_due(at(20, 17, 59), six, last));
        assert!(pack_due(at(20, 18, 0), six, last));
        // Nobody logged in on the evening of the 19th: made up next morning.
        assert!(pack_due(at(20, 8, 0), six, Some(at(18, 18, 1))));
        assert_eq!(
            at(19, 18, 0),
            Utc.with_ymd_and_hms(2024, 7, 19, 17, 0, 0).unwrap()
        );
    }

    #[test]
    fn files_are_written_whole_and_only_the_latest_preparations_kept() {
        let dir = tempfile::tempdir().unwrap();
        let day = NaiveDate::from_ymd_opt(2024, 7, 22).unwrap();
        let docs = [
            (PackKind::DayList, b"%PDF-a".to_vec()),
            (PackKind::SummaryPack, b"%PDF-b".to_vec()),
        ];
        std::fs::write(dir.path().join("unrelated.pdf"), b"keep me").unwrap();
        for d in 15..19 {
            write_pack_files(dir.path(), at(d, 18, 0), day, &docs, 2).unwrap();
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "lifeboat-pack-20240717T170000Z-for-2024-07-22-clinical-summaries.pdf",
                "lifeboat-pack-20240717T170000Z-for-2024-07-22-day-list.pdf",
                "lifeboat-pack-20240718T170000Z-for-2024-07-22-clinical-summaries.pdf",
                "lifeboat-pack-20240718T170000Z-for-2024-07-22-day-list.pdf",
                "unrelated.pdf",
            ]
        );
        let latest = dir
            .path()
            .join("lifeboat-pack-20240718T170000Z-for-2024-07-22-day-list.pdf");
        assert_eq!(std::fs::read(&latest).unwrap(), b"%PDF-a");
        #[cfg(unix)]
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(&latest).unwrap().permissions()
            ) & 0o777,
            0o600
        );
    }
}
