-- Machine text compared as bytes. After the ids (0019), MariaDB still ran the
-- Unicode collation algorithm while a rebuild wrote the search grams (about 5
-- of the 16 % of its CPU that went to string routines; a profile of `carelog
-- rebuild`, `docs/performance.md`, "Times, dates and codes compared as
-- bytes"): every key of `family_grams` holds a creation time, and the list
-- indexes hold times, dates and status codes, all compared under
-- utf8mb4_unicode_ci on every index descent and sorted with its weights when
-- an index is built.
--
-- These columns hold only what the server writes: RFC 3339 instants of fixed
-- width, `YYYY-MM-DD` dates, `HH:MM` times, lower-case codes (statuses,
-- severities, roles, job names), hex digests, and the followers' checkpoint
-- names (read on every batch). Their byte order is the order the Unicode
-- collation gave them (fixed-width digits and punctuation) and the order
-- SQLite already uses; a code that differs from a stored one only in letter
-- case no longer matches, as on SQLite. Text that people type (names,
-- addresses, user names) keeps its collation.
ALTER TABLE alerts
    MODIFY severity VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY status VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY triggered_at VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY waiting_since VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE appointments
    MODIFY check_in_at VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    MODIFY scheduled_date VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY scheduled_time VARCHAR(5) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE evv_exceptions
    MODIFY code VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY raised_at VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE families
    MODIFY created_at VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE family_grams
    MODIFY created_at VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE files
    MODIFY created_at VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE health_records
    MODIFY created_at VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY visit_date VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY visit_time VARCHAR(5) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE hospital_appointments
    MODIFY appointment_date VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY appointment_time VARCHAR(5) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE hospital_slots
    MODIFY date VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY time VARCHAR(5) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE job_runs
    MODIFY id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY job VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY recorded_at VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE medical_orders
    MODIFY created_at VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE notifications
    MODIFY created_at VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY read_at VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;
ALTER TABLE order_requests
    MODIFY created_at VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY status VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE patients
    MODIFY created_at VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE projection_checkpoints
    MODIFY name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE reactor_checkpoints
    MODIFY name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE recorder_families
    MODIFY end_date VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY family_created_at VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY start_date VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY status VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE service_packages
    MODIFY created_at VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE subscriptions
    MODIFY end_date VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY status VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE users
    MODIFY created_at VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY role VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE wechat_bindings
    MODIFY openid_hash CHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE wechat_pushes
    MODIFY retry_at VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    MODIFY status VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
