-- Lifeboat cache, schema 1.
-- Every cached upstream resource keeps its upstream id, meta.versionId, meta.lastUpdated and
-- the raw FHIR JSON exactly as received, beside the columns Lifeboat indexes.
-- Times are UTC text, '%Y-%m-%dT%H:%M:%S.mmmZ', so text order is time order.

CREATE TABLE practitioner (
    id           TEXT PRIMARY KEY,
    version_id   TEXT NOT NULL,
    last_updated TEXT NOT NULL,
    synced_at    TEXT NOT NULL,
    raw          TEXT NOT NULL,
    name         TEXT NOT NULL
);

CREATE TABLE location (
    id           TEXT PRIMARY KEY,
    version_id   TEXT NOT NULL,
    last_updated TEXT NOT NULL,
    synced_at    TEXT NOT NULL,
    raw          TEXT NOT NULL,
    name         TEXT NOT NULL
);

-- pk is an explicit INTEGER PRIMARY KEY so the full-text index's rowids survive VACUUM.
CREATE TABLE patient (
    pk           INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    version_id   TEXT NOT NULL,
    last_updated TEXT NOT NULL,
    synced_at    TEXT NOT NULL,
    raw          TEXT NOT NULL,
    nhs_number   TEXT,
    title        TEXT,
    family       TEXT NOT NULL,
    given        TEXT NOT NULL,
    -- family and given folded to lower case without accents, for ranking exact matches first
    family_norm  TEXT NOT NULL,
    given_norm   TEXT NOT NULL,
    birth_date   TEXT,
    sex          TEXT,
    address_line TEXT,
    postcode     TEXT,
    phone        TEXT,
    gp_id        TEXT,
    deceased     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX patient_nhs_number ON patient (nhs_number);
CREATE INDEX patient_birth_date ON patient (birth_date);

-- Names indexed for prefix search, case- and accent-insensitive.
CREATE VIRTUAL TABLE patient_name_fts USING fts5 (
    family, given,
    content = 'patient', content_rowid = 'pk',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '1 2 3'
);
CREATE TRIGGER patient_fts_insert AFTER INSERT ON patient BEGIN
    INSERT INTO patient_name_fts (rowid, family, given) VALUES (new.pk, new.family, new.given);
END;
CREATE TRIGGER patient_fts_delete AFTER DELETE ON patient BEGIN
    INSERT INTO patient_name_fts (patient_name_fts, rowid, family, given)
        VALUES ('delete', old.pk, old.family, old.given);
END;
CREATE TRIGGER patient_fts_update AFTER UPDATE OF family, given ON patient BEGIN
    INSERT INTO patient_name_fts (patient_name_fts, rowid, family, given)
        VALUES ('delete', old.pk, old.family, old.given);
    INSERT INTO patient_name_fts (rowid, family, given) VALUES (new.pk, new.family, new.given);
END;

CREATE TABLE schedule (
    id              TEXT PRIMARY KEY,
    version_id      TEXT NOT NULL,
    last_updated    TEXT NOT NULL,
    synced_at       TEXT NOT NULL,
    raw             TEXT NOT NULL,
    practitioner_id TEXT,
    location_id     TEXT,
    service_type    TEXT
);

CREATE TABLE slot (
    id           TEXT PRIMARY KEY,
    version_id   TEXT NOT NULL,
    last_updated TEXT NOT NULL,
    synced_at    TEXT NOT NULL,
    raw          TEXT NOT NULL,
    schedule_id  TEXT NOT NULL,
    start        TEXT NOT NULL,
    "end"        TEXT NOT NULL,
    status       TEXT NOT NULL,
    service_type TEXT
);
CREATE INDEX slot_by_schedule ON slot (schedule_id, start);
CREATE INDEX slot_by_status ON slot (status, start);

CREATE TABLE appointment (
    id              TEXT PRIMARY KEY,
    version_id      TEXT NOT NULL,
    last_updated    TEXT NOT NULL,
    synced_at       TEXT NOT NULL,
    raw             TEXT NOT NULL,
    status          TEXT NOT NULL,
    slot_id         TEXT,
    patient_id      TEXT,
    practitioner_id TEXT,
    location_id     TEXT,
    start           TEXT,
    "end"           TEXT,
    description     TEXT,
    comment         TEXT
);
CREATE INDEX appointment_by_start ON appointment (start);
CREATE INDEX appointment_by_patient ON appointment (patient_id, start);
CREATE INDEX appointment_by_slot ON appointment (slot_id);

-- Alerts, allergies, medications, problems, results, immunisations and encounters.
CREATE TABLE clinical_entry (
    kind         TEXT NOT NULL,
    id           TEXT NOT NULL,
    version_id   TEXT NOT NULL,
    last_updated TEXT NOT NULL,
    synced_at    TEXT NOT NULL,
    raw          TEXT NOT NULL,
    patient_id   TEXT NOT NULL,
    status       TEXT,
    text         TEXT NOT NULL,
    detail       TEXT,
    date         TEXT,
    PRIMARY KEY (kind, id)
);
CREATE INDEX clinical_entry_by_patient ON clinical_entry (patient_id, kind, date);

-- Sync progress per resource type: where a resumed sync picks up, and the upstream
-- lastUpdated high-water mark for incremental sync.
CREATE TABLE sync_state (
    resource_type TEXT PRIMARY KEY,
    phase         TEXT NOT NULL,
    next_url      TEXT,
    high_water    TEXT,
    done          INTEGER NOT NULL DEFAULT 0,
    total         INTEGER,
    started_at    TEXT,
    completed_at  TEXT
);

-- Resources the upstream sent that Lifeboat refused (malformed or failing validation).
CREATE TABLE sync_rejection (
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    reason        TEXT NOT NULL,
    seen_at       TEXT NOT NULL,
    PRIMARY KEY (resource_type, resource_id)
);

-- Offline changes, in the order they were made; replayed upstream exactly once.
CREATE TABLE journal (
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    author           TEXT NOT NULL,
    workstation      TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    target_type      TEXT,
    target_id        TEXT,
    based_on_version TEXT,
    state            TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'applied', 'conflict', 'failed', 'superseded', 'discarded')),
    outcome          TEXT,
    updated_at       TEXT
);
CREATE INDEX journal_by_state ON journal (state, seq);

-- Append-only, hash-chained record of who did what to which record, when and where.
CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    workstation TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT,
    detail      TEXT,
    prev_hash   BLOB NOT NULL,
    hash        BLOB NOT NULL
);

-- Practice-wide settings and facts (mode, workstation name, last full sync).
CREATE TABLE setting (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
