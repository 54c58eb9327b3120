-- The search grams lose their second index, by household: a change to a
-- household's texts now deletes the grams it takes away by the table's key
-- (they are computed from the rows before the change), and a one-character
-- search checks households with `LIKE` alone. One B-tree per gram row instead
-- of two: every household created writes half the index entries, and a
-- rebuild no longer sorts 12 million entries into it after its load.
DROP INDEX IF EXISTS family_grams_family;
