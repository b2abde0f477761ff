-- Up Migration

-- Read model of grant workflows, written by the workflow's own activities (newest version wins),
-- so lists and filters come from PostgreSQL rather than eventually consistent visibility.
CREATE TABLE grants (
  tenant_id               uuid NOT NULL REFERENCES tenants (id),
  grant_id                uuid NOT NULL,
  workflow_id             text NOT NULL,
  subject_id              text NOT NULL,
  role                    text NOT NULL,
  requester_id            uuid NOT NULL,
  status                  text NOT NULL,
  end_reason              text,
  start_at                timestamptz NOT NULL,
  end_at                  timestamptz NOT NULL,
  activated_at            timestamptz,
  ended_at                timestamptz,
  revocation_verified_at  timestamptz,
  policy_version          integer NOT NULL,
  view                    jsonb NOT NULL,
  version                 integer NOT NULL,
  idempotency_key         text,
  request_hash            text,
  -- The workflow input, so a retried request restarts the very same workflow.
  request_input           jsonb,
  created_at              timestamptz NOT NULL DEFAULT now(),
  updated_at              timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, grant_id),
  UNIQUE (tenant_id, requester_id, idempotency_key)
);
CREATE INDEX grants_status ON grants (tenant_id, status, end_at);
CREATE INDEX grants_subject ON grants (tenant_id, subject_id, role);
-- Fault checks and the expiry watch look across tenants for grants past their end.
CREATE INDEX grants_open_end ON grants (end_at) WHERE status IN ('active', 'revoking');

-- Per-tenant secret that signs webhook bodies (HMAC-SHA256); shown to MSP admins on request.
CREATE TABLE tenant_webhook_secrets (
  tenant_id   uuid PRIMARY KEY REFERENCES tenants (id),
  secret      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per webhook delivery, so a notification is sent once per event even across retries.
CREATE TABLE webhook_deliveries (
  tenant_id     uuid NOT NULL REFERENCES tenants (id),
  event_id      uuid NOT NULL,
  url           text NOT NULL,
  status        text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts      integer NOT NULL DEFAULT 0,
  last_error    text,
  delivered_at  timestamptz,
  PRIMARY KEY (tenant_id, event_id)
);

GRANT SELECT, INSERT, UPDATE ON grants, tenant_webhook_secrets, webhook_deliveries TO tenure_app;

ALTER TABLE grants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON grants TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());
ALTER TABLE tenant_webhook_secrets ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON tenant_webhook_secrets TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON webhook_deliveries TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());

-- Down Migration
DROP TABLE webhook_deliveries, tenant_webhook_secrets, grants;
