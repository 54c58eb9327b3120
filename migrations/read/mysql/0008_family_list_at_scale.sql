-- The family list at scale: the admin's unfiltered total comes from a counter
-- the families projector keeps in the batch transaction (no COUNT(*) scan),
-- and newest-first reads the existing `families_created` index backwards
-- (InnoDB secondary keys end with the primary key, so it is (created_at, id)).
CREATE TABLE family_totals (
    id       INT    NOT NULL PRIMARY KEY,
    families BIGINT NOT NULL
) ENGINE=InnoDB;
INSERT INTO family_totals (id, families) SELECT 1, COUNT(*) FROM families;
