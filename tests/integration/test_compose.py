"""docker-compose.yml (and its images, .env.example, prefect.yaml) read as data, without Docker.

CI has no Docker engine, so the compose file is checked by parsing it: its wiring (services,
dependency conditions, healthchecks, published ports, secrets from the environment, pinned images,
the GPU reservation), its least-privilege rules (the worker holds no admin credential, each
service has its own database role, SeaweedFS is out of the worker's reach) and, above all, that
its services run exactly the commands that ``stack.py`` runs as local processes in the
integration test.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import stack
import yaml

REPO = stack.REPO
COMPOSE_PATH = REPO / "docker-compose.yml"
CPU_OVERRIDE_PATH = REPO / "docker-compose.cpu.yml"
ENV_EXAMPLE_PATH = REPO / ".env.example"

LONG_RUNNING = {"postgres", "seaweedfs", "mlflow", "prefect-server", "worker"}
ONE_SHOT = {"create-bucket", "mlflow-bootstrap"}
DB_ROLE_SECRETS = {"mlflow": "MLFLOW_DB_PASSWORD", "mlflow_auth": "MLFLOW_AUTH_DB_PASSWORD",
                   "prefect": "PREFECT_DB_PASSWORD"}
JWT_SECRETS = {"WEED_JWT_SIGNING_KEY": "SEAWEEDFS_JWT_VOLUME_WRITE_KEY",
               "WEED_JWT_SIGNING_READ_KEY": "SEAWEEDFS_JWT_VOLUME_READ_KEY",
               "WEED_JWT_FILER_SIGNING_KEY": "SEAWEEDFS_JWT_FILER_WRITE_KEY",
               "WEED_JWT_FILER_SIGNING_READ_KEY": "SEAWEEDFS_JWT_FILER_READ_KEY"}
SECRET_VARS = {"POSTGRES_PASSWORD", *DB_ROLE_SECRETS.values(), "S3_ADMIN_ACCESS_KEY",
               "S3_ADMIN_SECRET_KEY", "MLFLOW_S3_ACCESS_KEY", "MLFLOW_S3_SECRET_KEY",
               *JWT_SECRETS.values(), "MLFLOW_ADMIN_PASSWORD", "MLFLOW_WORKER_PASSWORD",
               "MLFLOW_FLASK_SECRET_KEY", "PREFECT_AUTH_STRING"}
#: The only secrets the worker may hold: its own MLflow user's and the Prefect API's.
WORKER_SECRETS = {"MLFLOW_WORKER_PASSWORD", "PREFECT_AUTH_STRING"}
S3_IDENTITIES_PATH = "/run/flowae/s3-identities.json"
VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class _ComposeLoader(yaml.SafeLoader):
    """PyYAML plus Compose's ``!reset`` / ``!override`` merge tags."""


def _tagged(loader: yaml.SafeLoader, node: yaml.Node) -> tuple[str, object]:
    if isinstance(node, yaml.MappingNode):
        return node.tag, loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return node.tag, loader.construct_sequence(node, deep=True)
    return node.tag, loader.construct_scalar(node)


for _tag in ("!reset", "!override"):
    _ComposeLoader.add_constructor(_tag, _tagged)


def load(path: Path):
    return yaml.load(path.read_text(), Loader=_ComposeLoader)


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` with an empty environment."""
    env = env or {}

    def one(match: re.Match) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            return f"<{name}>"  # a required value: stands in for what .env provides
        return ""

    return VAR.sub(one, value).replace("$$", "$")


def env_of(service: dict) -> dict[str, str]:
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "use the mapping form of environment:"
    return {key: str(value) for key, value in environment.items()}


def variables_in(text: str) -> set[str]:
    return {m["name"] for m in VAR.finditer(text)}


def env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE_PATH.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


@pytest.fixture(scope="module")
def compose() -> dict:
    return load(COMPOSE_PATH)


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def test_services_are_the_stack(services):
    assert set(services) == LONG_RUNNING | ONE_SHOT


def test_dependencies_wait_for_health_or_completion(services):
    expected = {
        "postgres": {},
        "seaweedfs": {},
        "create-bucket": {"seaweedfs": "service_healthy"},
        "mlflow": {"postgres": "service_healthy", "create-bucket": "service_completed_successfully"},
        "mlflow-bootstrap": {"mlflow": "service_healthy"},
        "prefect-server": {"postgres": "service_healthy"},
        "worker": {"mlflow": "service_healthy", "mlflow-bootstrap": "service_completed_successfully",
                   "prefect-server": "service_healthy"},
    }
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs the long form with conditions"
        assert {dep: spec["condition"] for dep, spec in depends.items()} == expected[name], name


def test_every_long_running_service_has_a_healthcheck_on_the_harness_endpoint(services):
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), name
        assert services[name].get("restart") == "unless-stopped", name
    for name in ONE_SHOT:
        assert "healthcheck" not in services[name] and services[name]["restart"] == "no", name
    probes = {name: " ".join(services[name]["healthcheck"]["test"]) for name in LONG_RUNNING}
    assert f"127.0.0.1:8333{stack.S3_HEALTH_PATH}" in probes["seaweedfs"]
    assert f"127.0.0.1:5000{stack.MLFLOW_HEALTH_PATH}'" in probes["mlflow"]
    assert f"127.0.0.1:4200{stack.PREFECT_HEALTH_PATH}'" in probes["prefect-server"]
    assert "pg_isready -h 127.0.0.1" in probes["postgres"]
    assert "127.0.0.1:8080/health" in probes["worker"]
    assert env_of(services["worker"])["PREFECT_RUNNER_SERVER_PORT"] == "8080"


def test_seaweedfs_runs_the_harness_command(services):
    service = services["seaweedfs"]
    assert service["entrypoint"] == ["/bin/sh", "/opt/flowae/seaweedfs-entrypoint.sh"]
    assert service["command"] == ["weed", *stack.weed_args(ip="seaweedfs", bind="0.0.0.0", data_dir="/data",
                                                           s3_config=S3_IDENTITIES_PATH)]
    entrypoint = f"./{stack.SEAWEEDFS_ENTRYPOINT.relative_to(REPO)}:/opt/flowae/seaweedfs-entrypoint.sh:ro"
    assert entrypoint in service["volumes"]
    assert any(v.endswith(":/data") for v in service["volumes"])
    environment = env_of(service)
    assert environment["S3_IDENTITIES_PATH"] == S3_IDENTITIES_PATH
    assert any(S3_IDENTITIES_PATH.startswith(path + "/") for path in service["tmpfs"])  # never on disk
    assert set(environment) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_S3_ACCESS_KEY",
                                "MLFLOW_S3_SECRET_KEY", "S3_BUCKET", "S3_IDENTITIES_PATH",
                                *stack.SEAWEEDFS_JWT_VARS}


def test_seaweedfs_signs_its_internal_apis_with_four_distinct_keys(services):
    environment = env_of(services["seaweedfs"])
    assert {k: variables_in(environment[k]) for k in JWT_SECRETS} == {k: {v} for k, v in JWT_SECRETS.items()}
    assert set(JWT_SECRETS) == set(stack.SEAWEEDFS_JWT_VARS)


def test_each_s3_client_has_its_own_identity(services):
    """The bucket job is the S3 admin; MLflow has its own, bucket-only identity; no one else has S3 keys."""
    admin = {"S3_ADMIN_ACCESS_KEY", "S3_ADMIN_SECRET_KEY"}
    mlflow_keys = {"MLFLOW_S3_ACCESS_KEY", "MLFLOW_S3_SECRET_KEY"}

    def keys_of(name: str) -> set[str]:
        environment = env_of(services[name])
        return variables_in(environment.get("AWS_ACCESS_KEY_ID", "") + environment.get("AWS_SECRET_ACCESS_KEY", ""))

    assert keys_of("create-bucket") == admin
    assert keys_of("mlflow") == mlflow_keys
    assert keys_of("seaweedfs") == admin  # weed's own admin identity
    for name in set(services) - {"create-bucket", "mlflow", "seaweedfs"}:
        text = " ".join(env_of(services[name]).values())
        assert not variables_in(text) & (admin | mlflow_keys), name


def test_mlflow_runs_the_harness_command(services):
    command = [interpolate(part) for part in services["mlflow"]["command"]]
    workers = int(command[command.index("--workers") + 1])
    assert command == stack.mlflow_server_args(host="0.0.0.0", port=5000, workers=workers)
    allowed = set(command[command.index("--allowed-hosts") + 1].split(","))
    assert {"mlflow", "localhost", "127.0.0.1"} <= allowed
    assert command[command.index("--artifacts-destination") + 1] == stack.ARTIFACTS_DESTINATION
    assert "basic-auth" in command and "--serve-artifacts" in command
    environment = env_of(services["mlflow"])
    assert {k: environment.get(k) for k in stack.MLFLOW_SERVER_ENV} == stack.MLFLOW_SERVER_ENV


def test_mlflow_image_entrypoint_writes_the_auth_config_the_harness_writes():
    dockerfile = (REPO / "mlflow" / "Dockerfile").read_text()
    assert "COPY docker/mlflow/entrypoint.py /opt/flowae/mlflow-entrypoint.py" in dockerfile
    assert 'ENTRYPOINT ["python", "/opt/flowae/mlflow-entrypoint.py"]' in dockerfile
    assert "COPY docker/seaweedfs/create_bucket.py /opt/flowae/create_bucket.py" in dockerfile
    assert re.search(r'pip install .*"mlflow\[auth\]==3\.17\.2" psycopg2-binary boto3', dockerfile)
    assert str(stack.MLFLOW_ENTRYPOINT.relative_to(REPO)) == "docker/mlflow/entrypoint.py"


def test_mlflow_auth_config_comes_from_the_environment(tmp_path):
    import configparser
    import importlib.util

    spec = importlib.util.spec_from_file_location("mlflow_entrypoint", stack.MLFLOW_ENTRYPOINT)
    entrypoint = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entrypoint)
    env = {"MLFLOW_AUTH_DATABASE_URI": "postgresql+psycopg2://u:p%40ss@db:5432/mlflow_auth",
           "MLFLOW_AUTH_ADMIN_USERNAME": "admin", "MLFLOW_AUTH_ADMIN_PASSWORD": "100%-not-default",
           "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "auth" / "basic_auth.ini")}
    path = entrypoint.write_auth_config(env)
    assert path.stat().st_mode & 0o777 == 0o600
    parsed = configparser.ConfigParser()  # read as MLflow reads it (interpolation on)
    parsed.read(path)
    assert dict(parsed["mlflow"]) == {
        "default_permission": "READ", "database_uri": env["MLFLOW_AUTH_DATABASE_URI"],
        "admin_username": "admin", "admin_password": "100%-not-default"}
    with pytest.raises(SystemExit, match="MLFLOW_AUTH_ADMIN_PASSWORD"):
        entrypoint.write_auth_config({**env, "MLFLOW_AUTH_ADMIN_PASSWORD": ""})


def test_prefect_runs_the_harness_command(services):
    assert services["prefect-server"]["command"] == stack.prefect_server_args(host="0.0.0.0", port=4200)


def test_bucket_job_and_postgres_init_are_the_harness_files(services):
    job = services["create-bucket"]
    assert job["entrypoint"] == ["python", "/opt/flowae/create_bucket.py"]
    assert job["build"] == services["mlflow"]["build"] and job["image"] == services["mlflow"]["image"]
    assert interpolate(env_of(job)["S3_BUCKET"]) == stack.S3_BUCKET
    mounts = services["postgres"]["volumes"]
    init = f"./{stack.POSTGRES_INIT_SQL.relative_to(REPO)}:/docker-entrypoint-initdb.d/"
    assert any(m.startswith(init) and m.endswith(".sql:ro") for m in mounts)
    assert stack.database_owners() == {"mlflow": "mlflow", "mlflow_auth": "mlflow_auth",
                                       "prefect": "prefect"}
    bootstrap = services["mlflow-bootstrap"]
    assert bootstrap["entrypoint"] == ["python", "/opt/flowae/bootstrap_worker.py"]
    assert f"./{stack.MLFLOW_BOOTSTRAP.relative_to(REPO)}:/opt/flowae/bootstrap_worker.py:ro" in bootstrap["volumes"]
    assert bootstrap["image"] == services["mlflow"]["image"]


def test_each_service_has_its_own_database_role(services):
    """Three URLs, three roles, three passwords; none is the superuser, whose password only the
    postgres service (the init script) holds."""
    urls = {
        ("mlflow", "MLFLOW_BACKEND_STORE_URI"): "psycopg2",
        ("mlflow", "MLFLOW_AUTH_DATABASE_URI"): "psycopg2",
        ("prefect-server", "PREFECT_API_DATABASE_CONNECTION_URL"): "asyncpg",
    }
    seen = {}
    for (service, key), driver in urls.items():
        url = interpolate(env_of(services[service])[key])
        match = re.fullmatch(rf"postgresql\+{driver}://(\w+):<(\w+)>@postgres:5432/(\w+)", url)
        assert match, (service, key, url)
        role, secret, database = match.groups()
        assert stack.database_owners()[database] == role and DB_ROLE_SECRETS[role] == secret
        seen[database] = role
    assert seen == stack.database_owners()
    postgres = env_of(services["postgres"])
    assert interpolate(postgres["POSTGRES_USER"]) == stack.POSTGRES_USER not in seen.values()
    assert {variables_in(postgres[v]).pop() for v in stack.DB_PASSWORD_VARS.values()} == set(DB_ROLE_SECRETS.values())
    assert stack.DB_PASSWORD_VARS == DB_ROLE_SECRETS  # the names the init script reads
    for name, service in services.items():
        uses = variables_in(" ".join(env_of(service).values()))
        if name != "postgres":
            assert "POSTGRES_PASSWORD" not in uses, name
    sql = stack.POSTGRES_INIT_SQL.read_text()
    for role, secret in DB_ROLE_SECRETS.items():
        assert re.search(rf"^CREATE ROLE {role} LOGIN PASSWORD :'\w+'\s+NOSUPERUSER NOCREATEDB NOCREATEROLE",
                         sql, re.MULTILINE), role
        assert re.search(rf"^REVOKE ALL ON DATABASE {role} FROM PUBLIC;", sql, re.MULTILINE), role
        assert f"\\getenv {role}_password {secret}" in sql, role
    assert interpolate(env_of(services["mlflow"])["MLFLOW_S3_ENDPOINT_URL"]) == "http://seaweedfs:8333"


def test_worker_gets_credentials_and_urls_from_the_environment(services, tmp_path):
    worker = env_of(services["worker"])
    assert services["worker"]["command"] == ["flowae", "serve"]
    assert services["worker"]["build"]["dockerfile"] == "Dockerfile"
    assert worker["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert worker["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert worker["MLFLOW_TRACKING_USERNAME"] == f"${{MLFLOW_WORKER_USERNAME:-{stack.MLFLOW_WORKER_USERNAME}}}"
    assert worker["MLFLOW_TRACKING_PASSWORD"].startswith("${MLFLOW_WORKER_PASSWORD:?")
    assert worker["PREFECT_API_AUTH_STRING"].startswith("${PREFECT_AUTH_STRING:?")
    # The harness hands a flowae subprocess exactly the worker's client variables.
    client = stack.Stack(workdir=tmp_path).env()
    assert {k for k in worker if k.startswith(("MLFLOW_TRACKING", "PREFECT_API_"))} == set(client)
    assert client["MLFLOW_TRACKING_USERNAME"] == stack.MLFLOW_WORKER_USERNAME
    assert 'CMD ["flowae", "serve"]' in (REPO / "Dockerfile").read_text()


def test_worker_holds_no_admin_credential(services):
    """Only its own MLflow user's password and the Prefect auth string: no MLflow admin, database,
    S3 or SeaweedFS secret, and its MLflow user is not the admin."""
    worker = env_of(services["worker"])
    uses = variables_in(" ".join(worker.values()))
    assert uses & SECRET_VARS == WORKER_SECRETS
    assert not any(name.startswith(("MLFLOW_ADMIN", "POSTGRES", "S3_", "SEAWEEDFS")) for name in uses)
    assert not any(key.startswith(("AWS_", "MLFLOW_S3", "PGPASSWORD")) for key in worker)
    example = env_example()
    assert example["MLFLOW_WORKER_USERNAME"] == stack.MLFLOW_WORKER_USERNAME != example["MLFLOW_ADMIN_USERNAME"]
    bootstrap = env_of(services["mlflow-bootstrap"])  # the one that holds the admin password
    assert bootstrap["MLFLOW_TRACKING_USERNAME"] == "${MLFLOW_ADMIN_USERNAME:-admin}"
    assert bootstrap["MLFLOW_WORKER_USERNAME"] == worker["MLFLOW_TRACKING_USERNAME"]
    assert bootstrap["MLFLOW_WORKER_PASSWORD"] == worker["MLFLOW_TRACKING_PASSWORD"]
    holders = {name for name, s in services.items()
               if "MLFLOW_ADMIN_PASSWORD" in variables_in(" ".join(env_of(s).values()))}
    assert holders == {"mlflow", "mlflow-bootstrap"}


def test_bootstrap_grants_the_experiments_and_model_flowae_uses():
    import importlib.util

    from components.settings import Settings

    spec = importlib.util.spec_from_file_location("bootstrap_worker", stack.MLFLOW_BOOTSTRAP)
    bootstrap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bootstrap)
    defaults = Settings.model_fields
    experiments = {f.default for name, f in defaults.items() if name.endswith("_experiment")}
    assert set(bootstrap.EXPERIMENTS) == experiments
    model = defaults["registered_model_name"].default
    assert set(bootstrap.MODELS) == {model, model + ".registry-lock"}
    assert bootstrap.EXPERIMENT_PERMISSION == "EDIT"


def test_networks_keep_storage_and_databases_from_the_worker(compose, services):
    """SeaweedFS (master, volume, filer, S3) and PostgreSQL sit on internal networks the worker is
    not on; nothing of theirs is published."""
    networks = compose["networks"]
    assert networks["storage"].get("internal") is True and networks["db"].get("internal") is True
    members = {name: set(service.get("networks", [])) for name, service in services.items()}
    assert all(members.values()), "every service names its networks (no implicit default network)"
    on = {net: {name for name, nets in members.items() if net in nets} for net in networks}
    assert on["storage"] == {"seaweedfs", "create-bucket", "mlflow"}
    assert on["db"] == {"postgres", "mlflow", "prefect-server"}
    assert members["worker"] == {"app"} and members["seaweedfs"] == {"storage"}
    assert members["postgres"] == {"db"}
    assert not members["worker"] & (members["seaweedfs"] | members["postgres"])
    for name in ("seaweedfs", "postgres", "create-bucket", "mlflow-bootstrap", "worker"):
        assert not services[name].get("ports") and not services[name].get("expose"), name


def test_only_the_two_uis_are_published(services):
    published = {}
    for name, service in services.items():
        assert "network_mode" not in service, name
        for port in service.get("ports", []):
            published[name] = interpolate(str(port))
    assert published == {"mlflow": "127.0.0.1:5000:5000", "prefect-server": "127.0.0.1:4200:4200"}


def test_no_credential_is_written_in_the_compose_file(services):
    for name, service in services.items():
        for key, value in env_of(service).items():
            if re.search(r"PASSWORD|SECRET|ACCESS_KEY|AUTH_STRING|TOKEN", key):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+(:\?[^}]*|:-[^}]*)?\}", value), (name, key)
            for _user, password in re.findall(r"://([^:/@]+):([^@]+)@", interpolate(value)):
                assert re.fullmatch(r"<[A-Z0-9_]+>", password), (name, key)  # ${VAR:?...}
    text = COMPOSE_PATH.read_text()
    for secret in SECRET_VARS:
        uses = re.findall(r"\$\{" + secret + r"(:?[-?])?", text)
        assert uses and all(op == ":?" for op in uses), f"{secret} must be required (${{{secret}:?...}})"


def test_env_example_names_every_variable_and_commits_no_secret():
    used = variables_in(COMPOSE_PATH.read_text()) | variables_in(CPU_OVERRIDE_PATH.read_text())
    example = env_example()
    assert used == set(example)
    assert SECRET_VARS <= set(example)
    assert all(example[name] == "" for name in SECRET_VARS)


def test_images_are_pinned(services):
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest" and re.search(r"\d", tag), (name, image)
    assert services["postgres"]["image"].startswith("postgres:15.")
    assert services["prefect-server"]["image"] == "prefecthq/prefect:3.8.8-python3.11"
    for dockerfile in (REPO / "Dockerfile", REPO / "mlflow" / "Dockerfile"):
        bases = re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), re.MULTILINE)
        assert bases and all(re.fullmatch(r"[\w./-]+:\d[\w.-]*", b) for b in bases), bases


def test_worker_reserves_a_gpu_and_the_cpu_override_drops_it(services):
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    override = load(CPU_OVERRIDE_PATH)["services"]["worker"]
    assert override["deploy"] == ("!reset", {})
    assert override["environment"]["FLOWAE_DEVICE"] == "cpu"
    assert "whl/cpu" in interpolate(override["build"]["args"]["TORCH_INDEX_URL"])


def test_dockerignore_keeps_secrets_and_local_state_out_of_images():
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".env", ".venv", ".git", "data", "mlflow/*"} <= ignored
    assert "!mlflow/Dockerfile" in ignored
    assert not {"docker", "components", "flows", "data_contracts", "constraints.txt"} & ignored


def test_prefect_yaml_deploys_retrain_and_score_nightly_to_a_work_pool():
    from prefect.client.schemas.schedules import CronSchedule

    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in config["deployments"]}
    assert {name: d["entrypoint"] for name, d in deployments.items()} == {
        "retrain": "flows/retrain.py:scheduled_retrain_flow",
        "score-nightly": "flows/score.py:score_nightly_flow",
    }
    for deployment in deployments.values():
        assert deployment["work_pool"]["name"] == "flowae"
        (schedule,) = deployment["schedules"]
        CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])  # valid, or raises
    assert config["prefect-version"] == "3.8.8"


def _run_seaweedfs_entrypoint(tmp_path: Path, **overrides: str):
    import subprocess

    env = {"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "adminkey01", "AWS_SECRET_ACCESS_KEY": "adminsecret01",
           "MLFLOW_S3_ACCESS_KEY": "mlflowkey01", "MLFLOW_S3_SECRET_KEY": "mlflow-secret_01",
           "S3_BUCKET": stack.S3_BUCKET, "S3_IDENTITIES_PATH": str(tmp_path / "run" / "ids.json"),
           **{name: f"jwt-{i}" for i, name in enumerate(stack.SEAWEEDFS_JWT_VARS)}}
    env.update(overrides)
    env = {k: v for k, v in env.items() if v is not None}
    command = ["sh", str(stack.SEAWEEDFS_ENTRYPOINT), "sh", "-c",
               'echo "mlflow key in env: ${MLFLOW_S3_SECRET_KEY:-none}"; cat "$S3_IDENTITIES_PATH"']
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=False)


def test_seaweedfs_entrypoint_writes_a_bucket_only_identity_for_mlflow(tmp_path):
    import json

    done = _run_seaweedfs_entrypoint(tmp_path)
    assert done.returncode == 0, done.stderr
    first, _, body = done.stdout.partition("\n")
    assert first == "mlflow key in env: none"  # weed (the command) does not inherit MLflow's key
    assert json.loads(body) == {"identities": [{
        "name": "mlflow", "credentials": [{"accessKey": "mlflowkey01", "secretKey": "mlflow-secret_01"}],
        "actions": [f"{action}:{stack.S3_BUCKET}" for action in ("Read", "Write", "List", "Tagging")]}]}
    assert (tmp_path / "run" / "ids.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("overrides, message", [
    ({"MLFLOW_S3_SECRET_KEY": 'x", "actions": ["Admin'}, "MLFLOW_S3_SECRET_KEY may hold only"),
    ({"WEED_JWT_FILER_SIGNING_KEY": None}, "set WEED_JWT_FILER_SIGNING_KEY"),
    ({"MLFLOW_S3_ACCESS_KEY": "adminkey01"}, "must not be the admin's"),
])
def test_seaweedfs_entrypoint_refuses_unsafe_or_missing_keys(tmp_path, overrides, message):
    done = _run_seaweedfs_entrypoint(tmp_path, **overrides)
    assert done.returncode == 64 and message in done.stderr, done.stderr
    assert not (tmp_path / "run" / "ids.json").exists()
