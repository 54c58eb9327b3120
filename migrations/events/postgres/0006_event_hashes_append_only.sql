-- The hash chain is append-only: a sealed hash is never changed or removed, so
-- hiding an edit by deleting the hashes after it (and letting the sealer hash
-- the edited events) needs more than write access to the tables.
CREATE FUNCTION refuse_change() RETURNS trigger AS
$$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER event_hashes_append_only
    BEFORE UPDATE OR DELETE ON event_hashes
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TRIGGER event_hashes_no_truncate
    BEFORE TRUNCATE ON event_hashes
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
