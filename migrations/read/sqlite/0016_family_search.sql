-- The family list's search at scale: every character and pair of neighbouring
-- characters (lowercased) of a family's name, its primary address and its
-- patients' names, kept by the families projector. A search first takes the
-- families holding every gram of the text (an index), then checks them with
-- LIKE; without it, LIKE '%…%' read every family and patient. Filled for
-- existing families at start-up (`ReadStore::connect`).
CREATE TABLE family_grams
(
    gram      TEXT NOT NULL,
    family_id TEXT NOT NULL,
    PRIMARY KEY (gram, family_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX family_grams_family ON family_grams (family_id);
