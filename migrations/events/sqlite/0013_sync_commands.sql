-- Offline sync: every client command applied through POST /sync/push, keyed by
-- its recorder and the client's command id. The row is inserted in the same
-- transaction as the events the command appends (see src/appender.rs), so a
-- command is applied at most once: a resend, or a concurrent twin, hits the
-- primary key and appends nothing. `result` is the JSON answer of its first
-- application ({code, data}), given back to every resend.
CREATE TABLE sync_commands
(
    recorder_id  text NOT NULL,
    command_id   text NOT NULL,
    device_id    text NOT NULL,
    command_type text NOT NULL,
    result       text NOT NULL,
    applied_at   text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (recorder_id, command_id)
) STRICT;
