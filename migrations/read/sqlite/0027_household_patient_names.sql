-- A family search checks each household it walks for a patient of that name
-- (`LIKE`, after the household's own name and address): with the name in the
-- household's index of its patients, that check reads the index alone, not
-- each patient's row (at 1,000,000 patients, the largest part of a search
-- for a patient's name on MySQL; docs/performance.md). Same index otherwise:
-- a household's patients in the order registered.
DROP INDEX patients_family;
CREATE INDEX patients_family ON patients (family_id, created_at, name);
