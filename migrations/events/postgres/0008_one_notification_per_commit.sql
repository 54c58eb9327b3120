-- Group commit writes the events of many commands in one transaction: wake the
-- followers once per transaction, not once per event. PostgreSQL folds
-- identical notifications of one transaction into one; the followers read the
-- positions themselves, so the payload carries nothing.
CREATE OR REPLACE FUNCTION events_assign_position() RETURNS trigger AS
$$
BEGIN
    UPDATE event_position SET last = last + 1 WHERE id = 1 RETURNING last INTO NEW.position;
    PERFORM pg_notify('carelog_events', '');
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
