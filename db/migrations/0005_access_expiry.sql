-- Up Migration

-- Expiry enforced by the target as a backstop. A grant's entitlement carries the end of its
-- window, and the membership it explains carries the latest end among the open entitlements
-- (none when any of them, e.g. a birthright, has no end). The built-in directory stops counting
-- a membership once that time has passed, so access ends on time even while the workflow that
-- removes it is delayed (a crashed worker, a backlog); the workflow still removes and verifies.
ALTER TABLE entitlements ADD COLUMN expires_at timestamptz;
ALTER TABLE directory_memberships ADD COLUMN expires_at timestamptz;
-- The membership's end moves with extensions and with overlapping grants ending.
GRANT UPDATE (expires_at) ON directory_memberships TO tenure_app;

-- Down Migration
REVOKE UPDATE (expires_at) ON directory_memberships FROM tenure_app;
ALTER TABLE directory_memberships DROP COLUMN expires_at;
ALTER TABLE entitlements DROP COLUMN expires_at;
