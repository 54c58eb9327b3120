-- Checkpoints of followers that run commands (reactors) rather than write read
-- models; kept apart so that read-your-writes waits only for the projectors.
CREATE TABLE reactor_checkpoints
(
    name     VARCHAR(64) NOT NULL PRIMARY KEY,
    position BIGINT      NOT NULL
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
