-- Visit verification: each visit's check-in and check-out (server time, where,
-- and how far from the family's home). Instants are RFC 3339 UTC text like
-- every other instant here, so they compare as text.
ALTER TABLE appointments
    ADD COLUMN check_in_at           VARCHAR(40),
    ADD COLUMN check_in_lat          DOUBLE,
    ADD COLUMN check_in_lng          DOUBLE,
    ADD COLUMN check_in_distance_m   DOUBLE,
    ADD COLUMN check_out_at          VARCHAR(40),
    ADD COLUMN check_out_lat         DOUBLE,
    ADD COLUMN check_out_lng         DOUBLE,
    ADD COLUMN check_out_distance_m  DOUBLE;
-- A recorder's visits by check-in time: the overlap check and the end-of-day
-- sweep for visits never checked out.
CREATE INDEX appointments_check_in ON appointments (recorder_id, check_in_at);
