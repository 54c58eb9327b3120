-- Visit verification exceptions: one row per visit and code, with where each
-- stands (open, acknowledged with a reason code, resolved).
CREATE TABLE evv_exceptions
(
    id              CHAR(36)     NOT NULL PRIMARY KEY,
    code            VARCHAR(32)  NOT NULL,
    visit_id        CHAR(36)     NOT NULL,
    patient_id      CHAR(36)     NOT NULL,
    recorder_id     CHAR(36)     NOT NULL,
    status          VARCHAR(16)  NOT NULL,
    raised_at       VARCHAR(40)  NOT NULL,
    details         TEXT         NOT NULL,
    reason_code     VARCHAR(64),
    acknowledged_by CHAR(36),
    acknowledged_at VARCHAR(40),
    resolution      TEXT,
    resolved_by     CHAR(36),
    resolved_at     VARCHAR(40),
    version         BIGINT       NOT NULL,
    KEY evv_exceptions_raised (raised_at, id),
    KEY evv_exceptions_recorder (recorder_id, raised_at),
    KEY evv_exceptions_visit (visit_id, code)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
