-- Up Migration

-- Written by the diagnostics ping workflow: proves that a workflow started through the API
-- reached a worker whose activities can write to this database.
CREATE TABLE diagnostic_pings (
  id           uuid PRIMARY KEY,
  message      text NOT NULL,
  workflow_id  text NOT NULL,
  run_id       text NOT NULL,
  recorded_at  timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE diagnostic_pings;
