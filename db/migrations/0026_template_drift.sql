-- Up Migration

-- The parameter values the applied version was rendered with: drift compares the tenant with
-- exactly what was applied (a newer assignment waiting to be applied may carry other values).
ALTER TABLE template_assignments ADD COLUMN applied_parameters jsonb;
UPDATE template_assignments SET applied_parameters = parameters WHERE applied_version IS NOT NULL;

-- Each tenant's last drift check (what it compared against, when, and why it could not run).
CREATE TABLE template_drift_state (
  tenant_id    uuid PRIMARY KEY REFERENCES tenants (id),
  template_id  uuid,
  version      integer,
  checked_at   timestamptz,
  error        text,
  error_at     timestamptz
);

-- A difference between the tenant's directory or policy and the version applied to it, one row per
-- path while it lasts: first seen once, last seen at every check that still finds it, resolved when
-- a check no longer does (or a remediation verified it gone).
CREATE TABLE template_drift_items (
  id                     uuid PRIMARY KEY,
  tenant_id              uuid NOT NULL REFERENCES tenants (id),
  template_id            uuid NOT NULL,
  version                integer NOT NULL,
  path                   text NOT NULL,
  area                   text NOT NULL CHECK (area IN ('directory.roles', 'directory.settings', 'policy')),
  expected               jsonb,
  actual                 jsonb,
  mode                   text NOT NULL CHECK (mode IN ('report', 'alert', 'remediate')),
  first_seen_at          timestamptz NOT NULL,
  last_seen_at           timestamptz NOT NULL,
  resolved_at            timestamptz,
  resolution             text CHECK (resolution IN ('cleared', 'remediated')),
  alerted_at             timestamptz,
  remediation_failed_at  timestamptz,
  remediation_error      text,
  CHECK ((resolved_at IS NULL) = (resolution IS NULL))
);
CREATE UNIQUE INDEX template_drift_items_open ON template_drift_items (tenant_id, path) WHERE resolved_at IS NULL;
CREATE INDEX template_drift_items_tenant ON template_drift_items (tenant_id, first_seen_at DESC);

-- A deviation the tenant accepts for a while: created by an operator or the tenant's approver,
-- approved by another of the tenant's own approvers, and always ending (expiry required, bounded).
CREATE TABLE template_drift_exceptions (
  id                  uuid PRIMARY KEY,
  tenant_id           uuid NOT NULL REFERENCES tenants (id),
  path                text NOT NULL,
  owner               text NOT NULL,
  justification       text NOT NULL,
  expires_at          timestamptz NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now(),
  created_by          text NOT NULL,
  approved_at         timestamptz,
  approved_by         text,
  ended_at            timestamptz,
  ended_by            text,
  end_reason          text,
  -- When a drift check recorded that the approved exception ran out (audited once).
  expiry_recorded_at  timestamptz,
  CHECK (approved_by IS NULL OR approved_by <> created_by),
  CHECK (expires_at > created_at AND expires_at <= created_at + interval '366 days')
);
CREATE INDEX template_drift_exceptions_tenant ON template_drift_exceptions (tenant_id, created_at DESC);

GRANT SELECT, INSERT, UPDATE ON template_drift_state, template_drift_items, template_drift_exceptions TO tenure_app;

ALTER TABLE template_drift_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON template_drift_state TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());
ALTER TABLE template_drift_items ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON template_drift_items TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());
ALTER TABLE template_drift_exceptions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON template_drift_exceptions TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());

-- Down Migration
DROP TABLE template_drift_exceptions, template_drift_items, template_drift_state;
ALTER TABLE template_assignments DROP COLUMN applied_parameters;
