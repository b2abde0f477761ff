-- Up Migration

-- The role the service runs as (pool connections start with `-c role=tenure_app`). It owns no
-- table and cannot bypass row-level security; the login that runs migrations owns the tables.
-- Roles are cluster-wide, so creation tolerates a concurrent migration in another database.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenure_app') THEN
    BEGIN
      CREATE ROLE tenure_app NOLOGIN NOBYPASSRLS;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
  IF NOT pg_has_role(current_user, 'tenure_app', 'MEMBER') THEN
    EXECUTE format('GRANT tenure_app TO %I', current_user);
  END IF;
END $$;

GRANT USAGE ON SCHEMA public TO tenure_app;
GRANT SELECT, INSERT ON diagnostic_pings TO tenure_app;

-- Tenant context of the current transaction, set by the data-access layer (db/scope.ts).
CREATE FUNCTION tenure_current_tenant() RETURNS text LANGUAGE sql STABLE AS
  $$ SELECT nullif(current_setting('tenure.tenant_id', true), '') $$;
-- 'on' when the transaction acts MSP-wide (authentication, MSP administration).
CREATE FUNCTION tenure_msp_scope() RETURNS boolean LANGUAGE sql STABLE AS
  $$ SELECT coalesce(current_setting('tenure.msp_scope', true), '') = 'on' $$;

CREATE TABLE tenants (
  id          uuid PRIMARY KEY,
  slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
  name        text NOT NULL,
  status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  created_by  text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Tenant settings and policies, one immutable row per version.
CREATE TABLE tenant_policies (
  tenant_id   uuid NOT NULL REFERENCES tenants (id),
  version     integer NOT NULL CHECK (version > 0),
  document    jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  created_by  text NOT NULL,
  PRIMARY KEY (tenant_id, version)
);

CREATE TABLE actors (
  id              uuid PRIMARY KEY,
  kind            text NOT NULL CHECK (kind IN ('msp_staff', 'tenant_staff', 'service_account')),
  display_name    text NOT NULL,
  email           text,
  home_tenant_id  uuid REFERENCES tenants (id),
  oidc_subject    text UNIQUE,
  status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  created_by      text NOT NULL,
  CHECK ((kind = 'tenant_staff') = (home_tenant_id IS NOT NULL))
);

CREATE TABLE role_bindings (
  id          uuid PRIMARY KEY,
  actor_id    uuid NOT NULL REFERENCES actors (id),
  role        text NOT NULL CHECK (role IN ('msp_admin', 'operator', 'tenant_approver', 'tenant_reviewer', 'template_owner', 'auditor', 'hr_integration')),
  tenant_id   uuid REFERENCES tenants (id), -- NULL: MSP-wide
  created_at  timestamptz NOT NULL DEFAULT now(),
  created_by  text NOT NULL,
  UNIQUE NULLS NOT DISTINCT (actor_id, role, tenant_id)
);
CREATE INDEX role_bindings_tenant ON role_bindings (tenant_id);

-- API tokens are kept only as SHA-256 of the secret; `prefix` lets people tell them apart.
CREATE TABLE api_tokens (
  id            uuid PRIMARY KEY,
  actor_id      uuid NOT NULL REFERENCES actors (id),
  name          text NOT NULL,
  token_hash    bytea NOT NULL UNIQUE,
  prefix        text NOT NULL,
  expires_at    timestamptz,
  revoked_at    timestamptz,
  last_used_at  timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  created_by    text NOT NULL
);
CREATE INDEX api_tokens_actor ON api_tokens (actor_id);

-- Audit evidence: one hash chain per tenant (tenant_id = the tenant's id) and one for the MSP
-- (tenant_id = 'msp'). The head row serialises appends per chain, so seq is gapless.
CREATE TABLE audit_chain_heads (
  tenant_id  text PRIMARY KEY,
  seq        bigint NOT NULL,
  hash       text NOT NULL
);

CREATE TABLE audit_events (
  tenant_id    text NOT NULL,
  seq          bigint NOT NULL CHECK (seq > 0),
  event_id     uuid NOT NULL UNIQUE,
  occurred_at  timestamptz NOT NULL,
  actor_id     text NOT NULL,
  actor_type   text NOT NULL,
  action       text NOT NULL,
  target_type  text,
  target_id    text,
  authority    jsonb NOT NULL,
  workflow_id  text,
  run_id       text,
  payload      jsonb NOT NULL,
  prev_hash    text NOT NULL,
  hash         text NOT NULL,
  PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_events_time ON audit_events (tenant_id, occurred_at);
CREATE INDEX audit_events_action ON audit_events (tenant_id, action, seq);
CREATE INDEX audit_events_actor ON audit_events (tenant_id, actor_id, seq);
CREATE INDEX audit_events_target ON audit_events (tenant_id, target_id, seq);
CREATE INDEX audit_events_workflow ON audit_events (tenant_id, workflow_id, seq);

-- Append-only for everyone, the owner included.
CREATE FUNCTION audit_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();

GRANT SELECT, INSERT, UPDATE ON tenants TO tenure_app;
GRANT SELECT, INSERT ON tenant_policies TO tenure_app;
GRANT SELECT, INSERT, UPDATE ON actors TO tenure_app;
GRANT SELECT, INSERT, DELETE ON role_bindings TO tenure_app;
GRANT SELECT, INSERT, UPDATE ON api_tokens TO tenure_app;
GRANT SELECT, INSERT, UPDATE ON audit_chain_heads TO tenure_app;
GRANT SELECT, INSERT ON audit_events TO tenure_app;

-- Row-level security: a transaction sees the rows of its own tenant, or all rows when it acts
-- MSP-wide. A query that forgets its tenant filter still cannot read another tenant's rows.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON tenants TO tenure_app
  USING (tenure_msp_scope() OR id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR id::text = tenure_current_tenant());

ALTER TABLE tenant_policies ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON tenant_policies TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());

ALTER TABLE actors ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON actors TO tenure_app
  USING (tenure_msp_scope() OR home_tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope());

ALTER TABLE role_bindings ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON role_bindings TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope());

ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY msp_only ON api_tokens TO tenure_app
  USING (tenure_msp_scope()) WITH CHECK (tenure_msp_scope());

ALTER TABLE audit_chain_heads ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON audit_chain_heads TO tenure_app
  USING (tenure_msp_scope() OR tenant_id = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id = tenure_current_tenant());

ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON audit_events TO tenure_app
  USING (tenure_msp_scope() OR tenant_id = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id = tenure_current_tenant());

-- Down Migration
DROP TABLE audit_events, audit_chain_heads, api_tokens, role_bindings, actors, tenant_policies, tenants;
DROP FUNCTION audit_events_refuse_change(), tenure_msp_scope(), tenure_current_tenant();
