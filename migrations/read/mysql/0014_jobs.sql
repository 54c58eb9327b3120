-- Scheduled jobs: one row per job and period that ran (the JobRan events),
-- and uploads discarded by the clean-up (never attached to a record).
CREATE TABLE job_runs
(
    id          VARCHAR(64) NOT NULL PRIMARY KEY,
    job         VARCHAR(32) NOT NULL,
    period      VARCHAR(16) NOT NULL,
    ran_at      VARCHAR(40) NOT NULL,
    recorded_at VARCHAR(40) NOT NULL,
    summary     TEXT        NOT NULL,
    KEY job_runs_job (job, recorded_at)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

ALTER TABLE files ADD COLUMN discarded_at VARCHAR(40);
CREATE INDEX files_created ON files (created_at);
