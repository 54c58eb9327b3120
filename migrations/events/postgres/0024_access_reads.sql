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
    id         bigserial   PRIMARY KEY,
    at         timestamptz NOT NULL,
    actor_id   text        NOT NULL,
    actor_role text        NOT NULL,
    endpoint   text        NOT NULL,
    path       text        NOT NULL,
    ip         text        NOT NULL,
    user_agent text        NOT NULL,
    request_id text        NOT NULL,
    -- The patients' ids, distinct, in the order read, at most 1000.
    patients   text[]      NOT NULL
);
CREATE INDEX access_reads_actor_at ON access_reads (actor_id, at);
CREATE INDEX access_reads_at ON access_reads (at);

CREATE TABLE access_read_patients
(
    patient_id text        NOT NULL,
    -- The read's `at`.
    at         timestamptz NOT NULL,
    read_id    bigint      NOT NULL,
    -- The patient's place in the read's list, from 0.
    place      integer     NOT NULL,
    PRIMARY KEY (patient_id, at, read_id)
);

-- A read's keys are written with it, from its list, in the same statement:
-- the writer sends one statement per batch of reads and needs no ids back.
CREATE FUNCTION access_reads_keys() RETURNS trigger AS
$$
BEGIN
    INSERT INTO access_read_patients (patient_id, at, read_id, place)
    SELECT p.patient_id, NEW.at, NEW.id, p.place - 1
    FROM unnest(NEW.patients) WITH ORDINALITY AS p(patient_id, place);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER access_reads_keys
    AFTER INSERT ON access_reads
    FOR EACH ROW EXECUTE FUNCTION access_reads_keys();

INSERT INTO access_reads (id, at, actor_id, actor_role, endpoint, path, ip, user_agent, request_id, patients)
SELECT id, at, actor_id, actor_role, endpoint, path, ip, user_agent, request_id, ARRAY[patient_id]
FROM access_log
ORDER BY id;
SELECT setval(pg_get_serial_sequence('access_reads', 'id'), COALESCE(MAX(id), 0) + 1, false)
FROM access_reads;
DROP TABLE access_log;
DROP FUNCTION access_log_append_only();

-- Append-only: rows are never changed or removed, not even by the server.
CREATE FUNCTION access_reads_append_only() RETURNS trigger AS
$$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER access_reads_append_only
    BEFORE UPDATE OR DELETE ON access_reads
    FOR EACH ROW EXECUTE FUNCTION access_reads_append_only();
CREATE TRIGGER access_reads_no_truncate
    BEFORE TRUNCATE ON access_reads
    FOR EACH STATEMENT EXECUTE FUNCTION access_reads_append_only();
CREATE TRIGGER access_read_patients_append_only
    BEFORE UPDATE OR DELETE ON access_read_patients
    FOR EACH ROW EXECUTE FUNCTION access_reads_append_only();
CREATE TRIGGER access_read_patients_no_truncate
    BEFORE TRUNCATE ON access_read_patients
    FOR EACH STATEMENT EXECUTE FUNCTION access_reads_append_only();
