-- Alerts of abnormal health records: triggered → acknowledged → resolved, and
-- escalated while nobody acknowledges them. `waiting_since` is when the wait
-- for an acknowledgement began (the trigger, or the last escalation): the
-- escalation loop asks for triggered alerts whose wait is over.
CREATE TABLE alerts
(
    id               TEXT    NOT NULL PRIMARY KEY,
    patient_id       TEXT    NOT NULL,
    health_record_id TEXT    NOT NULL,
    order_request_id TEXT,
    severity         TEXT    NOT NULL,
    reasons          TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    doctor_id        TEXT    NOT NULL,
    escalation_level INTEGER NOT NULL,
    triggered_at     TEXT    NOT NULL,
    waiting_since    TEXT    NOT NULL,
    acknowledged_at  TEXT,
    acknowledged_by  TEXT,
    resolved_at      TEXT,
    resolved_by      TEXT,
    outcome          TEXT,
    note             TEXT,
    updated_at       TEXT    NOT NULL,
    version          INTEGER NOT NULL
) STRICT;
CREATE INDEX alerts_doctor ON alerts (doctor_id, status, triggered_at);
CREATE INDEX alerts_status ON alerts (status, severity, triggered_at);
CREATE INDEX alerts_waiting ON alerts (status, waiting_since);
CREATE INDEX alerts_patient ON alerts (patient_id);

-- The alert an order request was raised for (none for a recorder's own request).
ALTER TABLE order_requests ADD COLUMN alert_id TEXT;
