-- Number tokens (see `projections::numbers`): each run of digits in a
-- household's texts also gives search grams, beside the pairs, so that a
-- search for a house or household number reads a few rows instead of walking
-- a pair of digits held by tens of thousands of households. The grams and
-- their counts are emptied here: the server refills both at start-up
-- (`fill_family_grams`), with the tokens.
DROP TABLE family_grams;
CREATE TABLE family_grams
(
    gram       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    family_id  TEXT NOT NULL,
    PRIMARY KEY (gram, created_at, family_id)
) STRICT, WITHOUT ROWID;
DROP TABLE family_gram_counts;
CREATE TABLE family_gram_counts
(
    gram       TEXT    NOT NULL PRIMARY KEY,
    households INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
