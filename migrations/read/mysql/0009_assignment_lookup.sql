-- "Is this patient assigned to this recorder today?" (`assigned_sql`, asked per
-- row by recorders' lists and today's visits) by patient and recorder at once:
-- with only (recorder_id, …) and (patient_id, …) the planner may walk all of a
-- recorder's subscriptions for every row.
CREATE INDEX subscriptions_assigned ON subscriptions (patient_id, recorder_id, status, end_date);
