-- Up Migration

-- A campaign definition can be deleted once no run of it is going: it leaves the list and takes
-- no more runs (its Schedule goes too), but the row stays, with who deleted it and when, because
-- its versions, runs, reviews and reports outlive it (evidence does not disappear with a campaign).
ALTER TABLE campaign_definitions ADD COLUMN deleted_at timestamptz, ADD COLUMN deleted_by text;

-- Down Migration
ALTER TABLE campaign_definitions DROP COLUMN deleted_at, DROP COLUMN deleted_by;
