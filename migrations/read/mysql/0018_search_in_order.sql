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
    gram       VARCHAR(2) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    created_at VARCHAR(40) NOT NULL,
    family_id  CHAR(36)    NOT NULL,
    PRIMARY KEY (gram, created_at, family_id),
    KEY family_grams_family (family_id, gram)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
