-- The auditor's history of one user (`GET /audit/events?actor=`): the events
-- a user caused, in position order, read by key instead of matching the actor
-- in every event's metadata (seconds a page at 3 million events). Events
-- without an actor (the server's own commands, the bench seeder) are left out;
-- the filter states `IS NOT NULL` to match. Building it reads every event
-- once, at the upgrade.
CREATE INDEX events_actor ON events (json_extract(metadata, '$.actor_id'), position)
    WHERE json_extract(metadata, '$.actor_id') IS NOT NULL;
