-- The event store. Columns up to `metadata` are the ones postgres-es reads and
-- writes; `position` and `recorded_at` are ours and filled in by the database.
CREATE TABLE events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    -- Global position: commit order, gap-free except for aborted appends.
    position       bigint                       NOT NULL,
    recorded_at    timestamptz                  NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE UNIQUE INDEX events_position ON events (position);
CREATE INDEX events_recorded_at ON events (recorded_at);

-- postgres-es needs the table to exist even though carelog takes no snapshots.
CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- The commit-order gap (see docs/architecture.md): a sequence value is taken at
-- insert time but transactions commit in another order, so a follower reading
-- "position > checkpoint" could pass over an event that commits later with a
-- smaller position. Positions are therefore taken from this one row: its row
-- lock is held until the appending transaction ends, so the next append gets
-- its position only after the previous one is visible. Commit order equals
-- position order, and every snapshot sees a prefix of the positions.
CREATE TABLE event_position
(
    id   integer PRIMARY KEY CHECK (id = 1),
    last bigint NOT NULL
);
INSERT INTO event_position (id, last) VALUES (1, 0);

CREATE FUNCTION events_assign_position() RETURNS trigger AS
$$
BEGIN
    UPDATE event_position SET last = last + 1 WHERE id = 1 RETURNING last INTO NEW.position;
    -- Wakes followers (projectors, relay) at commit; they also poll.
    PERFORM pg_notify('carelog_events', NEW.position::text);
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER events_assign_position
    BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_assign_position();

-- Idempotency-Key: the first request with a key reserves it, then stores its response.
CREATE TABLE idempotency_keys
(
    scope           text        NOT NULL,
    key             text        NOT NULL,
    fingerprint     text        NOT NULL,
    response_status integer,
    response_body   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- Values that must be unique across aggregates (usernames, phones, employee ids,
-- license numbers). Claimed before the create command, released if it fails.
CREATE TABLE unique_claims
(
    scope      text        NOT NULL,
    value      text        NOT NULL,
    owner      text        NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, value)
);
