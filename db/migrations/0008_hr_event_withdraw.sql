-- Up Migration

-- An HR event the person's lifecycle refuses (a mover for someone who never joined, an event
-- that does not fit the person's state) is answered 4xx and leaves nothing behind: its register
-- row, written before the workflow was asked, is deleted again.
GRANT DELETE ON hr_events TO tenure_app;

-- Down Migration
REVOKE DELETE ON hr_events FROM tenure_app;
