-- Lifeboat cache, schema 2: staff accounts, and indexes for exporting the audit log.
-- Accounts live inside the encrypted cache so that a role cannot be changed without the
-- data key. Passwords are not here: each account's password wraps the data key in the
-- key-slot file beside the cache (see docs/security.md).

CREATE TABLE account (
    id           INTEGER PRIMARY KEY,
    -- lower case letters, digits, '.', '-', '_'; the name staff type at the login screen
    username     TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('receptionist', 'clinician', 'manager')),
    -- a disabled account is kept, not deleted: the audit log names its actions
    disabled     INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at   TEXT NOT NULL,
    changed_at   TEXT NOT NULL
);

-- A manager exports the audit for one patient (subject) or for a time range.
CREATE INDEX audit_by_subject ON audit (subject, seq);
CREATE INDEX audit_by_at ON audit (at);
