-- Number tokens (see `projections::numbers`): each run of digits in a
-- household's texts also gives search grams of up to 17 characters (a marker
-- and 16 digits), beside the pairs, so that a search for a house or household
-- number reads a few rows instead of walking a pair of digits held by tens of
-- thousands of households. The grams and their counts are emptied here: the
-- server refills both at start-up (`fill_family_grams`), with the tokens.
DROP TABLE family_grams;
CREATE TABLE family_grams
(
    gram       VARCHAR(17) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    created_at VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    family_id  CHAR(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin    NOT NULL,
    PRIMARY KEY (gram, created_at, family_id)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
DROP TABLE family_gram_counts;
CREATE TABLE family_gram_counts
(
    gram       VARCHAR(17) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    households BIGINT NOT NULL
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
