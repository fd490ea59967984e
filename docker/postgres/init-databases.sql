-- One PostgreSQL server, one database per consumer, owned by POSTGRES_USER.
-- docker-compose.yml mounts this file into /docker-entrypoint-initdb.d (run once, on an empty
-- data volume); tests/integration/stack.py runs the same file with psql on its local server.
CREATE DATABASE mlflow;       -- MLflow backend store: experiments, runs, model registry
CREATE DATABASE mlflow_auth;  -- MLflow basic-auth app: users and permissions
CREATE DATABASE prefect;      -- Prefect server: flows, deployments, flow runs
