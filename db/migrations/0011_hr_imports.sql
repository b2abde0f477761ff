-- Up Migration

-- Bulk HR event imports as durable jobs (workflow import/<tenant>/<importId>). The upload stores
-- every row here before the workflow starts, so a client that disconnects after the 202 loses
-- nothing; the workflow's activities submit the pending rows in batches and write each row's
-- result with the job's counters in one transaction, so a worker that crashes resumes at the
-- first row still pending.
CREATE TABLE hr_imports (
  tenant_id        uuid NOT NULL REFERENCES tenants (id),
  import_id        uuid NOT NULL,
  workflow_id      text NOT NULL,
  format           text NOT NULL CHECK (format IN ('csv', 'ndjson', 'rows')),
  status           text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'completed')),
  -- The policy version current at upload: it validated the rows and decides each of them.
  policy_version   integer NOT NULL,
  submitted_by     text NOT NULL,
  -- Who uploaded it and on what authority: the rows are submitted, and the job audited, as them.
  actor            jsonb NOT NULL,
  authority        jsonb NOT NULL,
  rows_total       integer NOT NULL CHECK (rows_total >= 0),
  rows_accepted    integer NOT NULL DEFAULT 0,
  rows_superseded  integer NOT NULL DEFAULT 0,
  rows_duplicate   integer NOT NULL DEFAULT 0,
  rows_invalid     integer NOT NULL DEFAULT 0,
  rows_rejected    integer NOT NULL DEFAULT 0,
  created_at       timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  completed_at     timestamptz,
  updated_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, import_id)
);
CREATE INDEX hr_imports_recent ON hr_imports (tenant_id, created_at DESC, import_id DESC);

CREATE TABLE hr_import_rows (
  tenant_id    uuid NOT NULL,
  import_id    uuid NOT NULL,
  row_number   integer NOT NULL CHECK (row_number > 0),
  event_id     text,
  person_id    text,
  status       text NOT NULL CHECK (status IN ('pending', 'accepted', 'superseded', 'duplicate', 'invalid', 'rejected')),
  -- The validated event while the row is pending; cleared with its result (the HR event register
  -- keeps the body, and erasure scrubs it there).
  body         jsonb,
  issues       jsonb NOT NULL DEFAULT '[]',
  error        jsonb,
  -- Submissions started: above 1, an earlier attempt may have been the one the register saw first.
  attempts     integer NOT NULL DEFAULT 0,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, import_id, row_number),
  FOREIGN KEY (tenant_id, import_id) REFERENCES hr_imports (tenant_id, import_id) ON DELETE CASCADE,
  CHECK (status <> 'pending' OR body IS NOT NULL)
);
CREATE INDEX hr_import_rows_pending ON hr_import_rows (tenant_id, import_id, row_number) WHERE status = 'pending';

-- DELETE only takes back an upload whose workflow could not be started.
GRANT SELECT, INSERT, UPDATE, DELETE ON hr_imports, hr_import_rows TO tenure_app;

ALTER TABLE hr_imports ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON hr_imports TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());
ALTER TABLE hr_import_rows ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON hr_import_rows TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());

-- Down Migration
DROP TABLE hr_import_rows, hr_imports;
