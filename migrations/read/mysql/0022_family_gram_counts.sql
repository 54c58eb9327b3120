-- How many households hold each search gram, kept by the families projector
-- beside `family_grams` (see `projections::gram_counts`): an admin's search
-- picks its rarest pair, and estimates a common one's total, from these rows
-- instead of counting each pair's index entries. Counted here from the rows
-- already there. The gram compares as `family_grams.gram` does (trailing
-- spaces ignored), so the two tables have the same keys.
CREATE TABLE family_gram_counts
(
    gram       VARCHAR(2) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    households BIGINT NOT NULL
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
INSERT INTO family_gram_counts (gram, households)
SELECT gram, COUNT(*) FROM family_grams GROUP BY gram;
