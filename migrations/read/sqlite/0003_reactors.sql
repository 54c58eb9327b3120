-- Checkpoints of followers that run commands (reactors) rather than write read
-- models; kept apart so that read-your-writes waits only for the projectors.
CREATE TABLE reactor_checkpoints
(
    name     TEXT    NOT NULL PRIMARY KEY,
    position INTEGER NOT NULL
) STRICT;
