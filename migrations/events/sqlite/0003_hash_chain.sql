-- Tamper evidence: one SHA-256 per event, chained globally in position order
-- (see src/audit/chain.rs). Written by the sealer follower shortly after each
-- commit; `carelog audit verify` recomputes the chain and compares.
CREATE TABLE event_hashes
(
    position  INTEGER PRIMARY KEY,
    hash      TEXT NOT NULL,
    sealed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
