-- Runs once, on an empty data volume (docker-entrypoint-initdb.d).
-- Tenure gets its own non-superuser role and database; Temporal's databases
-- (temporal, temporal_visibility) are created by the temporal-schema job.
-- Credentials must match DATABASE_URL in docker-compose.yml.
CREATE ROLE tenure WITH LOGIN PASSWORD 'tenure';
CREATE DATABASE tenure OWNER tenure;
-- Only the owner (and superusers) may connect.
REVOKE ALL ON DATABASE tenure FROM PUBLIC;
-- Row-level security binds the role tenure_app. The service logs in as tenure_service, a member
-- that owns no table and cannot bypass RLS (DATABASE_APP_URL); `tenure` (the owner) only migrates.
-- Created here because `tenure` may not create roles.
CREATE ROLE tenure_app NOLOGIN NOBYPASSRLS;
GRANT tenure_app TO tenure;
CREATE ROLE tenure_service WITH LOGIN NOBYPASSRLS PASSWORD 'tenure_service' IN ROLE tenure_app;
GRANT CONNECT ON DATABASE tenure TO tenure_service;
