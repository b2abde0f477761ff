-- Up Migration

-- A remote action whose approvals no longer make its quorum when it is about to run (an approver
-- unbound or disabled since approving) ends `refused`: nothing is done on the target.
ALTER TABLE remote_actions DROP CONSTRAINT remote_actions_status_check;
ALTER TABLE remote_actions ADD CONSTRAINT remote_actions_status_check
  CHECK (status IN ('pending_approval', 'executing', 'completed', 'failed', 'refused', 'denied', 'cancelled', 'expired'));

-- Down Migration
ALTER TABLE remote_actions DROP CONSTRAINT remote_actions_status_check;
ALTER TABLE remote_actions ADD CONSTRAINT remote_actions_status_check
  CHECK (status IN ('pending_approval', 'executing', 'completed', 'failed', 'denied', 'cancelled', 'expired'));
