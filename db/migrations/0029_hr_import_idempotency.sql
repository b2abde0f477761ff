-- Up Migration

-- An upload sent again after a lost 202 (same Idempotency-Key, same caller) answers the job it
-- made rather than making a second one whose rows all come back `duplicate`. The hash of the
-- body tells a genuine retry from a key reused for another upload (409).
ALTER TABLE hr_imports ADD COLUMN idempotency_key text, ADD COLUMN request_hash text;
CREATE UNIQUE INDEX hr_imports_idempotency ON hr_imports (tenant_id, submitted_by, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

-- Down Migration
DROP INDEX hr_imports_idempotency;
ALTER TABLE hr_imports DROP COLUMN idempotency_key, DROP COLUMN request_hash;
