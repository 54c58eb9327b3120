-- The family list at scale: the admin's unfiltered total comes from a counter
-- the families projector keeps in the batch transaction (no COUNT(*) scan),
-- and newest-first walks (created_at, id) backwards without sorting.
CREATE TABLE family_totals (
    id       INTEGER NOT NULL PRIMARY KEY,
    families INTEGER NOT NULL
);
INSERT INTO family_totals (id, families) SELECT 1, COUNT(*) FROM families;
CREATE INDEX families_created_id ON families (created_at, id);
