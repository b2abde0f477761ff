-- Up Migration

-- Read model of policy-change workflows (a loosening change waiting for the tenant's approvers),
-- written by the workflow's own activities (newest version wins), so the API lists and shows
-- pending changes from PostgreSQL rather than from eventually consistent visibility.
CREATE TABLE policy_changes (
  tenant_id        uuid NOT NULL REFERENCES tenants (id),
  change_id        uuid NOT NULL,
  workflow_id      text NOT NULL,
  status           text NOT NULL CHECK (status IN ('pending', 'applied', 'denied', 'withdrawn', 'timed_out', 'conflicted')),
  proposer_id      text NOT NULL,
  base_version     integer NOT NULL,
  applied_version  integer,
  view             jsonb NOT NULL,
  version          integer NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, change_id)
);
CREATE INDEX policy_changes_status ON policy_changes (tenant_id, status, created_at);

-- A version written by an approved change records which change and who approved it (the
-- proposer is its created_by); versions written directly leave both empty.
ALTER TABLE tenant_policies ADD COLUMN change_id uuid, ADD COLUMN approved_by text[];

-- DELETE only takes back a proposal whose workflow never started (version 0).
GRANT SELECT, INSERT, UPDATE, DELETE ON policy_changes TO tenure_app;

ALTER TABLE policy_changes ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON policy_changes TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());

-- Down Migration
ALTER TABLE tenant_policies DROP COLUMN approved_by, DROP COLUMN change_id;
DROP TABLE policy_changes;
