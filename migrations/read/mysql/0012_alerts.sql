-- Alerts of abnormal health records: triggered → acknowledged → resolved, and
-- escalated while nobody acknowledges them. `waiting_since` is when the wait
-- for an acknowledgement began (the trigger, or the last escalation): the
-- escalation loop asks for triggered alerts whose wait is over.
CREATE TABLE alerts
(
    id               CHAR(36)    NOT NULL PRIMARY KEY,
    patient_id       CHAR(36)    NOT NULL,
    health_record_id CHAR(36)    NOT NULL,
    order_request_id CHAR(36),
    severity         VARCHAR(16) NOT NULL,
    reasons          TEXT        NOT NULL,
    status           VARCHAR(16) NOT NULL,
    doctor_id        CHAR(36)    NOT NULL,
    escalation_level BIGINT      NOT NULL,
    triggered_at     VARCHAR(40) NOT NULL,
    waiting_since    VARCHAR(40) NOT NULL,
    acknowledged_at  VARCHAR(40),
    acknowledged_by  CHAR(36),
    resolved_at      VARCHAR(40),
    resolved_by      CHAR(36),
    outcome          VARCHAR(32),
    note             TEXT,
    updated_at       VARCHAR(40) NOT NULL,
    version          BIGINT      NOT NULL,
    KEY alerts_doctor (doctor_id, status, triggered_at),
    KEY alerts_status (status, severity, triggered_at),
    KEY alerts_waiting (status, waiting_since),
    KEY alerts_patient (patient_id)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The alert an order request was raised for (none for a recorder's own request).
ALTER TABLE order_requests ADD COLUMN alert_id CHAR(36);
