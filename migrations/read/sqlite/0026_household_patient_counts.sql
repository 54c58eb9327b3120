-- A household's number of patients, kept by the families projector as it
-- registers them (a counter: a patient is never taken out of a household), so
-- that the admin's family list reads it with the household's row instead of
-- counting each household's patients (one lookup per household of the page;
-- docs/performance.md). Filled here from the patients a store already holds.
ALTER TABLE families ADD COLUMN patient_count INTEGER NOT NULL DEFAULT 0;
UPDATE families SET patient_count = (SELECT COUNT(*) FROM patients p WHERE p.family_id = families.id);
