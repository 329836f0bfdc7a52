//! Offline booking rules over a real cache file holding the fixture practice, "on" the
//! morning of Fri 19 Jul 2024 (09:30 in London).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::sync::{Arc, Barrier};

use chrono::{DateTime, Duration, Utc};
use lifeboat_engine::booking::{self, Actor, Attendance, BookRequest, BookingError};
use lifeboat_fixtures::{PracticeSpec, write_ndjson};
use lifeboat_store::{CacheKey, JournalEntry, SlotQuery, SlotView, Store};

const RECEPTION: Actor<'static> = Actor {
    user: "reception1",
    workstation: "desk-1",
};

fn now() -> DateTime<Utc> {
    "2024-07-19T08:30:00Z".parse().unwrap()
}

struct Practice {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    key: CacheKey,
    john: String,
    zoe: String,
    arthur: String,
}

impl Practice {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let fixtures = dir.path().join("practice");
        let manifest = write_ndjson(&PracticeSpec::default(), &fixtures).unwrap();
        let path = dir.path().join("cache.db");
        let key = CacheKey::from_bytes([9; 32]);
        let mut store = Store::open(&path, &key).unwrap();
        store.import_ndjson_dir(&fixtures, now()).unwrap();
        let id = |name: &str| {
            manifest
                .well_known_patients
                .iter()
                .find(|p| p.name == name)
                .unwrap_or_else(|| panic!("{name} is well known"))
                .id
                .clone()
        };
        Self {
            john: id("John Smith"),
            zoe: id("Zoë Brontë"),
            arthur: id("Arthur Dent"),
            path,
            key,
            _dir: dir,
        }
    }

    fn open(&self) -> Store {
        Store::open(&self.path, &self.key).unwrap()
    }
}

fn free_slots(store: &Store, from: DateTime<Utc>) -> Vec<SlotView> {
    store
        .free_slots(&SlotQuery {
            from: Some(from),
            to: Some(from + Duration::days(7)),
            ..SlotQuery::default()
        })
        .unwrap()
}

/// Everything an offline change could touch: the journal and the week's book.
fn snapshot(store: &Store) -> (Vec<JournalEntry>, String) {
    let book = store
        .day_book(now() - Duration::days(1), now() + Duration::days(7), None)
        .unwrap();
    (store.journal(&[]).unwrap(), format!("{book:?}"))
}

fn book(
    store: &mut Store,
    slot: &str,
    patient: &str,
) -> Result<booking::Confirmation, BookingError> {
    booking::book(
        store,
        RECEPTION,
        &BookRequest {
            slot_id: slot.to_string(),
            patient_id: patient.to_string(),
            description: Some("Medication review".into()),
            comment: None,
        },
        now(),
    )
}

#[test]
fn booking_a_free_slot_journals_it_and_takes_the_slot() {
    let p = Practice::new();
    let mut store = p.open();
    let slot = free_slots(&store, now()).remove(0);
    let confirmation = book(&mut store, &slot.id, &p.zoe).unwrap();
    let entry = &confirmation.journal;
    assert_eq!(entry.kind.as_str(), "book");
    assert_eq!(entry.state.as_str(), "pending");
    assert_eq!(
        entry.based_on_version.as_deref(),
        Some(slot.version_id.as_str())
    );
    assert_eq!(entry.author, "reception1");
    let appointment = confirmation.appointment.expect("the booking reads back");
    let patient = appointment.patient.expect("with its patient");
    assert_eq!(
        (patient.given.as_str(), patient.family.as_str()),
        ("Zoë", "Brontë")
    );
    assert!(patient.nhs_number.is_some() && patient.birth_date.is_some());
    assert!(!free_slots(&store, now()).iter().any(|s| s.id == slot.id));
    let line = store
        .day_book(slot.start, slot.end, None)
        .unwrap()
        .into_iter()
        .find(|l| l.slot.id == slot.id)
        .unwrap();
    assert_eq!(line.appointment.unwrap().id, entry.id);
    assert_eq!(store.unsettled_journal_count().unwrap(), 1);
}

#[test]
fn booking_refuses_a_slot_that_is_not_free_and_changes_nothing() {
    let p = Practice::new();
    let mut store = p.open();
    let busy = store
        .day_book(now() + Duration::hours(1), now() + Duration::days(7), None)
        .unwrap()
        .into_iter()
        .find(|l| l.appointment.is_some())
        .expect("a booked slot ahead");
    let before = snapshot(&store);
    let err = book(&mut store, &busy.slot.id, &p.zoe).unwrap_err();
    assert!(matches!(err, BookingError::SlotNoLongerFree), "{err}");
    assert_eq!(snapshot(&store), before);
}

#[test]
fn booking_refuses_a_slot_taken_offline_a_moment_ago() {
    let p = Practice::new();
    let mut store = p.open();
    let slot = free_slots(&store, now()).remove(0);
    book(&mut store, &slot.id, &p.zoe).unwrap();
    let before = snapshot(&store);
    let err = book(&mut store, &slot.id, &p.john).unwrap_err();
    assert!(matches!(err, BookingError::SlotNoLongerFree), "{err}");
    assert_eq!(snapshot(&store), before);
}

#[test]
fn booking_refuses_the_past() {
    let p = Practice::new();
    let mut store = p.open();
    let earlier = free_slots(&store, now() - Duration::days(7))
        .into_iter()
        .find(|s| s.start < now())
        .expect("a free slot earlier this week");
    let before = snapshot(&store);
    let err = book(&mut store, &earlier.id, &p.zoe).unwrap_err();
    assert!(matches!(err, BookingError::SlotInPast(_)), "{err}");
    assert!(err.to_string().contains("Jul 2024"), "says when: {err}");
    assert_eq!(snapshot(&store), before);
}

#[test]
fn booking_refuses_a_deceased_patient() {
    let p = Practice::new();
    let mut store = p.open();
    let slot = free_slots(&store, now()).remove(0);
    let before = snapshot(&store);
    let err = book(&mut store, &slot.id, &p.arthur).unwrap_err();
    assert!(matches!(err, BookingError::PatientDeceased), "{err}");
    assert_eq!(snapshot(&store), before);
}

#[test]
fn booking_refuses_unknown_slots_and_patients_and_over_long_text() {
    let p = Practice::new();
    let mut store = p.open();
    let slot = free_slots(&store, now()).remove(0);
    let before = snapshot(&store);
    assert!(matches!(
        book(&mut store, "no-such-slot", &p.zoe),
        Err(BookingError::SlotNotFound)
    ));
    assert!(matches!(
        book(&mut store, &slot.id, "no-such-patient"),
        Err(BookingError::PatientNotFound)
    ));
    let long = |n| Some("x".repeat(n));
    let request = |description, comment| BookRequest {
        slot_id: slot.id.clone(),
        patient_id: p.zoe.clone(),
        description,
        comment,
    };
    let err = booking::book(&mut store, RECEPTION, &request(long(101), None), now()).unwrap_err();
    assert!(
        matches!(err, BookingError::DescriptionTooLong(101)),
        "{err}"
    );
    let err = booking::book(&mut store, RECEPTION, &request(None, long(501)), now()).unwrap_err();
    assert!(matches!(err, BookingError::CommentTooLong(501)), "{err}");
    assert_eq!(snapshot(&store), before);
    // The limits themselves are allowed.
    booking::book(&mut store, RECEPTION, &request(long(100), long(500)), now()).unwrap();
}

#[test]
fn racing_writers_on_one_cache_file_book_a_slot_exactly_once() {
    let p = Practice::new();
    let slot = free_slots(&p.open(), now()).remove(0);
    let writers = 8;
    let barrier = Arc::new(Barrier::new(writers));
    let results: Vec<Result<String, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|i| {
                let barrier = barrier.clone();
                let (slot, p) = (&slot, &p);
                scope.spawn(move || {
                    let mut store = p.open();
                    let patient = if i % 2 == 0 { &p.zoe } else { &p.john };
                    barrier.wait();
                    book(&mut store, &slot.id, patient)
                        .map(|c| c.journal.id)
                        .map_err(|e| e.code().to_string())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|code| code == "slot_no_longer_free"),
        "{results:?}"
    );
    assert_eq!(p.open().journal(&[]).unwrap().len(), 1);
}

#[test]
fn cancelling_frees_the_slot_and_needs_a_reason() {
    let p = Practice::new();
    let mut store = p.open();
    let line = store
        .day_book(now() + Duration::days(1), now() + Duration::days(7), None)
        .unwrap()
        .into_iter()
        .find(|l| l.appointment.is_some())
        .unwrap();
    let appointment = line.appointment.unwrap();
    let before = snapshot(&store);
    let err = booking::cancel(&mut store, RECEPTION, &appointment.id, "  ", now()).unwrap_err();
    assert!(matches!(err, BookingError::ReasonRequired));
    assert_eq!(snapshot(&store), before);

    let c = booking::cancel(
        &mut store,
        RECEPTION,
        &appointment.id,
        "patient rang to cancel",
        now(),
    )
    .unwrap();
    assert_eq!(c.journal.based_on_version, appointment.version_id);
    assert_eq!(c.appointment.unwrap().status, "cancelled");
    // The slot can now be booked offline for someone else.
    assert!(store.slot(&line.slot.id).unwrap().unwrap().available);
    book(&mut store, &line.slot.id, &p.zoe).unwrap();
    // Cancelling twice is refused.
    let err = booking::cancel(&mut store, RECEPTION, &appointment.id, "again", now()).unwrap_err();
    assert!(matches!(err, BookingError::AppointmentNotLive(..)), "{err}");
}

#[test]
fn past_appointments_cannot_be_cancelled_or_moved() {
    let p = Practice::new();
    let mut store = p.open();
    let past = store
        .day_book(now() - Duration::days(3), now(), None)
        .unwrap()
        .into_iter()
        .find_map(|l| l.appointment.filter(|a| a.status == "booked"))
        .expect("a booked appointment earlier today");
    let free = free_slots(&store, now()).remove(0);
    let before = snapshot(&store);
    assert!(matches!(
        booking::cancel(&mut store, RECEPTION, &past.id, "too late", now()),
        Err(BookingError::AppointmentInPast(_))
    ));
    assert!(matches!(
        booking::move_appointment(&mut store, RECEPTION, &past.id, &free.id, now()),
        Err(BookingError::AppointmentInPast(_))
    ));
    assert_eq!(snapshot(&store), before);
}

#[test]
fn moving_an_appointment_takes_the_new_slot_and_frees_the_old() {
    let p = Practice::new();
    let mut store = p.open();
    let line = store
        .day_book(now() + Duration::days(1), now() + Duration::days(7), None)
        .unwrap()
        .into_iter()
        .find(|l| l.appointment.is_some())
        .unwrap();
    let old = line.appointment.unwrap();
    let to = free_slots(&store, now()).remove(0);
    let moved = booking::move_appointment(&mut store, RECEPTION, &old.id, &to.id, now()).unwrap();
    let new = moved.appointment.unwrap();
    assert_eq!(new.slot_id.as_deref(), Some(to.id.as_str()));
    assert_eq!(
        new.patient.as_ref().map(|p| &p.id),
        old.patient.as_ref().map(|p| &p.id)
    );
    assert_eq!(
        store.appointment(&old.id).unwrap().unwrap().status,
        "cancelled"
    );
    assert!(store.slot(&line.slot.id).unwrap().unwrap().available);
    assert!(!store.slot(&to.id).unwrap().unwrap().available);

    // An offline booking moves too, keeping its identity.
    let again = free_slots(&store, now()).remove(0);
    let twice =
        booking::move_appointment(&mut store, RECEPTION, &new.id, &again.id, now()).unwrap();
    assert_eq!(twice.appointment.unwrap().id, new.id);
    assert!(store.slot(&to.id).unwrap().unwrap().available);
}

#[test]
fn arrival_and_did_not_attend_are_marked_on_the_day_only() {
    let p = Practice::new();
    let mut store = p.open();
    let today = store
        .day_book(now() - Duration::hours(2), now() + Duration::hours(8), None)
        .unwrap()
        .into_iter()
        .filter_map(|l| l.appointment)
        .filter(|a| a.status == "booked")
        .collect::<Vec<_>>();
    let earlier = today
        .iter()
        .find(|a| a.start < now())
        .expect("an earlier appointment today");
    let later = today
        .iter()
        .find(|a| a.start > now())
        .expect("a later appointment today");
    let c = booking::mark_attendance(&mut store, RECEPTION, &later.id, Attendance::Arrived, now())
        .unwrap();
    assert_eq!(c.appointment.unwrap().status, "arrived");
    let c = booking::mark_attendance(
        &mut store,
        RECEPTION,
        &earlier.id,
        Attendance::DidNotAttend,
        now(),
    )
    .unwrap();
    assert_eq!(c.appointment.unwrap().status, "noshow");

    let tomorrow = store
        .day_book(now() + Duration::days(3), now() + Duration::days(4), None)
        .unwrap()
        .into_iter()
        .find_map(|l| l.appointment)
        .expect("an appointment on Monday");
    let before = snapshot(&store);
    assert!(matches!(
        booking::mark_attendance(
            &mut store,
            RECEPTION,
            &tomorrow.id,
            Attendance::Arrived,
            now()
        ),
        Err(BookingError::NotToday)
    ));
    assert_eq!(snapshot(&store), before);
}

#[test]
fn an_offline_note_is_journaled_and_shown_with_the_patient() {
    let p = Practice::new();
    let mut store = p.open();
    let gp = Actor {
        user: "drhart",
        workstation: "room-2",
    };
    assert!(matches!(
        booking::write_note(&mut store, gp, &p.john, None, "   ", now()),
        Err(BookingError::NoteEmpty)
    ));
    let note = booking::write_note(
        &mut store,
        gp,
        &p.john,
        None,
        "BP 150/95, repeat in 2 weeks",
        now(),
    )
    .unwrap();
    let notes = store.notes_for_patient(&p.john).unwrap();
    assert_eq!(notes, vec![note.clone()]);
    assert_eq!(store.unfiled_notes().unwrap().len(), 1);
    let entry = store.journal_entry(&note.journal_id).unwrap().unwrap();
    assert_eq!(entry.kind.as_str(), "note");
    assert_eq!(entry.author, "drhart");
}
