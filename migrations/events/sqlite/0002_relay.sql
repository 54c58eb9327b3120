-- Progress of the Kafka relay. Kept next to the events: the relay reads them
-- and advances this only after the broker acknowledged.
CREATE TABLE relay_checkpoints
(
    name       text    PRIMARY KEY,
    position   integer NOT NULL,
    updated_at text    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
