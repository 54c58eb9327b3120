-- The hash chain is append-only: a sealed hash is never changed or removed.
CREATE TRIGGER event_hashes_no_update BEFORE UPDATE ON event_hashes
BEGIN
    SELECT RAISE(ABORT, 'event_hashes is append-only: UPDATE refused');
END;

CREATE TRIGGER event_hashes_no_delete BEFORE DELETE ON event_hashes
BEGIN
    SELECT RAISE(ABORT, 'event_hashes is append-only: DELETE refused');
END;
