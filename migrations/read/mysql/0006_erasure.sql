-- Erasure (crypto-shredding): when a patient's (or a household's) personal data
-- were erased, the read models keep the row with the fields blanked and say when.
ALTER TABLE patients ADD COLUMN erased_at VARCHAR(40) NULL;
ALTER TABLE families ADD COLUMN erased_at VARCHAR(40) NULL;
