-- Up Migration

-- Read model of person lifecycle workflows (person/<tenant>/<personId>), written by the
-- workflow's own activities in the transaction of each step's audit event (newest version wins).
CREATE TABLE people (
  tenant_id          uuid NOT NULL REFERENCES tenants (id),
  person_id          text NOT NULL,
  workflow_id        text NOT NULL,
  status             text NOT NULL,
  attributes         jsonb NOT NULL DEFAULT '{}',
  policy_version     integer,
  last_event_id      text,
  last_effective_at  timestamptz,
  deletion_due_at    timestamptz,
  view               jsonb NOT NULL,
  version            integer NOT NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, person_id)
);
CREATE INDEX people_status ON people (tenant_id, status);

-- Every HR event received, unique per tenant by the HR system's event id: a re-sent id with
-- the same body is answered from the workflow's first receipt, with another body it is a 409.
CREATE TABLE hr_events (
  tenant_id       uuid NOT NULL REFERENCES tenants (id),
  event_id        text NOT NULL,
  person_id       text NOT NULL,
  type            text NOT NULL CHECK (type IN ('joiner', 'mover', 'leaver')),
  effective_at    timestamptz NOT NULL,
  body            jsonb NOT NULL,
  body_hash       text NOT NULL,
  policy_version  integer NOT NULL,
  -- received → accepted → applied; or superseded, cancelled, rejected.
  status          text NOT NULL DEFAULT 'received'
                    CHECK (status IN ('received', 'accepted', 'applied', 'superseded', 'cancelled', 'rejected')),
  status_reason   text,
  -- The workflow's first answer, returned again for a re-send of the same id.
  receipt         jsonb,
  submitted_by    text NOT NULL,
  received_at     timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX hr_events_person ON hr_events (tenant_id, person_id, received_at);

GRANT SELECT, INSERT, UPDATE ON people, hr_events TO tenure_app;

ALTER TABLE people ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON people TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());
ALTER TABLE hr_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON hr_events TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());

-- Down Migration
DROP TABLE hr_events, people;
