-- Whether a recorder is working and a doctor takes new requests (PATCH /users/{id}).
ALTER TABLE recorders ADD COLUMN is_on_duty INT NOT NULL DEFAULT 1;
ALTER TABLE doctors ADD COLUMN is_available INT NOT NULL DEFAULT 1;
