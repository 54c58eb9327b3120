-- The embedded event store. Columns up to `metadata` are sqlite-es's; SQLite has
-- one writer at a time, so positions taken in the insert trigger follow commit order.
CREATE TABLE events
(
    aggregate_type text                          NOT NULL,
    aggregate_id   text                          NOT NULL,
    sequence       integer CHECK (sequence >= 0) NOT NULL,
    event_type     text                          NOT NULL,
    event_version  text                          NOT NULL,
    payload        text                          NOT NULL,
    metadata       text                          NOT NULL,
    position       integer,
    recorded_at    text                          NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;
CREATE UNIQUE INDEX events_position ON events (position);

CREATE TABLE snapshots
(
    aggregate_type   text                                  NOT NULL,
    aggregate_id     text                                  NOT NULL,
    last_sequence    integer CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot integer CHECK (current_snapshot >= 0) NOT NULL,
    payload          text                                  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
) STRICT;

-- rowid is not stable across VACUUM, so the position is a column of its own.
CREATE TABLE event_position
(
    id   integer PRIMARY KEY CHECK (id = 1),
    last integer NOT NULL
) STRICT;
INSERT INTO event_position (id, last) VALUES (1, 0);

CREATE TRIGGER events_assign_position AFTER INSERT ON events
BEGIN
    UPDATE event_position SET last = last + 1 WHERE id = 1;
    UPDATE events SET position = (SELECT last FROM event_position WHERE id = 1) WHERE rowid = NEW.rowid;
END;

CREATE TABLE idempotency_keys
(
    scope           text    NOT NULL,
    key             text    NOT NULL,
    fingerprint     text    NOT NULL,
    response_status integer,
    response_body   text,
    created_at      text    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (scope, key)
) STRICT;

CREATE TABLE unique_claims
(
    scope      text NOT NULL,
    value      text NOT NULL,
    owner      text NOT NULL,
    claimed_at text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (scope, value)
) STRICT;
