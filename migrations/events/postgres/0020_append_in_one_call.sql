-- One append, one round trip (see src/appender.rs). The group commit's
-- transaction used to be BEGIN, an INSERT of the data keys, a multi-row INSERT
-- of the events (a statement of a new shape, prepared again, for every new
-- number of rows), an INSERT of the event subjects and COMMIT: four to six
-- round trips to the server while every other command waits for the next
-- batch. `carelog_append` does all of it in one call, which runs as its own
-- transaction, with parameters of one shape (arrays) whatever the batch's size.
--
-- Positions: the counter row is moved once for the whole batch (its lock
-- still held until the transaction ends: commit order = position order), and
-- the rows are numbered in the order given. The trigger numbers only rows
-- inserted without a position (any other writer), as before.
--
-- Errors, as the separate statements raised them:
-- - a client command already applied (its `sync_commands` row exists):
--   SQLSTATE CL001, nothing written;
-- - a data key whose subject already has one (a concurrent first writer, an
--   erasure): unique_violation, nothing written;
-- - an event whose (aggregate, sequence) is taken: unique_violation (the
--   primary key), nothing written.
CREATE OR REPLACE FUNCTION events_assign_position() RETURNS trigger AS
$$
BEGIN
    IF NEW.position IS NULL THEN
        UPDATE event_position SET last = last + 1 WHERE id = 1 RETURNING last INTO NEW.position;
        PERFORM pg_notify('carelog_events', COALESCE(current_setting('carelog.writer', true), ''));
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE FUNCTION carelog_append(
    -- the events, one array per column, in the order to number them
    p_aggregate_types text[],
    p_aggregate_ids text[],
    p_sequences bigint[],
    p_event_types text[],
    p_event_versions text[],
    p_payloads text[],
    p_metadata text[],
    -- data keys made for these events: (subject, wrapped key)
    p_key_subjects text[],
    p_keys text[],
    -- the patients the aggregates' first events name
    p_subject_types text[],
    p_subject_ids text[],
    p_subject_patients text[],
    -- client commands these events apply (POST /sync/push)
    p_mark_recorders text[],
    p_mark_commands text[],
    p_mark_devices text[],
    p_mark_types text[],
    p_mark_results text[]
)
    RETURNS TABLE (out_position bigint, out_recorded_at text)
AS
$$
DECLARE
    n       bigint := coalesce(cardinality(p_aggregate_types), 0);
    written bigint;
    head    bigint;
BEGIN
    IF coalesce(cardinality(p_mark_commands), 0) > 0 THEN
        INSERT INTO sync_commands (recorder_id, command_id, device_id, command_type, result)
        SELECT *
        FROM unnest(p_mark_recorders, p_mark_commands, p_mark_devices, p_mark_types, p_mark_results)
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS written = ROW_COUNT;
        IF written < cardinality(p_mark_commands) THEN
            RAISE EXCEPTION 'a client command was applied already' USING ERRCODE = 'CL001';
        END IF;
    END IF;
    IF n = 0 THEN
        RETURN;
    END IF;
    IF coalesce(cardinality(p_key_subjects), 0) > 0 THEN
        INSERT INTO subject_keys (subject_id, wrapped_key)
        SELECT * FROM unnest(p_key_subjects, p_keys)
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS written = ROW_COUNT;
        IF written < cardinality(p_key_subjects) THEN
            RAISE EXCEPTION 'a data subject has a key already' USING ERRCODE = 'unique_violation';
        END IF;
    END IF;
    UPDATE event_position SET last = last + n WHERE id = 1 RETURNING last INTO head;
    RETURN QUERY
        INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata,
                            position)
            SELECT t, i, s, et, ev, p::json, m::json, head - n + o
            FROM unnest(p_aggregate_types, p_aggregate_ids, p_sequences, p_event_types, p_event_versions,
                        p_payloads, p_metadata) WITH ORDINALITY AS e(t, i, s, et, ev, p, m, o)
            ORDER BY o
            RETURNING position, to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
    IF coalesce(cardinality(p_subject_patients), 0) > 0 THEN
        INSERT INTO event_subjects (aggregate_type, aggregate_id, patient_id)
        SELECT * FROM unnest(p_subject_types, p_subject_ids, p_subject_patients)
        ON CONFLICT DO NOTHING;
    END IF;
    PERFORM pg_notify('carelog_events', COALESCE(current_setting('carelog.writer', true), ''));
END
$$ LANGUAGE plpgsql;
