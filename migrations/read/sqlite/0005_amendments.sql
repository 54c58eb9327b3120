-- Health record amendments ("corrections, not edits"): the trail of each
-- record's corrections, and on the record how many there were and the last
-- admin unlock.

ALTER TABLE health_records ADD COLUMN amendment_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE health_records ADD COLUMN amended_at TEXT;
ALTER TABLE health_records ADD COLUMN unlocked_at TEXT;

CREATE TABLE health_record_amendments
(
    record_id   TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    reason_code TEXT NOT NULL,
    changes     TEXT NOT NULL,
    amended_by  TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (record_id, seq)
) STRICT;
