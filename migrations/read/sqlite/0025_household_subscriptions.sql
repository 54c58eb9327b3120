-- A household's subscriptions active today, as the admin's family list counts
-- them for each household of its page: one range of this index (covering),
-- instead of a lookup of the household's patients, then of each patient's
-- subscriptions and of each subscription's row for its start date (about a
-- hundred lookups a page at 1,000,000 patients; docs/performance.md).
-- `recorder_families` holds one row per subscription with its household and
-- status, kept by the families projector.
CREATE INDEX recorder_families_household
    ON recorder_families (family_id, status, end_date, start_date, recorder_id);
