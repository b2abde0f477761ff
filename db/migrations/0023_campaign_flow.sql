-- Up Migration

-- Campaign flow: a run or a tenant's review can be cancelled; a review's last stage can be
-- reiterated for its non-responders (a round counter); an assignment can be removed (reassigned
-- by MSP staff, replaced by an escalation) and is kept for the evidence; and the notices a
-- reviewer gets (reminders, escalations, reassignments, nudges, reiterations) are rows, shown in
-- the reviewer's inbox and sent through the tenant's signed webhook.

ALTER TABLE campaign_runs DROP CONSTRAINT campaign_runs_status_check,
  ADD CONSTRAINT campaign_runs_status_check CHECK (status IN ('starting', 'running', 'completed', 'cancelled'));
ALTER TABLE campaign_runs ADD COLUMN cancelled_at timestamptz, ADD COLUMN cancelled_by text;

ALTER TABLE reviews DROP CONSTRAINT reviews_status_check,
  ADD CONSTRAINT reviews_status_check
    CHECK (status IN ('materialising', 'open', 'settling', 'remediating', 'completed', 'cancelled'));
-- 0 for a stage's first opening; n for the n-th reiteration of the last stage.
ALTER TABLE reviews ADD COLUMN round integer NOT NULL DEFAULT 0, ADD COLUMN cancelled_at timestamptz;

ALTER TABLE review_assignments ADD COLUMN assigned_at timestamptz NOT NULL DEFAULT now(),
  ADD COLUMN removed_at timestamptz, ADD COLUMN removed_by text;
GRANT UPDATE ON review_assignments TO tenure_app;

CREATE TABLE review_notices (
  tenant_id    uuid NOT NULL REFERENCES tenants (id),
  -- Derived from the workflow's event id and the reviewer, so a retried activity writes it once;
  -- also the webhook event id, so it is delivered once.
  id           uuid NOT NULL,
  -- The workflow event that wrote it: a retried activity finds the notices it wrote.
  event_id     uuid NOT NULL,
  run_id       uuid NOT NULL,
  stage        integer NOT NULL,
  reviewer_id  uuid NOT NULL REFERENCES actors (id),
  kind         text NOT NULL CHECK (kind IN ('reminder', 'escalation', 'reassignment', 'nudge', 'reiteration')),
  -- Items waiting for this reviewer's decision when the notice was written.
  items        integer NOT NULL,
  closes_at    timestamptz,
  actor_id     text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX review_notices_inbox ON review_notices (tenant_id, reviewer_id, created_at);
CREATE INDEX review_notices_event ON review_notices (tenant_id, event_id);
GRANT SELECT, INSERT ON review_notices TO tenure_app;
ALTER TABLE review_notices ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_scope ON review_notices TO tenure_app
  USING (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant())
  WITH CHECK (tenure_msp_scope() OR tenant_id::text = tenure_current_tenant());

-- Down Migration
DROP TABLE review_notices;
REVOKE UPDATE ON review_assignments FROM tenure_app;
ALTER TABLE review_assignments DROP COLUMN removed_by, DROP COLUMN removed_at, DROP COLUMN assigned_at;
ALTER TABLE reviews DROP COLUMN cancelled_at, DROP COLUMN round;
ALTER TABLE reviews DROP CONSTRAINT reviews_status_check,
  ADD CONSTRAINT reviews_status_check CHECK (status IN ('materialising', 'open', 'settling', 'remediating', 'completed'));
ALTER TABLE campaign_runs DROP COLUMN cancelled_by, DROP COLUMN cancelled_at;
ALTER TABLE campaign_runs DROP CONSTRAINT campaign_runs_status_check,
  ADD CONSTRAINT campaign_runs_status_check CHECK (status IN ('starting', 'running', 'completed'));
