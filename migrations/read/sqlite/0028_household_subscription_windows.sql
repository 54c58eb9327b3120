-- A household's subscriptions active by status, kept in its row by the
-- families projector as fixed-width windows (start date, end date, recorder:
-- 10 + 10 + 36 characters each, in that order, sorted), so that the family
-- list counts those active today from the row it reads anyway instead of one
-- range of `recorder_families_household` per household of the page
-- (docs/performance.md). None is ''; NULL only while a rebuild's load leaves
-- them to its end. Filled here from `recorder_families`.
ALTER TABLE families ADD COLUMN subscription_windows TEXT;
UPDATE families SET subscription_windows = COALESCE((
    SELECT group_concat(rf.start_date || rf.end_date || rf.recorder_id, ''
                        ORDER BY rf.start_date, rf.end_date, rf.recorder_id)
    FROM recorder_families rf WHERE rf.family_id = families.id AND rf.status = 'active'), '');
