-- Partner hospitals, their departments, doctors and slots, and bookings.

CREATE TABLE hospitals
(
    id         TEXT NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL,
    address    TEXT NOT NULL,
    phone      TEXT,
    level      TEXT,
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version    INTEGER NOT NULL
) STRICT;
CREATE INDEX hospitals_name ON hospitals (name);

CREATE TABLE hospital_departments
(
    id          TEXT NOT NULL PRIMARY KEY,
    hospital_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT,
    active      INTEGER NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX hospital_departments_hospital ON hospital_departments (hospital_id, name);

CREATE TABLE hospital_doctors
(
    id               TEXT NOT NULL PRIMARY KEY,
    hospital_id      TEXT NOT NULL,
    department_id    TEXT NOT NULL,
    name             TEXT NOT NULL,
    title            TEXT,
    specialty        TEXT,
    consultation_fee TEXT,
    active           INTEGER NOT NULL,
    created_at       TEXT NOT NULL
) STRICT;
CREATE INDEX hospital_doctors_department ON hospital_doctors (hospital_id, department_id);

CREATE TABLE hospital_slots
(
    id            TEXT NOT NULL PRIMARY KEY,
    hospital_id   TEXT NOT NULL,
    department_id TEXT NOT NULL,
    doctor_id     TEXT,
    date          TEXT NOT NULL,
    time          TEXT NOT NULL,
    capacity      INTEGER NOT NULL,
    booked        INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    version       INTEGER NOT NULL
) STRICT;
CREATE INDEX hospital_slots_lookup ON hospital_slots (hospital_id, department_id, date, time);

CREATE TABLE hospital_appointments
(
    id                 TEXT NOT NULL PRIMARY KEY,
    slot_id            TEXT NOT NULL,
    patient_id         TEXT NOT NULL,
    hospital_id        TEXT NOT NULL,
    department_id      TEXT NOT NULL,
    doctor_id          TEXT,
    appointment_date   TEXT NOT NULL,
    appointment_time   TEXT NOT NULL,
    notes              TEXT,
    recorder_id        TEXT NOT NULL,
    status             TEXT NOT NULL,
    appointment_number TEXT,
    fee                TEXT,
    result_notes       TEXT,
    cancel_reason      TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    version            INTEGER NOT NULL
) STRICT;
CREATE INDEX hospital_appointments_patient ON hospital_appointments (patient_id, appointment_date);
CREATE INDEX hospital_appointments_recorder ON hospital_appointments (recorder_id, appointment_date, appointment_time);
CREATE INDEX hospital_appointments_slot ON hospital_appointments (slot_id);
