-- The position a stored answer named in `X-Carelog-Position` (the last event
-- its request committed; NULL: none). A repeat of the request with the same
-- `Idempotency-Key` names it again, so a client that lost the first answer
-- still learns what its next read must wait for.
ALTER TABLE idempotency_keys ADD COLUMN response_position integer;
