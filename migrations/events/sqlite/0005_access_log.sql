-- Reads of patient data: who read which patient, through which endpoint, when
-- and from where. Audit evidence kept next to the events (not a read model: it
-- cannot be rebuilt from them), written before the read is answered.
-- `at` is RFC 3339 UTC with microseconds, fixed width, so text order is time order.
CREATE TABLE access_log
(
    id         integer PRIMARY KEY AUTOINCREMENT,
    at         text    NOT NULL,
    actor_id   text    NOT NULL,
    actor_role text    NOT NULL,
    patient_id text    NOT NULL,
    -- Method and route pattern, e.g. `GET /api/v1/patients/{id}`.
    endpoint   text    NOT NULL,
    -- The path actually requested.
    path       text    NOT NULL,
    ip         text    NOT NULL,
    user_agent text    NOT NULL,
    request_id text    NOT NULL
) STRICT;
CREATE INDEX access_log_patient_at ON access_log (patient_id, at);
CREATE INDEX access_log_actor_at ON access_log (actor_id, at);
CREATE INDEX access_log_at ON access_log (at);

-- Append-only: rows are never changed or removed, not even by the server.
CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log
BEGIN
    SELECT RAISE(ABORT, 'access_log is append-only: UPDATE refused');
END;

CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
BEGIN
    SELECT RAISE(ABORT, 'access_log is append-only: DELETE refused');
END;
