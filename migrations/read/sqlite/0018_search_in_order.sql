-- The family search at scale, in the list's order: each gram row also holds
-- its household's creation time, keyed (gram, created_at, family_id), so a
-- search walks one gram's households newest first and stops after the page
-- (and the capped total) instead of gathering every household holding it and
-- sorting them. `family_grams_family` (household, gram) serves a rename (the
-- household's rows) and a one-character search within a list of households.
-- Emptied here: the server refills it at start-up (`fill_family_grams`).
DROP TABLE family_grams;
CREATE TABLE family_grams
(
    gram       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    family_id  TEXT NOT NULL,
    PRIMARY KEY (gram, created_at, family_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX family_grams_family ON family_grams (family_id, gram);
