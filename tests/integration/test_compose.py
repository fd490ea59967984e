"""docker-compose.yml (and its images, .env.example, prefect.yaml) read as data, without Docker.

CI has no Docker engine, so the compose file is checked by parsing it: its wiring (services,
dependency conditions, healthchecks, published ports, secrets from the environment, pinned images,
the GPU reservation) and, above all, that its services run exactly the commands that
``stack.py`` runs as local processes in the integration test.
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
ONE_SHOT = {"create-bucket"}
SECRET_VARS = {"POSTGRES_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY", "MLFLOW_ADMIN_PASSWORD",
               "MLFLOW_FLASK_SECRET_KEY", "PREFECT_AUTH_STRING"}
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
        "prefect-server": {"postgres": "service_healthy"},
        "worker": {"mlflow": "service_healthy", "prefect-server": "service_healthy"},
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
    assert "healthcheck" not in services["create-bucket"]
    assert services["create-bucket"]["restart"] == "no"
    probes = {name: " ".join(services[name]["healthcheck"]["test"]) for name in LONG_RUNNING}
    assert f"127.0.0.1:8333{stack.S3_HEALTH_PATH}" in probes["seaweedfs"]
    assert f"127.0.0.1:5000{stack.MLFLOW_HEALTH_PATH}'" in probes["mlflow"]
    assert f"127.0.0.1:4200{stack.PREFECT_HEALTH_PATH}'" in probes["prefect-server"]
    assert "pg_isready -h 127.0.0.1" in probes["postgres"]
    assert "127.0.0.1:8080/health" in probes["worker"]
    assert env_of(services["worker"])["PREFECT_RUNNER_SERVER_PORT"] == "8080"


def test_seaweedfs_runs_the_harness_command(services):
    service = services["seaweedfs"]
    command = service["entrypoint"] + service["command"]
    assert command == ["weed", *stack.weed_args(ip="seaweedfs", bind="0.0.0.0", data_dir="/data")]
    assert any(v.endswith(":/data") for v in service["volumes"])
    assert set(env_of(service)) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


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
    assert stack.databases() == ("mlflow", "mlflow_auth", "prefect")


def test_database_urls_point_at_the_init_script_databases(services):
    mlflow_env = {k: interpolate(v) for k, v in env_of(services["mlflow"]).items()}
    prefect_env = {k: interpolate(v) for k, v in env_of(services["prefect-server"]).items()}
    user = interpolate(env_of(services["postgres"])["POSTGRES_USER"])
    assert user == stack.POSTGRES_USER
    base = f"{user}:<POSTGRES_PASSWORD>@postgres:5432"
    assert mlflow_env["MLFLOW_BACKEND_STORE_URI"] == f"postgresql+psycopg2://{base}/mlflow"
    assert mlflow_env["MLFLOW_AUTH_DATABASE_URI"] == f"postgresql+psycopg2://{base}/mlflow_auth"
    assert prefect_env["PREFECT_API_DATABASE_CONNECTION_URL"] == f"postgresql+asyncpg://{base}/prefect"
    assert mlflow_env["MLFLOW_S3_ENDPOINT_URL"] == "http://seaweedfs:8333"


def test_worker_gets_credentials_and_urls_from_the_environment(services, tmp_path):
    worker = env_of(services["worker"])
    assert services["worker"]["command"] == ["flowae", "serve"]
    assert services["worker"]["build"]["dockerfile"] == "Dockerfile"
    assert worker["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert worker["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert worker["MLFLOW_TRACKING_USERNAME"] == "${MLFLOW_ADMIN_USERNAME:-admin}"
    assert worker["MLFLOW_TRACKING_PASSWORD"].startswith("${MLFLOW_ADMIN_PASSWORD:?")
    assert worker["PREFECT_API_AUTH_STRING"].startswith("${PREFECT_AUTH_STRING:?")
    assert "AWS_SECRET_ACCESS_KEY" not in worker  # artifacts go through the MLflow server
    # The harness hands a flowae subprocess the same client variables (plus S3 for tests).
    client = set(stack.Stack(workdir=tmp_path).env())
    assert {k for k in worker if k.startswith(("MLFLOW_TRACKING", "PREFECT_API_"))} <= client
    assert 'CMD ["flowae", "serve"]' in (REPO / "Dockerfile").read_text()


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
