-- Scheduled jobs: one row per job and period that ran (the JobRan events),
-- and uploads discarded by the clean-up (never attached to a record).
CREATE TABLE job_runs
(
    id          TEXT NOT NULL PRIMARY KEY,
    job         TEXT NOT NULL,
    period      TEXT NOT NULL,
    ran_at      TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    summary     TEXT NOT NULL
) STRICT;
CREATE INDEX job_runs_job ON job_runs (job, recorded_at);

ALTER TABLE files ADD COLUMN discarded_at TEXT;
CREATE INDEX files_created ON files (created_at);
