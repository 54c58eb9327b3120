-- Progress of the Kafka relay. Kept next to the events: the relay reads them
-- and advances this only after the broker acknowledged.
CREATE TABLE relay_checkpoints
(
    name       text        PRIMARY KEY,
    position   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
