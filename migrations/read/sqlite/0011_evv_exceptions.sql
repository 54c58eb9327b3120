-- Visit verification exceptions: one row per visit and code, with where each
-- stands (open, acknowledged with a reason code, resolved).
CREATE TABLE evv_exceptions
(
    id              TEXT NOT NULL PRIMARY KEY,
    code            TEXT NOT NULL,
    visit_id        TEXT NOT NULL,
    patient_id      TEXT NOT NULL,
    recorder_id     TEXT NOT NULL,
    status          TEXT NOT NULL,
    raised_at       TEXT NOT NULL,
    details         TEXT NOT NULL,
    reason_code     TEXT,
    acknowledged_by TEXT,
    acknowledged_at TEXT,
    resolution      TEXT,
    resolved_by     TEXT,
    resolved_at     TEXT,
    version         INTEGER NOT NULL
) STRICT;
CREATE INDEX evv_exceptions_raised ON evv_exceptions (raised_at, id);
CREATE INDEX evv_exceptions_recorder ON evv_exceptions (recorder_id, raised_at);
CREATE INDEX evv_exceptions_visit ON evv_exceptions (visit_id, code);
