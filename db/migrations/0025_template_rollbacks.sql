-- Up Migration

-- A template rollback removes the roles its apply created (the built-in directory's deleteRole).
GRANT DELETE ON directory_roles TO tenure_app;

-- Read model of each tenant's rollback (`rollout/<rolloutId>/<tenantId>/rollback`), written by its
-- workflow's activities (newest revision wins): one per apply, so a second request answers this one.
CREATE TABLE template_rollbacks (
  tenant_id    uuid NOT NULL REFERENCES tenants (id),
  rollout_id   uuid NOT NULL,
  workflow_id  text NOT NULL,
  snapshot_id  uuid NOT NULL,
  status       text NOT NULL
    CHECK (status IN ('restoring', 'verifying', 'rolled_back', 'rolled_back_with_conflicts', 'failed')),
  view         jsonb NOT NULL,
  revision     integer NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, rollout_id),
  FOREIGN KEY (tenant_id, rollout_id) REFERENCES template_applies (tenant_id, rollout_id)
);
CREATE INDEX template_rollbacks_rollout ON template_rollbacks (rollout_id);

-- Read model of a whole rollout's rollback (`rollout/<rolloutId>/rollback`), MSP-wide.
CREATE TABLE rollout_rollbacks (
  rollout_id   uuid PRIMARY KEY,
  workflow_id  text NOT NULL,
  status       text NOT NULL CHECK (status IN ('running', 'completed')),
  view         jsonb NOT NULL,
  revision     integer NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- The applies of a rollout, for its rollback (MSP scope, by rollout).
CREATE INDEX template_applies_rollout ON template_applies (rollout_id, tenant_id);

GRANT SELECT, INSERT, UPDATE ON template_rollbacks, rollout_rollbacks TO tenure_app;

ALTER TABLE template_rollbacks ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON template_rollbacks TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());
ALTER TABLE rollout_rollbacks ENABLE ROW LEVEL SECURITY;
CREATE POLICY msp_only ON rollout_rollbacks TO tenure_app USING (tenure_msp_scope()) WITH CHECK (tenure_msp_scope());

-- Down Migration
DROP TABLE rollout_rollbacks, template_rollbacks;
DROP INDEX template_applies_rollout;
REVOKE DELETE ON directory_roles FROM tenure_app;
