-- A household's subscriptions active by status, kept in its row by the
-- families projector as fixed-width windows (start date, end date, recorder:
-- 10 + 10 + 36 characters each, in that order, sorted), so that the family
-- list counts those active today from the row it reads anyway instead of one
-- range of `recorder_families_household` per household of the page, which
-- was about half of MariaDB's work on an admin's page at 1,000,000 patients
-- (docs/performance.md). None is ''; NULL only while a rebuild's load leaves
-- them to its end. Filled here from `recorder_families`.
SET SESSION group_concat_max_len = 4194304;
ALTER TABLE families ADD COLUMN subscription_windows TEXT NULL;
UPDATE families SET subscription_windows = COALESCE((
    SELECT GROUP_CONCAT(rf.start_date, rf.end_date, rf.recorder_id
                        ORDER BY rf.start_date, rf.end_date, rf.recorder_id SEPARATOR '')
    FROM recorder_families rf WHERE rf.family_id = families.id AND rf.status = 'active'), '');
