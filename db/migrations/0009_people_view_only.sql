-- Up Migration

-- The person read model keeps its fields in `view`; these copies were written on every step and
-- read by nothing. Status stays a column (the list filter and its index use it).
ALTER TABLE people DROP COLUMN attributes, DROP COLUMN policy_version, DROP COLUMN last_event_id,
  DROP COLUMN last_effective_at, DROP COLUMN deletion_due_at;

-- Down Migration
ALTER TABLE people ADD COLUMN attributes jsonb NOT NULL DEFAULT '{}', ADD COLUMN policy_version integer,
  ADD COLUMN last_event_id text, ADD COLUMN last_effective_at timestamptz, ADD COLUMN deletion_due_at timestamptz;
UPDATE people SET attributes = view->'attributes', policy_version = (view->>'policyVersion')::integer,
  last_event_id = view->'lastApplied'->>'eventId', last_effective_at = (view->'lastApplied'->>'effectiveAt')::timestamptz,
  deletion_due_at = (view->'deletion'->>'dueAt')::timestamptz;
