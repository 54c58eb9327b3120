-- Read models (SQLite twin of ../mysql/0001_core.sql) for the core slice. Instants are RFC 3339 UTC strings with a fixed
-- width (so they sort as text), dates are YYYY-MM-DD, money is a decimal string.
-- `version` is the aggregate's sequence after the last applied event (the ETag).

CREATE TABLE projection_checkpoints
(
    name     TEXT NOT NULL PRIMARY KEY,
    position INTEGER NOT NULL
) STRICT;

CREATE TABLE users
(
    id            TEXT NOT NULL PRIMARY KEY,
    username      TEXT NOT NULL,
    phone         TEXT NOT NULL,
    role          TEXT NOT NULL,
    name          TEXT NOT NULL,
    avatar        TEXT ,
    status        TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    last_login_at TEXT ,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    version       INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX users_username ON users (username);
CREATE INDEX users_role ON users (role, created_at);

CREATE TABLE recorders
(
    user_id            TEXT NOT NULL PRIMARY KEY,
    employee_id        TEXT NOT NULL,
    qualification_cert TEXT ,
    health_cert        TEXT ,
    cert_expiry_date   TEXT ,
    work_area          TEXT
) STRICT;

CREATE TABLE doctors
(
    user_id          TEXT NOT NULL PRIMARY KEY,
    license_number   TEXT NOT NULL,
    specialty        TEXT NOT NULL,
    hospital         TEXT ,
    department       TEXT ,
    title            TEXT ,
    consultation_fee TEXT
) STRICT;

CREATE TABLE sessions
(
    id         TEXT NOT NULL PRIMARY KEY,
    user_id    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE families
(
    id                TEXT NOT NULL PRIMARY KEY,
    family_name       TEXT NOT NULL,
    primary_address   TEXT NOT NULL,
    secondary_address TEXT ,
    contact_phone     TEXT NOT NULL,
    emergency_contact TEXT ,
    emergency_phone   TEXT ,
    home_lat          REAL ,
    home_lng          REAL ,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    version           INTEGER NOT NULL
) STRICT;
CREATE INDEX families_created ON families (created_at);
CREATE INDEX families_name ON families (family_name);

CREATE TABLE patients
(
    id                   TEXT NOT NULL PRIMARY KEY,
    family_id            TEXT NOT NULL,
    name                 TEXT NOT NULL,
    gender               TEXT NOT NULL,
    birth_date           TEXT NOT NULL,
    id_card              TEXT ,
    phone                TEXT ,
    relationship_to_head TEXT NOT NULL,
    medical_history      TEXT NOT NULL,
    allergies            TEXT ,
    current_medications  TEXT NOT NULL,
    service_preferences  TEXT ,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    version              INTEGER NOT NULL
) STRICT;
CREATE INDEX patients_family ON patients (family_id, created_at);
CREATE INDEX patients_name ON patients (name);

CREATE TABLE service_packages
(
    id                TEXT NOT NULL PRIMARY KEY,
    name              TEXT NOT NULL,
    description       TEXT ,
    price             TEXT NOT NULL,
    duration_days     INTEGER NOT NULL,
    service_frequency INTEGER NOT NULL,
    service_items     TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    version           INTEGER NOT NULL
) STRICT;
CREATE INDEX packages_created ON service_packages (created_at);

CREATE TABLE subscriptions
(
    id             TEXT NOT NULL PRIMARY KEY,
    patient_id     TEXT NOT NULL,
    package_id     TEXT NOT NULL,
    recorder_id    TEXT NOT NULL,
    start_date     TEXT NOT NULL,
    end_date       TEXT NOT NULL,
    status         TEXT NOT NULL,
    payment_status TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    version        INTEGER NOT NULL
) STRICT;
CREATE INDEX subscriptions_patient ON subscriptions (patient_id, status, end_date);
CREATE INDEX subscriptions_recorder ON subscriptions (recorder_id, status, end_date);
