-- Lifeboat cache, schema 3: what staff do offline, kept apart from the upstream's data.
--
-- Offline changes never edit the cached upstream rows: a sync (e.g. while Recovering) may
-- rewrite those at any time. They live in these overlay tables, written in the same
-- transaction as the journal row that records them, and are read together with the cache.

-- Appointments booked offline, one per journal 'book' entry.
CREATE TABLE offline_booking (
    journal_id      TEXT PRIMARY KEY REFERENCES journal (id),
    slot_id         TEXT NOT NULL,
    slot_version    TEXT NOT NULL,
    patient_id      TEXT NOT NULL,
    practitioner_id TEXT,
    location_id     TEXT,
    start           TEXT NOT NULL,
    "end"           TEXT NOT NULL,
    description     TEXT,
    comment         TEXT,
    status          TEXT NOT NULL DEFAULT 'booked'
        CHECK (status IN ('booked', 'arrived', 'noshow', 'cancelled')),
    cancel_reason   TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    -- Set by reconciliation: the upstream Appointment this booking became (or why not).
    reconciled_as   TEXT
);
-- The last line of defence against double booking: one live offline booking per slot,
-- enforced by the database whatever the code above it does.
CREATE UNIQUE INDEX offline_booking_one_per_slot ON offline_booking (slot_id)
    WHERE status != 'cancelled' AND reconciled_as IS NULL;
CREATE INDEX offline_booking_by_start ON offline_booking (start);
CREATE INDEX offline_booking_by_patient ON offline_booking (patient_id);

-- Offline changes to appointments the upstream already has (cancelled, arrived, did not attend).
CREATE TABLE offline_appointment_change (
    appointment_id TEXT PRIMARY KEY,
    status         TEXT NOT NULL CHECK (status IN ('arrived', 'noshow', 'cancelled')),
    reason         TEXT,
    journal_id     TEXT NOT NULL REFERENCES journal (id),
    based_on       TEXT NOT NULL,
    changed_at     TEXT NOT NULL
);

-- Clinical notes written offline: shown in the patient's summary until filed upstream.
CREATE TABLE offline_note (
    journal_id     TEXT PRIMARY KEY REFERENCES journal (id),
    patient_id     TEXT NOT NULL,
    appointment_id TEXT,
    author         TEXT NOT NULL,
    text           TEXT NOT NULL,
    written_at     TEXT NOT NULL
);
CREATE INDEX offline_note_by_patient ON offline_note (patient_id, written_at);

-- What a person must still do by hand after reconciliation: file offline notes in the
-- clinical record, back-enter changes that became past (arrivals, did-not-attends, bookings
-- whose time has gone), and conflicts marked for manual handling. Ticked off with who and when.
CREATE TABLE worklist (
    id         INTEGER PRIMARY KEY,
    journal_id TEXT NOT NULL UNIQUE REFERENCES journal (id),
    kind       TEXT NOT NULL CHECK (kind IN ('note', 'past_change', 'manual')),
    patient_id TEXT,
    summary    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    done_by    TEXT,
    done_at    TEXT
);

-- Mode changes, for the mode banner and the audit trail.
CREATE TABLE mode_change (
    seq       INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    from_mode TEXT NOT NULL,
    to_mode   TEXT NOT NULL,
    cause     TEXT NOT NULL,
    actor     TEXT NOT NULL
);
