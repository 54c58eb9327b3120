-- Crypto-shredding (see src/privacy/mod.rs): one data key per data subject
-- (patient or family), wrapped (AES-256-GCM) under the master key. Erasure
-- sets `wrapped_key` to NULL and keeps the row as a tombstone, so readers know
-- the subject was erased rather than never had a key.
CREATE TABLE subject_keys
(
    subject_id  text PRIMARY KEY,
    wrapped_key text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz
);

-- A check value of the master key: a server started with another master key
-- refuses to run instead of failing to decrypt (or writing with a second key).
CREATE TABLE master_key_check
(
    id          integer PRIMARY KEY CHECK (id = 1),
    check_value text NOT NULL
);
