-- Up Migration

-- The built-in directory: the default target system for grants and lifecycles (LDAP, SCIM or a
-- vendor API can replace it per tenant behind core/directory.ts). Ids are the tenant's own, so
-- they are text and unique only within a tenant.
CREATE TABLE directory_users (
  tenant_id     uuid NOT NULL REFERENCES tenants (id),
  id            text NOT NULL,
  username      text NOT NULL,
  display_name  text NOT NULL,
  email         text,
  attributes    jsonb NOT NULL DEFAULT '{}',
  status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'deleted')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, username)
);

-- Roles and groups are one concept here: a named set of members.
CREATE TABLE directory_roles (
  tenant_id    uuid NOT NULL REFERENCES tenants (id),
  name         text NOT NULL,
  description  text NOT NULL DEFAULT '',
  -- Admin-level roles: what the standing-privilege and drift reports look at.
  privileged   boolean NOT NULL DEFAULT false,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, name)
);

CREATE TABLE directory_memberships (
  tenant_id    uuid NOT NULL REFERENCES tenants (id),
  user_id      text NOT NULL,
  role         text NOT NULL,
  assigned_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id, role),
  FOREIGN KEY (tenant_id, user_id) REFERENCES directory_users (tenant_id, id),
  FOREIGN KEY (tenant_id, role) REFERENCES directory_roles (tenant_id, name)
);
-- Members of a role (reviews, "never strand a tenant without an admin").
CREATE INDEX directory_memberships_role ON directory_memberships (tenant_id, role);

CREATE TABLE directory_sessions (
  tenant_id   uuid NOT NULL REFERENCES tenants (id),
  id          uuid NOT NULL,
  user_id     text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES directory_users (tenant_id, id)
);
CREATE INDEX directory_sessions_live ON directory_sessions (tenant_id, user_id) WHERE revoked_at IS NULL;

-- The entitlement ledger: why each access exists. A role stays on the target while at least one
-- entitlement for (subject, role) is open, so overlapping sources do not cut each other short.
-- subject_id has no foreign key: the target may be a connector whose users live elsewhere.
CREATE TABLE entitlements (
  tenant_id    uuid NOT NULL REFERENCES tenants (id),
  id           uuid PRIMARY KEY,
  subject_id   text NOT NULL,
  role         text NOT NULL,
  source_type  text NOT NULL CHECK (source_type IN ('grant', 'birthright', 'template', 'manual')),
  source_id    text NOT NULL,
  granted_at   timestamptz NOT NULL DEFAULT now(),
  ended_at     timestamptz,
  end_reason   text,
  CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);
-- One open entitlement per source: a retried open finds the existing row instead of adding one.
CREATE UNIQUE INDEX entitlements_one_open_per_source ON entitlements (tenant_id, subject_id, role, source_type, source_id)
  WHERE ended_at IS NULL;
CREATE INDEX entitlements_open ON entitlements (tenant_id, subject_id, role) WHERE ended_at IS NULL;
-- History of one source (e.g. a grant's entitlement after it ended), and "what did rule X give".
CREATE INDEX entitlements_source ON entitlements (tenant_id, source_type, source_id);

-- Memberships are removed, sessions revoked (kept as evidence), entitlements closed (never deleted).
GRANT SELECT, INSERT, UPDATE ON directory_users TO tenure_app;
GRANT SELECT, INSERT, UPDATE ON directory_roles TO tenure_app;
GRANT SELECT, INSERT, DELETE ON directory_memberships TO tenure_app;
GRANT SELECT, INSERT, UPDATE ON directory_sessions TO tenure_app;
GRANT SELECT, INSERT, UPDATE ON entitlements TO tenure_app;

ALTER TABLE directory_users ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON directory_users TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());

ALTER TABLE directory_roles ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON directory_roles TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());

ALTER TABLE directory_memberships ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON directory_memberships TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());

ALTER TABLE directory_sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON directory_sessions TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());

ALTER TABLE entitlements ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON entitlements TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());

-- Down Migration
DROP TABLE entitlements, directory_sessions, directory_memberships, directory_roles, directory_users;
