-- A recorder's family list at scale: one row per subscription with the
-- household of its patient and the household's creation time, kept by the
-- families projector (which owns patients and families). The list, its total
-- and its per-family counts are then one range of `recorder_families_list`
-- (covering), instead of a lookup of each subscription, patient and family.
-- Filled here from the tables a store already holds.
CREATE TABLE recorder_families
(
    subscription_id   CHAR(36)    NOT NULL PRIMARY KEY,
    recorder_id       CHAR(36)    NOT NULL,
    family_id         CHAR(36)    NOT NULL,
    patient_id        CHAR(36)    NOT NULL,
    status            VARCHAR(16) NOT NULL,
    start_date        VARCHAR(10) NOT NULL,
    end_date          VARCHAR(10) NOT NULL,
    family_created_at VARCHAR(40) NOT NULL,
    KEY recorder_families_list (recorder_id, status, end_date, start_date, family_created_at, family_id, patient_id)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
INSERT INTO recorder_families (subscription_id, recorder_id, family_id, patient_id, status, start_date, end_date,
                               family_created_at)
SELECT s.id, s.recorder_id, p.family_id, s.patient_id, s.status, s.start_date, s.end_date, f.created_at
FROM subscriptions s
         JOIN patients p ON p.id = s.patient_id
         JOIN families f ON f.id = p.family_id;
