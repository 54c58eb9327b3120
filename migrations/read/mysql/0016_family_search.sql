-- The family list's search at scale: every character and pair of neighbouring
-- characters (lowercased) of a family's name, its primary address and its
-- patients' names, kept by the families projector. A search first takes the
-- families holding every gram of the text (an index), then checks them with
-- LIKE; without it, LIKE '%…%' read every family and patient. Filled for
-- existing families at start-up (`ReadStore::connect`). Grams compare
-- exactly (binary): both sides are lowercased.
CREATE TABLE family_grams
(
    gram      VARCHAR(2) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    family_id CHAR(36)   NOT NULL,
    PRIMARY KEY (gram, family_id),
    KEY family_grams_family (family_id)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
