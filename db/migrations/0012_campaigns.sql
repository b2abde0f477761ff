-- Up Migration

-- Recertification campaigns. Definitions and runs belong to the MSP (it proposes and operates);
-- each tenant's review, its items, assignments and decisions belong to that tenant, under its
-- row-level security, so a reviewer's query can only ever see its own tenant's items.

-- A definition and its immutable versions; a run is decided by the version it started with.
CREATE TABLE campaign_definitions (
  id               uuid PRIMARY KEY,
  name             text NOT NULL,
  current_version  integer NOT NULL CHECK (current_version > 0),
  -- The last run number handed out; runs are `campaign/<id>/<runNo>`.
  last_run_no      integer NOT NULL DEFAULT 0,
  created_at       timestamptz NOT NULL DEFAULT now(),
  created_by       text NOT NULL,
  updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE campaign_definition_versions (
  definition_id  uuid NOT NULL REFERENCES campaign_definitions (id),
  version        integer NOT NULL CHECK (version > 0),
  document       jsonb NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  created_by     text NOT NULL,
  PRIMARY KEY (definition_id, version)
);

-- One row per run; progress counters move as the tenants' reviews report in.
CREATE TABLE campaign_runs (
  id                  uuid PRIMARY KEY,
  definition_id       uuid NOT NULL REFERENCES campaign_definitions (id),
  run_no              integer NOT NULL,
  definition_version  integer NOT NULL,
  workflow_id         text NOT NULL,
  status              text NOT NULL CHECK (status IN ('starting', 'running', 'completed')),
  started_by          text NOT NULL,
  trigger             text NOT NULL CHECK (trigger IN ('api', 'schedule')),
  tenant_count        integer,
  materialised_count  integer NOT NULL DEFAULT 0,
  completed_count     integer NOT NULL DEFAULT 0,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  UNIQUE (definition_id, run_no)
);

-- The tenants a run reviews, fixed when it starts; the run workflow pages through them.
CREATE TABLE campaign_run_tenants (
  run_id     uuid NOT NULL REFERENCES campaign_runs (id),
  tenant_id  uuid NOT NULL REFERENCES tenants (id),
  PRIMARY KEY (run_id, tenant_id)
);

-- One tenant's review in one run (workflow `review/<tenant>/<runId>`).
CREATE TABLE reviews (
  tenant_id         uuid NOT NULL REFERENCES tenants (id),
  run_id            uuid NOT NULL,
  definition_id     uuid NOT NULL,
  workflow_id       text NOT NULL,
  -- Decisions are taken only while `open`; closing a stage moves it on under the row lock.
  status            text NOT NULL CHECK (status IN ('materialising', 'open', 'settling', 'remediating', 'completed')),
  stage             integer NOT NULL DEFAULT 0,
  stage_count       integer NOT NULL,
  stage_closes_at   timestamptz,
  item_count        integer NOT NULL DEFAULT 0,
  settings          jsonb NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  completed_at      timestamptz,
  PRIMARY KEY (tenant_id, run_id)
);

-- What is reviewed: one subject's hold on one role, with every source that explains it.
CREATE TABLE review_items (
  tenant_id              uuid NOT NULL REFERENCES tenants (id),
  id                     uuid NOT NULL,
  run_id                 uuid NOT NULL,
  subject_id             text NOT NULL,
  subject_status         text NOT NULL,
  role                   text NOT NULL,
  privileged             boolean NOT NULL,
  sources                jsonb NOT NULL,
  last_activity_at       timestamptz,
  break_glass            boolean NOT NULL DEFAULT false,
  recommendation         text NOT NULL CHECK (recommendation IN ('keep', 'revoke')),
  recommendation_reason  text NOT NULL,
  -- The stage that decides it now; outcome set once a stage or the close decides it.
  stage                  integer NOT NULL DEFAULT 1,
  outcome                text CHECK (outcome IN ('keep', 'revoke', 'held')),
  outcome_by             text CHECK (outcome_by IN ('decision', 'non_response')),
  outcome_reason         text,
  result                 text CHECK (result IN ('kept', 'held', 'applied_verified', 'already_absent', 'needs_rule_change', 'retrying')),
  result_detail          jsonb,
  result_at              timestamptz,
  created_at             timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, run_id, subject_id, role)
);
CREATE INDEX review_items_run ON review_items (tenant_id, run_id, stage) WHERE outcome IS NULL;
CREATE INDEX review_items_remediation ON review_items (tenant_id, run_id) WHERE outcome = 'revoke' AND (result IS NULL OR result = 'retrying');

-- Who reviews an item at which stage (the tenant's own people only).
CREATE TABLE review_assignments (
  tenant_id    uuid NOT NULL REFERENCES tenants (id),
  item_id      uuid NOT NULL,
  stage        integer NOT NULL,
  reviewer_id  uuid NOT NULL REFERENCES actors (id),
  via          text NOT NULL,
  PRIMARY KEY (tenant_id, item_id, stage, reviewer_id)
);
CREATE INDEX review_assignments_inbox ON review_assignments (tenant_id, reviewer_id, item_id);

-- A reviewer's current decision on an item at a stage: changed until the stage closes, the last
-- one wins; every change is an audit event, so the history is in the tenant's chain.
CREATE TABLE review_decisions (
  tenant_id      uuid NOT NULL REFERENCES tenants (id),
  item_id        uuid NOT NULL,
  stage          integer NOT NULL,
  reviewer_id    uuid NOT NULL,
  decision       text NOT NULL CHECK (decision IN ('keep', 'revoke')),
  justification  text,
  first_at       timestamptz NOT NULL DEFAULT now(),
  decided_at     timestamptz NOT NULL DEFAULT now(),
  changes        integer NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, item_id, stage, reviewer_id)
);

-- The evidence a tenant's review leaves: the whole report as it was hashed, its hash recorded in
-- the tenant's audit chain. Append-only, and it outlives the campaign.
CREATE TABLE review_reports (
  tenant_id   uuid NOT NULL REFERENCES tenants (id),
  run_id      uuid NOT NULL,
  report      jsonb NOT NULL,
  hash        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, run_id)
);

GRANT SELECT, INSERT ON review_reports TO tenure_app;
GRANT SELECT, INSERT, UPDATE ON campaign_definitions, campaign_runs TO tenure_app;
GRANT SELECT, INSERT ON campaign_definition_versions, campaign_run_tenants TO tenure_app;
GRANT SELECT, INSERT, UPDATE ON reviews, review_items, review_decisions TO tenure_app;
GRANT SELECT, INSERT ON review_assignments TO tenure_app;

ALTER TABLE campaign_definitions ENABLE ROW LEVEL SECURITY;
CREATE POLICY msp_only ON campaign_definitions TO tenure_app USING (tenure_msp_scope()) WITH CHECK (tenure_msp_scope());
ALTER TABLE campaign_definition_versions ENABLE ROW LEVEL SECURITY;
CREATE POLICY msp_only ON campaign_definition_versions TO tenure_app USING (tenure_msp_scope()) WITH CHECK (tenure_msp_scope());
ALTER TABLE campaign_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY msp_only ON campaign_runs TO tenure_app USING (tenure_msp_scope()) WITH CHECK (tenure_msp_scope());
ALTER TABLE campaign_run_tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY msp_only ON campaign_run_tenants TO tenure_app USING (tenure_msp_scope()) WITH CHECK (tenure_msp_scope());

ALTER TABLE reviews ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON reviews TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());
ALTER TABLE review_items ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON review_items TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());
ALTER TABLE review_assignments ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON review_assignments TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());
ALTER TABLE review_reports ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON review_reports TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());
ALTER TABLE review_decisions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON review_decisions TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());

-- Down Migration
DROP TABLE review_reports, review_decisions, review_assignments, review_items, reviews, campaign_run_tenants, campaign_runs,
  campaign_definition_versions, campaign_definitions;
