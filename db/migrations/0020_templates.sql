-- Up Migration

-- The built-in directory's security settings (core/directory/settings.ts), one row per tenant once
-- something sets them; a tenant without a row has the defaults of DEFAULT_DIRECTORY_SETTINGS.
CREATE TABLE directory_settings (
  tenant_id                     uuid PRIMARY KEY REFERENCES tenants (id),
  mfa_required                  boolean NOT NULL,
  password_min_length           integer NOT NULL,
  password_complexity           boolean NOT NULL,
  password_history              integer NOT NULL,
  password_max_age_days         integer NOT NULL,
  lockout_threshold             integer NOT NULL,
  lockout_duration_minutes      integer NOT NULL,
  session_lifetime_minutes      integer NOT NULL,
  session_idle_timeout_minutes  integer NOT NULL,
  updated_at                    timestamptz NOT NULL DEFAULT now()
);

-- Templates: the MSP's versioned baselines. A version is a controlled artefact
-- (draft → proposed → approved → deprecated); its document never changes once approved.
CREATE TABLE templates (
  id           uuid PRIMARY KEY,
  name         text NOT NULL UNIQUE,
  description  text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  created_by   text NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE template_versions (
  template_id    uuid NOT NULL REFERENCES templates (id),
  version        integer NOT NULL CHECK (version > 0),
  status         text NOT NULL CHECK (status IN ('draft', 'proposed', 'approved', 'deprecated')),
  document       jsonb NOT NULL,
  -- Everyone who wrote the document or proposed it: none of them may approve it.
  authors        text[] NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  created_by     text NOT NULL,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  proposed_at    timestamptz,
  proposed_by    text,
  approved_at    timestamptz,
  approved_by    text,
  deprecated_at  timestamptz,
  deprecated_by  text,
  comment        text,
  PRIMARY KEY (template_id, version),
  CHECK (status IN ('draft', 'proposed') OR (approved_by IS NOT NULL AND NOT approved_by = ANY (authors)))
);

-- Approved versions are immutable: only the move to deprecated may touch them, and nothing is deleted.
CREATE FUNCTION template_versions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'template versions are never deleted' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF OLD.status IN ('approved', 'deprecated') AND (
       NEW.document IS DISTINCT FROM OLD.document OR NEW.authors IS DISTINCT FROM OLD.authors
       OR NEW.approved_by IS DISTINCT FROM OLD.approved_by OR NEW.approved_at IS DISTINCT FROM OLD.approved_at
       OR NEW.status NOT IN ('approved', 'deprecated') OR (OLD.status = 'deprecated' AND NEW.status <> 'deprecated')) THEN
    RAISE EXCEPTION 'template version %/% is %: it cannot change', OLD.template_id, OLD.version, OLD.status
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
CREATE TRIGGER template_versions_immutable BEFORE UPDATE OR DELETE ON template_versions
  FOR EACH ROW EXECUTE FUNCTION template_versions_guard();

-- Each tenant's pin: the template and exact version assigned to it (with its parameter values),
-- and the version last applied to it (null until a rollout applies one).
CREATE TABLE template_assignments (
  tenant_id         uuid PRIMARY KEY REFERENCES tenants (id),
  template_id       uuid NOT NULL REFERENCES templates (id),
  version           integer NOT NULL,
  parameters        jsonb NOT NULL,
  assigned_at       timestamptz NOT NULL DEFAULT now(),
  assigned_by       text NOT NULL,
  applied_version   integer,
  applied_at        timestamptz,
  FOREIGN KEY (template_id, version) REFERENCES template_versions (template_id, version)
);
CREATE INDEX template_assignments_template ON template_assignments (template_id, version);

-- Read model of each tenant's apply (`rollout/<rolloutId>/<tenantId>`), written by its workflow's
-- activities (newest revision wins), with the plan it started from.
CREATE TABLE template_applies (
  tenant_id    uuid NOT NULL REFERENCES tenants (id),
  rollout_id   uuid NOT NULL,
  workflow_id  text NOT NULL,
  template_id  uuid NOT NULL,
  version      integer NOT NULL,
  status       text NOT NULL
    CHECK (status IN ('planning', 'awaiting_approval', 'applying', 'applied', 'skipped', 'denied', 'failed')),
  view         jsonb NOT NULL,
  plan         jsonb,
  revision     integer NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, rollout_id)
);

-- What a tenant held before an apply changed it (roles, security settings, policy version): what
-- a rollback restores. Written once per apply; never changed.
CREATE TABLE template_snapshots (
  tenant_id    uuid NOT NULL REFERENCES tenants (id),
  snapshot_id  uuid NOT NULL,
  rollout_id   uuid NOT NULL,
  state        jsonb NOT NULL,
  taken_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, snapshot_id)
);

GRANT SELECT, INSERT, UPDATE ON directory_settings, templates, template_versions, template_assignments, template_applies TO tenure_app;
GRANT SELECT, INSERT ON template_snapshots TO tenure_app;

ALTER TABLE directory_settings ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON directory_settings TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());
ALTER TABLE templates ENABLE ROW LEVEL SECURITY;
CREATE POLICY msp_only ON templates TO tenure_app USING (tenure_msp_scope()) WITH CHECK (tenure_msp_scope());
ALTER TABLE template_versions ENABLE ROW LEVEL SECURITY;
CREATE POLICY msp_only ON template_versions TO tenure_app USING (tenure_msp_scope()) WITH CHECK (tenure_msp_scope());
ALTER TABLE template_assignments ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON template_assignments TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());

ALTER TABLE template_applies ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON template_applies TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());
ALTER TABLE template_snapshots ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON template_snapshots TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());

-- Down Migration
DROP TABLE template_snapshots, template_applies, template_assignments;
DROP TRIGGER template_versions_immutable ON template_versions;
DROP FUNCTION template_versions_guard();
DROP TABLE template_versions, templates, directory_settings;
