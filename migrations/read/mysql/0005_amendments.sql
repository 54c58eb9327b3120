-- Health record amendments ("corrections, not edits"): the trail of each
-- record's corrections, and on the record how many there were and the last
-- admin unlock.

ALTER TABLE health_records
    ADD COLUMN amendment_count BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN amended_at      VARCHAR(40),
    ADD COLUMN unlocked_at     VARCHAR(40);

CREATE TABLE health_record_amendments
(
    record_id   CHAR(36)    NOT NULL,
    seq         BIGINT      NOT NULL,
    reason_code VARCHAR(64) NOT NULL,
    changes     TEXT        NOT NULL,
    amended_by  CHAR(36)    NOT NULL,
    at          VARCHAR(40) NOT NULL,
    PRIMARY KEY (record_id, seq)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
