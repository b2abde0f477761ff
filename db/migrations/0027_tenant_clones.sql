-- Up Migration

-- Org cloning (core/templates/clone.ts): one row per source tenant and client-supplied
-- idempotency key, written before the clone's workflow starts, so a retry with the same key
-- answers the same new tenant (and another body under that key is refused) even after the
-- workflow's run has left Temporal's retention. The new tenant's id is made here, once.
CREATE TABLE tenant_clones (
  clone_id          uuid PRIMARY KEY,
  source_tenant_id  uuid NOT NULL REFERENCES tenants (id),
  idempotency_key   text NOT NULL,
  -- SHA-256 of the canonical request (source and body): the same key with another body is a 409.
  request_hash      text NOT NULL,
  -- No foreign key: the workflow creates this tenant after the row exists.
  new_tenant_id     uuid NOT NULL UNIQUE,
  workflow_id       text NOT NULL,
  slug              text NOT NULL,
  name              text NOT NULL,
  requested_by      text NOT NULL,
  status            text NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
  -- What was read from the source, once: every retry of a step clones the same state.
  source_state      jsonb,
  result            jsonb,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (source_tenant_id, idempotency_key)
);

GRANT SELECT, INSERT, UPDATE ON tenant_clones TO tenure_app;
ALTER TABLE tenant_clones ENABLE ROW LEVEL SECURITY;
CREATE POLICY msp_only ON tenant_clones TO tenure_app USING (tenure_msp_scope()) WITH CHECK (tenure_msp_scope());

-- Down Migration
DROP TABLE tenant_clones;
