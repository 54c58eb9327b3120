-- Field work: visits, health records, files, order requests, medical orders, notifications.

CREATE TABLE appointments
(
    id               TEXT NOT NULL PRIMARY KEY,
    patient_id       TEXT NOT NULL,
    recorder_id      TEXT NOT NULL,
    subscription_id  TEXT NOT NULL,
    scheduled_date   TEXT NOT NULL,
    scheduled_time   TEXT NOT NULL,
    appointment_type TEXT NOT NULL,
    status           TEXT NOT NULL,
    notes            TEXT,
    cancel_reason    TEXT,
    health_record_id TEXT,
    reschedule_count INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    version          INTEGER NOT NULL
) STRICT;
CREATE INDEX appointments_recorder ON appointments (recorder_id, scheduled_date, scheduled_time);
CREATE INDEX appointments_patient ON appointments (patient_id, scheduled_date);

CREATE TABLE appointment_history
(
    appointment_id TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    event          TEXT NOT NULL,
    from_date      TEXT,
    from_time      TEXT,
    to_date        TEXT,
    to_time        TEXT,
    reason         TEXT,
    actor_id       TEXT,
    at             TEXT NOT NULL,
    PRIMARY KEY (appointment_id, seq)
) STRICT;

CREATE TABLE health_records
(
    id                   TEXT NOT NULL PRIMARY KEY,
    patient_id           TEXT NOT NULL,
    recorder_id          TEXT NOT NULL,
    appointment_id       TEXT,
    visit_date           TEXT NOT NULL,
    visit_time           TEXT NOT NULL,
    location_lat         REAL,
    location_lng         REAL,
    location_address     TEXT,
    distance_from_home_m REAL,
    away_from_home       INTEGER NOT NULL,
    blood_pressure       TEXT,
    heart_rate           INTEGER,
    temperature          REAL,
    blood_oxygen         REAL,
    blood_glucose        REAL,
    weight               REAL,
    symptoms             TEXT,
    notes                TEXT,
    alerts               TEXT NOT NULL,
    abnormal             INTEGER NOT NULL,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    version              INTEGER NOT NULL
) STRICT;
CREATE INDEX health_records_patient ON health_records (patient_id, visit_date, visit_time, created_at);

CREATE TABLE health_record_files
(
    record_id TEXT NOT NULL,
    file_id   TEXT NOT NULL,
    role      TEXT NOT NULL,
    ord       INTEGER NOT NULL,
    PRIMARY KEY (record_id, file_id)
) STRICT;
CREATE INDEX health_record_files_file ON health_record_files (file_id);

CREATE TABLE files
(
    id            TEXT NOT NULL PRIMARY KEY,
    kind          TEXT NOT NULL,
    original_name TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size          INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    storage_key   TEXT NOT NULL,
    thumbnail_key TEXT,
    uploaded_by   TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    version       INTEGER NOT NULL
) STRICT;

CREATE TABLE order_requests
(
    id               TEXT NOT NULL PRIMARY KEY,
    health_record_id TEXT NOT NULL,
    patient_id       TEXT NOT NULL,
    doctor_id        TEXT NOT NULL,
    requested_by     TEXT,
    recorder_id      TEXT NOT NULL,
    reason           TEXT,
    alerts           TEXT NOT NULL,
    abnormal         INTEGER NOT NULL,
    urgent           INTEGER NOT NULL,
    status           TEXT NOT NULL,
    order_id         TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    version          INTEGER NOT NULL
) STRICT;
CREATE INDEX order_requests_doctor ON order_requests (doctor_id, status, created_at);
CREATE INDEX order_requests_patient ON order_requests (patient_id, created_at);

CREATE TABLE medical_orders
(
    id               TEXT NOT NULL PRIMARY KEY,
    patient_id       TEXT NOT NULL,
    doctor_id        TEXT NOT NULL,
    recorder_id      TEXT,
    request_id       TEXT,
    health_record_id TEXT,
    order_type       TEXT NOT NULL,
    content          TEXT NOT NULL,
    dosage           TEXT,
    frequency        TEXT,
    duration         TEXT,
    notes            TEXT,
    status           TEXT NOT NULL,
    cancel_reason    TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    version          INTEGER NOT NULL
) STRICT;
CREATE INDEX medical_orders_patient ON medical_orders (patient_id, created_at);
CREATE INDEX medical_orders_doctor ON medical_orders (doctor_id, created_at);

CREATE TABLE notifications
(
    id         TEXT NOT NULL PRIMARY KEY,
    user_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    ref_type   TEXT NOT NULL,
    ref_id     TEXT NOT NULL,
    patient_id TEXT,
    urgent     INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    read_at    TEXT
) STRICT;
CREATE INDEX notifications_user ON notifications (user_id, read_at, created_at);
