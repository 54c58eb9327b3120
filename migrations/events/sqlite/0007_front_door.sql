-- Idempotent responses are replayed only after the access checks the first
-- request passed hold again for the caller: those checks are kept with them.
ALTER TABLE idempotency_keys ADD COLUMN guards text;
-- Keys expire; the purge deletes by age.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
-- Responses of /auth/* (live tokens) are no longer stored: drop any kept before.
DELETE FROM idempotency_keys
WHERE response_body LIKE '%"access_token"%' OR response_body LIKE '%"refresh_token"%';

-- Login attempts: every failed, throttled and successful login, with the
-- username only as a keyed hash (a failed attempt has no known actor). Audit
-- evidence like access_log, and the count the login throttle reads.
-- `at` is RFC 3339 UTC with microseconds, fixed width, so text order is time order.
CREATE TABLE login_attempts
(
    id            integer PRIMARY KEY AUTOINCREMENT,
    at            text    NOT NULL,
    -- HMAC-SHA256 of the lower-cased username under a server key, hex.
    username_hash text    NOT NULL,
    -- succeeded | failed | throttled
    outcome       text    NOT NULL,
    -- wrong_password | unknown_user | inactive_user | throttled | '' (succeeded)
    reason        text    NOT NULL,
    -- The user, when the attempt succeeded; NULL otherwise.
    user_id       text,
    ip            text    NOT NULL,
    user_agent    text    NOT NULL,
    request_id    text    NOT NULL
) STRICT;
CREATE INDEX login_attempts_user_at ON login_attempts (username_hash, at);
CREATE INDEX login_attempts_at ON login_attempts (at);

CREATE TRIGGER login_attempts_no_update BEFORE UPDATE ON login_attempts
BEGIN
    SELECT RAISE(ABORT, 'login_attempts is append-only: UPDATE refused');
END;

CREATE TRIGGER login_attempts_no_delete BEFORE DELETE ON login_attempts
BEGIN
    SELECT RAISE(ABORT, 'login_attempts is append-only: DELETE refused');
END;
