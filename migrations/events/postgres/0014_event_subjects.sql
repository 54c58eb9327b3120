-- The patients each aggregate's first event names (a visit's, a record's, an
-- order's, a booking's, a subscription's: every string under a "patient_id"
-- key, at any depth), written with the events at append. The auditor's
-- search by patient reads this index instead of matching the text of every
-- first event in the store. Filled here from the events already stored.
CREATE TABLE event_subjects
(
    aggregate_type text NOT NULL,
    aggregate_id   text NOT NULL,
    patient_id     text NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, patient_id)
);
CREATE INDEX event_subjects_patient ON event_subjects (patient_id, aggregate_type, aggregate_id);
INSERT INTO event_subjects (aggregate_type, aggregate_id, patient_id)
SELECT e.aggregate_type, e.aggregate_id, p #>> '{}'
FROM events e,
     jsonb_path_query(e.payload::jsonb, 'strict $.**.patient_id') p
WHERE e.sequence = 1
  AND jsonb_typeof(p) = 'string'
ON CONFLICT DO NOTHING;
