-- Up Migration

-- A grant request whose workflow could not be started (Temporal unreachable) and that carries
-- no Idempotency-Key to retry it with is taken back: its read-model row, still at version 0
-- (nothing recorded yet), is deleted so it does not linger as a pending grant nobody runs.
GRANT DELETE ON grants TO tenure_app;

-- Down Migration
REVOKE DELETE ON grants FROM tenure_app;
