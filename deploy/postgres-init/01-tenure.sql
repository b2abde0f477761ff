-- Runs once, on an empty data volume (docker-entrypoint-initdb.d).
-- Tenure gets its own non-superuser role and database; Temporal's databases
-- (temporal, temporal_visibility) are created by the temporal-schema job.
-- Credentials must match DATABASE_URL in docker-compose.yml.
CREATE ROLE tenure WITH LOGIN PASSWORD 'tenure';
CREATE DATABASE tenure OWNER tenure;
-- Only the owner (and superusers) may connect.
REVOKE ALL ON DATABASE tenure FROM PUBLIC;
-- The role the service switches to on every connection (see db/pool.ts): it owns no table and
-- cannot bypass row-level security. Created here because `tenure` may not create roles.
CREATE ROLE tenure_app NOLOGIN NOBYPASSRLS;
GRANT tenure_app TO tenure;
