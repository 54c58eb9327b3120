-- The notification of a commit names the writer that made it (the session
-- setting `carelog.writer`, set by each carelog process on its connections;
-- empty for any other session). A process hears its own commits as well as
-- others': it ignores its own, which it has already handled in memory, and
-- treats any other as news (see src/tail.rs). Still one notification per
-- transaction: PostgreSQL folds identical notifications of one transaction.
CREATE OR REPLACE FUNCTION events_assign_position() RETURNS trigger AS
$$
BEGIN
    UPDATE event_position SET last = last + 1 WHERE id = 1 RETURNING last INTO NEW.position;
    PERFORM pg_notify('carelog_events', COALESCE(current_setting('carelog.writer', true), ''));
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
