-- Read models for the core slice. Instants are RFC 3339 UTC strings with a fixed
-- width (so they sort as text), dates are YYYY-MM-DD, money is a decimal string.
-- `version` is the aggregate's sequence after the last applied event (the ETag).

CREATE TABLE projection_checkpoints
(
    name     VARCHAR(64) NOT NULL PRIMARY KEY,
    position BIGINT      NOT NULL
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE users
(
    id            CHAR(36)     NOT NULL PRIMARY KEY,
    username      VARCHAR(64)  NOT NULL,
    phone         VARCHAR(32)  NOT NULL,
    role          VARCHAR(16)  NOT NULL,
    name          VARCHAR(100) NOT NULL,
    avatar        VARCHAR(500),
    status        VARCHAR(16)  NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    last_login_at VARCHAR(40),
    created_at    VARCHAR(40)  NOT NULL,
    updated_at    VARCHAR(40)  NOT NULL,
    version       BIGINT       NOT NULL,
    UNIQUE KEY users_username (username),
    KEY users_role (role, created_at)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE recorders
(
    user_id            CHAR(36)     NOT NULL PRIMARY KEY,
    employee_id        VARCHAR(64)  NOT NULL,
    qualification_cert VARCHAR(255),
    health_cert        VARCHAR(255),
    cert_expiry_date   VARCHAR(10),
    work_area          VARCHAR(255)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE doctors
(
    user_id          CHAR(36)     NOT NULL PRIMARY KEY,
    license_number   VARCHAR(64)  NOT NULL,
    specialty        VARCHAR(100) NOT NULL,
    hospital         VARCHAR(255),
    department       VARCHAR(100),
    title            VARCHAR(100),
    consultation_fee VARCHAR(32)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE sessions
(
    id         CHAR(36)    NOT NULL PRIMARY KEY,
    user_id    CHAR(36)    NOT NULL,
    created_at VARCHAR(40) NOT NULL,
    expires_at VARCHAR(40) NOT NULL,
    revoked_at VARCHAR(40),
    KEY sessions_user (user_id)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE families
(
    id                CHAR(36)     NOT NULL PRIMARY KEY,
    family_name       VARCHAR(100) NOT NULL,
    primary_address   VARCHAR(255) NOT NULL,
    secondary_address VARCHAR(255),
    contact_phone     VARCHAR(32)  NOT NULL,
    emergency_contact VARCHAR(100),
    emergency_phone   VARCHAR(32),
    home_lat          DOUBLE,
    home_lng          DOUBLE,
    created_at        VARCHAR(40)  NOT NULL,
    updated_at        VARCHAR(40)  NOT NULL,
    version           BIGINT       NOT NULL,
    KEY families_created (created_at),
    KEY families_name (family_name)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE patients
(
    id                   CHAR(36)     NOT NULL PRIMARY KEY,
    family_id            CHAR(36)     NOT NULL,
    name                 VARCHAR(100) NOT NULL,
    gender               VARCHAR(8)   NOT NULL,
    birth_date           VARCHAR(10)  NOT NULL,
    id_card              VARCHAR(18),
    phone                VARCHAR(32),
    relationship_to_head VARCHAR(50)  NOT NULL,
    medical_history      TEXT         NOT NULL,
    allergies            TEXT,
    current_medications  TEXT         NOT NULL,
    service_preferences  TEXT,
    created_at           VARCHAR(40)  NOT NULL,
    updated_at           VARCHAR(40)  NOT NULL,
    version              BIGINT       NOT NULL,
    KEY patients_family (family_id, created_at),
    KEY patients_name (name)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE service_packages
(
    id                CHAR(36)     NOT NULL PRIMARY KEY,
    name              VARCHAR(100) NOT NULL,
    description       TEXT,
    price             VARCHAR(32)  NOT NULL,
    duration_days     BIGINT       NOT NULL,
    service_frequency BIGINT       NOT NULL,
    service_items     TEXT         NOT NULL,
    created_at        VARCHAR(40)  NOT NULL,
    version           BIGINT       NOT NULL,
    KEY packages_created (created_at)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE subscriptions
(
    id             CHAR(36)    NOT NULL PRIMARY KEY,
    patient_id     CHAR(36)    NOT NULL,
    package_id     CHAR(36)    NOT NULL,
    recorder_id    CHAR(36)    NOT NULL,
    start_date     VARCHAR(10) NOT NULL,
    end_date       VARCHAR(10) NOT NULL,
    status         VARCHAR(16) NOT NULL,
    payment_status VARCHAR(16) NOT NULL,
    created_at     VARCHAR(40) NOT NULL,
    updated_at     VARCHAR(40) NOT NULL,
    version        BIGINT      NOT NULL,
    KEY subscriptions_patient (patient_id, status, end_date),
    KEY subscriptions_recorder (recorder_id, status, end_date)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
