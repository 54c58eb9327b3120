-- Reads of patient data: who read which patient, through which endpoint, when
-- and from where. Audit evidence kept next to the events (not a read model: it
-- cannot be rebuilt from them), written before the read is answered.
CREATE TABLE access_log
(
    id         bigserial   PRIMARY KEY,
    at         timestamptz NOT NULL,
    actor_id   text        NOT NULL,
    actor_role text        NOT NULL,
    patient_id text        NOT NULL,
    -- Method and route pattern, e.g. `GET /api/v1/patients/{id}`.
    endpoint   text        NOT NULL,
    -- The path actually requested.
    path       text        NOT NULL,
    ip         text        NOT NULL,
    user_agent text        NOT NULL,
    request_id text        NOT NULL
);
CREATE INDEX access_log_patient_at ON access_log (patient_id, at);
CREATE INDEX access_log_actor_at ON access_log (actor_id, at);
CREATE INDEX access_log_at ON access_log (at);

-- Append-only: rows are never changed or removed, not even by the server.
CREATE FUNCTION access_log_append_only() RETURNS trigger AS
$$
BEGIN
    RAISE EXCEPTION 'access_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER access_log_append_only
    BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_append_only();

-- Row triggers do not fire on TRUNCATE.
CREATE TRIGGER access_log_no_truncate
    BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_append_only();
