-- One PostgreSQL server; one role and one database per consumer, each database owned by its role
-- and closed to every other role. None of the roles is a superuser or may create roles or
-- databases: POSTGRES_USER (the image's superuser) runs this script once and is used by no service.
--
-- docker-compose.yml mounts this file into /docker-entrypoint-initdb.d (run once, on an empty data
-- volume, by psql as POSTGRES_USER); tests/integration/stack.py runs the same file with psql on its
-- local server. The passwords come from the environment of psql (psql 15's \getenv), so they are
-- written nowhere but .env; the script fails when one is missing or shorter than 16 characters.
\set ON_ERROR_STOP on
\set mlflow_password ''
\set mlflow_auth_password ''
\set prefect_password ''
\getenv mlflow_password MLFLOW_DB_PASSWORD
\getenv mlflow_auth_password MLFLOW_AUTH_DB_PASSWORD
\getenv prefect_password PREFECT_DB_PASSWORD
SELECT length(:'mlflow_password') >= 16 AND length(:'mlflow_auth_password') >= 16
       AND length(:'prefect_password') >= 16 AS passwords_ok \gset
\if :passwords_ok
\else
DO $$ BEGIN RAISE EXCEPTION 'init-databases.sql: set MLFLOW_DB_PASSWORD, MLFLOW_AUTH_DB_PASSWORD and PREFECT_DB_PASSWORD (16+ characters)'; END $$;
\endif

-- MLflow backend store: experiments, runs, model registry
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
CREATE DATABASE mlflow OWNER mlflow;
REVOKE ALL ON DATABASE mlflow FROM PUBLIC;

-- MLflow basic-auth app: users and permissions
CREATE ROLE mlflow_auth LOGIN PASSWORD :'mlflow_auth_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
CREATE DATABASE mlflow_auth OWNER mlflow_auth;
REVOKE ALL ON DATABASE mlflow_auth FROM PUBLIC;

-- Prefect server: flows, deployments, flow runs (its migrations create the trusted extension
-- pg_trgm, which a database owner may do)
CREATE ROLE prefect LOGIN PASSWORD :'prefect_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
CREATE DATABASE prefect OWNER prefect;
REVOKE ALL ON DATABASE prefect FROM PUBLIC;

-- The maintenance database is the superuser's only.
REVOKE ALL ON DATABASE postgres FROM PUBLIC;
