-- Up Migration

-- Rollouts (`rollout/<id>`): one approved template version applied to tenants wave by wave.
-- The MSP's own rows; the view is the workflow's progress (newest revision wins).
CREATE TABLE template_rollouts (
  id               uuid PRIMARY KEY,
  workflow_id      text NOT NULL,
  template_id      uuid NOT NULL,
  version          integer NOT NULL,
  status           text NOT NULL CHECK (status IN ('running', 'baking', 'awaiting_wave_approval', 'paused', 'halted',
                                                   'cancelling', 'completed', 'cancelled')),
  view             jsonb NOT NULL,
  -- The workflow's input as first started: a retry of the request starts exactly this again.
  input            jsonb NOT NULL,
  revision         integer NOT NULL,
  created_by       text NOT NULL,
  idempotency_key  text,
  request_hash     text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (template_id, version) REFERENCES template_versions (template_id, version),
  UNIQUE (created_by, idempotency_key)
);
CREATE INDEX template_rollouts_created ON template_rollouts (created_at DESC);

-- Each tenant of a rollout, in its wave and position, with what its apply starts from (the pin's
-- parameter values and the gate's timeout, fixed at creation). `state` is the rollout's side:
-- pending until started, or passed over / cancelled before it started; the apply's own status is
-- in template_applies (same tenant and rollout id).
CREATE TABLE template_rollout_tenants (
  rollout_id        uuid NOT NULL REFERENCES template_rollouts (id),
  tenant_id         uuid NOT NULL REFERENCES tenants (id),
  wave              integer NOT NULL CHECK (wave >= 0),
  position          integer NOT NULL CHECK (position > 0),
  parameters        jsonb NOT NULL,
  approval_timeout_seconds integer NOT NULL CHECK (approval_timeout_seconds > 0),
  state             text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'passed_over', 'cancelled')),
  PRIMARY KEY (rollout_id, tenant_id),
  UNIQUE (rollout_id, wave, position)
);
CREATE INDEX template_rollout_tenants_tenant ON template_rollout_tenants (tenant_id);

-- DELETE only takes back a rollout whose workflow never started (usecases/rollouts.ts).
GRANT SELECT, INSERT, UPDATE, DELETE ON template_rollouts, template_rollout_tenants TO tenure_app;

ALTER TABLE template_rollouts ENABLE ROW LEVEL SECURITY;
CREATE POLICY msp_only ON template_rollouts TO tenure_app USING (tenure_msp_scope()) WITH CHECK (tenure_msp_scope());
ALTER TABLE template_rollout_tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON template_rollout_tenants TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());

-- Down Migration
DROP TABLE template_rollout_tenants, template_rollouts;
