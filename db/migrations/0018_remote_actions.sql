-- Up Migration

-- What the remote actions change in the built-in directory: a lockout after failed sign-ins
-- (lifted by unlock, distinct from a disabled account), a password the user must change at the
-- next sign-in, and enrolled second factors (removed by an MFA reset, kept as evidence).
ALTER TABLE directory_users
  ADD COLUMN locked_at timestamptz,
  ADD COLUMN password_reset_required boolean NOT NULL DEFAULT false;

CREATE TABLE directory_mfa_factors (
  tenant_id   uuid NOT NULL REFERENCES tenants (id),
  id          uuid NOT NULL,
  user_id     text NOT NULL,
  kind        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  removed_at  timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES directory_users (tenant_id, id)
);
CREATE INDEX directory_mfa_factors_live ON directory_mfa_factors (tenant_id, user_id) WHERE removed_at IS NULL;

-- Read model of remote-action workflows (unlock, MFA reset, …), written by the workflow's own
-- activities (newest version wins), so lists and filters come from PostgreSQL.
CREATE TABLE remote_actions (
  tenant_id        uuid NOT NULL REFERENCES tenants (id),
  action_id        uuid NOT NULL,
  workflow_id      text NOT NULL,
  action           text NOT NULL,
  subject_id       text NOT NULL,
  requester_id     uuid NOT NULL,
  status           text NOT NULL
    CHECK (status IN ('pending_approval', 'executing', 'completed', 'failed', 'denied', 'cancelled', 'expired')),
  policy_version   integer NOT NULL,
  view             jsonb NOT NULL,
  version          integer NOT NULL,
  idempotency_key  text,
  request_hash     text,
  -- The workflow input, so a retried request restarts the very same workflow.
  request_input    jsonb,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, action_id),
  UNIQUE (tenant_id, requester_id, idempotency_key)
);
CREATE INDEX remote_actions_list ON remote_actions (tenant_id, created_at DESC, action_id DESC);
CREATE INDEX remote_actions_subject ON remote_actions (tenant_id, subject_id);

-- Factors are marked removed, never deleted. DELETE on remote_actions only takes back a request
-- whose workflow never started (version 0).
GRANT SELECT, INSERT, UPDATE ON directory_mfa_factors TO tenure_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON remote_actions TO tenure_app;

ALTER TABLE directory_mfa_factors ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON directory_mfa_factors TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());
ALTER TABLE remote_actions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON remote_actions TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());

-- Down Migration
DROP TABLE remote_actions, directory_mfa_factors;
ALTER TABLE directory_users DROP COLUMN password_reset_required, DROP COLUMN locked_at;
