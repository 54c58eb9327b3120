-- The access log, one row per request instead of one per patient read.
--
-- A recorder's day or a family names about ten patients; as ten rows of every
-- request fact, each in three indexes, their writes were a quarter of the
-- server's CPU on a recorder's day at 1,000,000 patients. Now a request is one
-- row of `access_reads` (its facts and its patients, in the order read) and a
-- narrow key per patient in `access_read_patients`, which is the index an
-- auditor's question about one patient walks. Auditors still see one record
-- per patient read: the read's id times 1000 plus the patient's place in it.
--
-- The old rows are carried over unchanged, each as a read of its one patient
-- under its old id (so its record id is the old id times 1000), in one
-- transaction with the old table's removal.
CREATE TABLE access_reads
(
    -- In commit order (the largest plus one: rows are never deleted).
    id         integer PRIMARY KEY,
    at         text    NOT NULL,
    actor_id   text    NOT NULL,
    actor_role text    NOT NULL,
    endpoint   text    NOT NULL,
    path       text    NOT NULL,
    ip         text    NOT NULL,
    user_agent text    NOT NULL,
    request_id text    NOT NULL,
    -- A JSON array of the patients' ids, distinct, in the order read, at most 1000.
    patients   text    NOT NULL
) STRICT;
CREATE INDEX access_reads_actor_at ON access_reads (actor_id, at);
CREATE INDEX access_reads_at ON access_reads (at);

CREATE TABLE access_read_patients
(
    patient_id text    NOT NULL,
    -- The read's `at`.
    at         text    NOT NULL,
    read_id    integer NOT NULL,
    -- The patient's place in the read's list, from 0.
    place      integer NOT NULL,
    PRIMARY KEY (patient_id, at, read_id)
) STRICT, WITHOUT ROWID;

-- A read's keys are written with it, from its list, in the same statement:
-- the writer sends one statement per batch of reads and needs no ids back.
CREATE TRIGGER access_reads_keys AFTER INSERT ON access_reads
BEGIN
    INSERT INTO access_read_patients (patient_id, at, read_id, place)
    SELECT value, NEW.at, NEW.id, key
    FROM json_each(NEW.patients);
END;

INSERT INTO access_reads (id, at, actor_id, actor_role, endpoint, path, ip, user_agent, request_id, patients)
SELECT id, at, actor_id, actor_role, endpoint, path, ip, user_agent, request_id, json_array(patient_id)
FROM access_log
ORDER BY id;
DROP TABLE access_log;

-- Append-only: rows are never changed or removed, not even by the server.
CREATE TRIGGER access_reads_no_update BEFORE UPDATE ON access_reads
BEGIN
    SELECT RAISE(ABORT, 'access_reads is append-only: UPDATE refused');
END;

CREATE TRIGGER access_reads_no_delete BEFORE DELETE ON access_reads
BEGIN
    SELECT RAISE(ABORT, 'access_reads is append-only: DELETE refused');
END;

CREATE TRIGGER access_read_patients_no_update BEFORE UPDATE ON access_read_patients
BEGIN
    SELECT RAISE(ABORT, 'access_read_patients is append-only: UPDATE refused');
END;

CREATE TRIGGER access_read_patients_no_delete BEFORE DELETE ON access_read_patients
BEGIN
    SELECT RAISE(ABORT, 'access_read_patients is append-only: DELETE refused');
END;
