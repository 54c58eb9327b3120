-- Field work: visits, health records, files, order requests, medical orders, notifications.

CREATE TABLE appointments
(
    id               CHAR(36)    NOT NULL PRIMARY KEY,
    patient_id       CHAR(36)    NOT NULL,
    recorder_id      CHAR(36)    NOT NULL,
    subscription_id  CHAR(36)    NOT NULL,
    scheduled_date   VARCHAR(10) NOT NULL,
    scheduled_time   VARCHAR(5)  NOT NULL,
    appointment_type VARCHAR(16) NOT NULL,
    status           VARCHAR(16) NOT NULL,
    notes            TEXT,
    cancel_reason    TEXT,
    health_record_id CHAR(36),
    reschedule_count BIGINT      NOT NULL,
    created_at       VARCHAR(40) NOT NULL,
    updated_at       VARCHAR(40) NOT NULL,
    version          BIGINT      NOT NULL,
    KEY appointments_recorder (recorder_id, scheduled_date, scheduled_time),
    KEY appointments_patient (patient_id, scheduled_date)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE appointment_history
(
    appointment_id CHAR(36)    NOT NULL,
    seq            BIGINT      NOT NULL,
    event          VARCHAR(32) NOT NULL,
    from_date      VARCHAR(10),
    from_time      VARCHAR(5),
    to_date        VARCHAR(10),
    to_time        VARCHAR(5),
    reason         TEXT,
    actor_id       CHAR(36),
    at             VARCHAR(40) NOT NULL,
    PRIMARY KEY (appointment_id, seq)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE health_records
(
    id                   CHAR(36)    NOT NULL PRIMARY KEY,
    patient_id           CHAR(36)    NOT NULL,
    recorder_id          CHAR(36)    NOT NULL,
    appointment_id       CHAR(36),
    visit_date           VARCHAR(10) NOT NULL,
    visit_time           VARCHAR(5)  NOT NULL,
    location_lat         DOUBLE,
    location_lng         DOUBLE,
    location_address     VARCHAR(255),
    distance_from_home_m DOUBLE,
    away_from_home       BIGINT      NOT NULL,
    blood_pressure       VARCHAR(16),
    heart_rate           BIGINT,
    temperature          DOUBLE,
    blood_oxygen         DOUBLE,
    blood_glucose        DOUBLE,
    weight               DOUBLE,
    symptoms             TEXT,
    notes                TEXT,
    alerts               TEXT        NOT NULL,
    abnormal             BIGINT      NOT NULL,
    created_at           VARCHAR(40) NOT NULL,
    updated_at           VARCHAR(40) NOT NULL,
    version              BIGINT      NOT NULL,
    KEY health_records_patient (patient_id, visit_date, visit_time, created_at)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE health_record_files
(
    record_id CHAR(36)    NOT NULL,
    file_id   CHAR(36)    NOT NULL,
    role      VARCHAR(16) NOT NULL,
    ord       BIGINT      NOT NULL,
    PRIMARY KEY (record_id, file_id),
    KEY health_record_files_file (file_id)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE files
(
    id            CHAR(36)     NOT NULL PRIMARY KEY,
    kind          VARCHAR(16)  NOT NULL,
    original_name VARCHAR(255) NOT NULL,
    content_type  VARCHAR(100) NOT NULL,
    size          BIGINT       NOT NULL,
    sha256        CHAR(64)     NOT NULL,
    storage_key   VARCHAR(255) NOT NULL,
    thumbnail_key VARCHAR(255),
    uploaded_by   CHAR(36)     NOT NULL,
    created_at    VARCHAR(40)  NOT NULL,
    version       BIGINT       NOT NULL
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE order_requests
(
    id               CHAR(36)    NOT NULL PRIMARY KEY,
    health_record_id CHAR(36)    NOT NULL,
    patient_id       CHAR(36)    NOT NULL,
    doctor_id        CHAR(36)    NOT NULL,
    requested_by     CHAR(36),
    recorder_id      CHAR(36)    NOT NULL,
    reason           TEXT,
    alerts           TEXT        NOT NULL,
    abnormal         BIGINT      NOT NULL,
    urgent           BIGINT      NOT NULL,
    status           VARCHAR(16) NOT NULL,
    order_id         CHAR(36),
    created_at       VARCHAR(40) NOT NULL,
    updated_at       VARCHAR(40) NOT NULL,
    version          BIGINT      NOT NULL,
    KEY order_requests_doctor (doctor_id, status, created_at),
    KEY order_requests_patient (patient_id, created_at)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE medical_orders
(
    id               CHAR(36)    NOT NULL PRIMARY KEY,
    patient_id       CHAR(36)    NOT NULL,
    doctor_id        CHAR(36)    NOT NULL,
    recorder_id      CHAR(36),
    request_id       CHAR(36),
    health_record_id CHAR(36),
    order_type       VARCHAR(16) NOT NULL,
    content          TEXT        NOT NULL,
    dosage           VARCHAR(255),
    frequency        VARCHAR(255),
    duration         VARCHAR(255),
    notes            TEXT,
    status           VARCHAR(16) NOT NULL,
    cancel_reason    TEXT,
    created_at       VARCHAR(40) NOT NULL,
    updated_at       VARCHAR(40) NOT NULL,
    version          BIGINT      NOT NULL,
    KEY medical_orders_patient (patient_id, created_at),
    KEY medical_orders_doctor (doctor_id, created_at)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE notifications
(
    id         CHAR(36)     NOT NULL PRIMARY KEY,
    user_id    CHAR(36)     NOT NULL,
    kind       VARCHAR(32)  NOT NULL,
    title      VARCHAR(200) NOT NULL,
    body       TEXT         NOT NULL,
    ref_type   VARCHAR(32)  NOT NULL,
    ref_id     CHAR(36)     NOT NULL,
    patient_id CHAR(36),
    urgent     BIGINT       NOT NULL,
    created_at VARCHAR(40)  NOT NULL,
    read_at    VARCHAR(40),
    KEY notifications_user (user_id, read_at, created_at)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
