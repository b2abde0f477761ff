-- Up Migration

-- Tenants carry tags the MSP groups them by (a campaign's scope may name tags, with exclusions).
ALTER TABLE tenants ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
CREATE INDEX tenants_tags ON tenants USING gin (tags);

-- A review item says whether its holder is a service account (directory attribute serviceAccount = true).
ALTER TABLE review_items ADD COLUMN service_account boolean NOT NULL DEFAULT false;

-- Down Migration
ALTER TABLE review_items DROP COLUMN service_account;
DROP INDEX tenants_tags;
ALTER TABLE tenants DROP COLUMN tags;
