-- Up Migration

-- An early end (a revoke, a relinquish) closes access at the target before the grant's workflow
-- takes the request up (the workflow may be waiting for a worker). The entitlement stays open
-- until the workflow closes it, but from this moment its end is now and no later step may give
-- the access back: an activation is refused and an extension does not move the end.
ALTER TABLE entitlements ADD COLUMN end_requested_at timestamptz;

-- Down Migration
ALTER TABLE entitlements DROP COLUMN end_requested_at;
