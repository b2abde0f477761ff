-- Up Migration

-- The expiry sweeper (core/directory/sweep.ts) asks, per tenant, which roles the ledger has ever
-- recorded and who holds each one now; both read the ledger by (tenant, role).
CREATE INDEX entitlements_role ON entitlements (tenant_id, role, subject_id);

-- Down Migration
DROP INDEX entitlements_role;
