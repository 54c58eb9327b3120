-- How many households hold each search gram, kept by the families projector
-- beside `family_grams` (see `projections::gram_counts`): an admin's search
-- picks its rarest pair, and estimates a common one's total, from these rows
-- instead of counting each pair's index entries. Counted here from the rows
-- already there.
CREATE TABLE family_gram_counts
(
    gram       TEXT    NOT NULL PRIMARY KEY,
    households INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO family_gram_counts (gram, households)
SELECT gram, COUNT(*) FROM family_grams GROUP BY gram;
