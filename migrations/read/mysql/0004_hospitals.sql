-- Partner hospitals, their departments, doctors and slots, and bookings.

CREATE TABLE hospitals
(
    id         CHAR(36)     NOT NULL PRIMARY KEY,
    name       VARCHAR(200) NOT NULL,
    address    VARCHAR(255) NOT NULL,
    phone      VARCHAR(32),
    level      VARCHAR(32),
    status     VARCHAR(16)  NOT NULL,
    created_at VARCHAR(40)  NOT NULL,
    updated_at VARCHAR(40)  NOT NULL,
    version    BIGINT       NOT NULL,
    KEY hospitals_name (name)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE hospital_departments
(
    id          CHAR(36)     NOT NULL PRIMARY KEY,
    hospital_id CHAR(36)     NOT NULL,
    name        VARCHAR(100) NOT NULL,
    description TEXT,
    active      BIGINT       NOT NULL,
    created_at  VARCHAR(40)  NOT NULL,
    KEY hospital_departments_hospital (hospital_id, name)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE hospital_doctors
(
    id               CHAR(36)     NOT NULL PRIMARY KEY,
    hospital_id      CHAR(36)     NOT NULL,
    department_id    CHAR(36)     NOT NULL,
    name             VARCHAR(100) NOT NULL,
    title            VARCHAR(100),
    specialty        VARCHAR(255),
    consultation_fee VARCHAR(32),
    active           BIGINT       NOT NULL,
    created_at       VARCHAR(40)  NOT NULL,
    KEY hospital_doctors_department (hospital_id, department_id)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE hospital_slots
(
    id            CHAR(36)    NOT NULL PRIMARY KEY,
    hospital_id   CHAR(36)    NOT NULL,
    department_id CHAR(36)    NOT NULL,
    doctor_id     CHAR(36),
    date          VARCHAR(10) NOT NULL,
    time          VARCHAR(5)  NOT NULL,
    capacity      BIGINT      NOT NULL,
    booked        BIGINT      NOT NULL,
    created_at    VARCHAR(40) NOT NULL,
    updated_at    VARCHAR(40) NOT NULL,
    version       BIGINT      NOT NULL,
    KEY hospital_slots_lookup (hospital_id, department_id, date, time)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE hospital_appointments
(
    id                 CHAR(36)    NOT NULL PRIMARY KEY,
    slot_id            CHAR(36)    NOT NULL,
    patient_id         CHAR(36)    NOT NULL,
    hospital_id        CHAR(36)    NOT NULL,
    department_id      CHAR(36)    NOT NULL,
    doctor_id          CHAR(36),
    appointment_date   VARCHAR(10) NOT NULL,
    appointment_time   VARCHAR(5)  NOT NULL,
    notes              TEXT,
    recorder_id        CHAR(36)    NOT NULL,
    status             VARCHAR(16) NOT NULL,
    appointment_number VARCHAR(64),
    fee                VARCHAR(32),
    result_notes       TEXT,
    cancel_reason      TEXT,
    created_at         VARCHAR(40) NOT NULL,
    updated_at         VARCHAR(40) NOT NULL,
    version            BIGINT      NOT NULL,
    KEY hospital_appointments_patient (patient_id, appointment_date),
    KEY hospital_appointments_recorder (recorder_id, appointment_date, appointment_time),
    KEY hospital_appointments_slot (slot_id)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
