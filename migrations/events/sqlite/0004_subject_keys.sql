-- Crypto-shredding (see src/privacy/mod.rs): one data key per data subject
-- (patient or family), wrapped (AES-256-GCM) under the master key. Erasure
-- sets `wrapped_key` to NULL and keeps the row as a tombstone.
CREATE TABLE subject_keys
(
    subject_id  TEXT PRIMARY KEY,
    wrapped_key TEXT,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    erased_at   TEXT
);

CREATE TABLE master_key_check
(
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    check_value TEXT NOT NULL
);
