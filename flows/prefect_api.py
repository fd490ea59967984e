"""The Prefect API a flowae command talks to: the user's server, or a temporary one it owns.

Why not Prefect's own temporary server: it waits 20 "seconds" counted in sleep steps, which is
too little for the first start on a busy 2-core host (creating and migrating ``prefect.db``
under ``PREFECT_HOME`` takes 7-25 s there), it fails with a traceback, and its uvicorn child
outlives a parent killed with ``kill -9``. Here the command starts the same uvicorn app itself,
*before* importing torch, MLflow and GX (so the server's start overlaps the command's own
imports), waits on the wall clock, stops it on exit, and asks the kernel to stop it when the
command dies (Linux ``PR_SET_PDEATHSIG``, see ``flows.prefect_server_child``).

``PREFECT_API_URL`` set by the user wins: nothing is started, the server is checked once.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

#: Wall-clock seconds to wait for the temporary server; the user's own
#: ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` wins over it.
DEFAULT_STARTUP_TIMEOUT_S = 180
_PORT_IN_USE_EXIT = 3  # uvicorn's exit code when the port was taken meanwhile


class PrefectAPIError(RuntimeError):
    """No Prefect API to run flows on; the message says what to do, in one line."""


def startup_timeout() -> float:
    """The user's Prefect setting when set (environment or profile), else flowae's default."""
    raw = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS")
    if raw:
        try:
            return float(raw)
        except ValueError:
            raise PrefectAPIError(
                f"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS={raw!r} is not a number") from None
    from prefect.settings import get_current_settings

    ephemeral = get_current_settings().server.ephemeral
    if "startup_timeout_seconds" in ephemeral.model_fields_set:
        return float(ephemeral.startup_timeout_seconds)
    return float(DEFAULT_STARTUP_TIMEOUT_S)


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TemporaryPrefectServer:
    """Prefect's API app under uvicorn on a free loopback port, owned by this process."""

    def __init__(self) -> None:
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.log_path = Path(tempfile.gettempdir()) / f"flowae-prefect-server-{os.getpid()}.log"
        self._log = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> TemporaryPrefectServer:
        """Launch the process and return at once; :meth:`wait_ready` waits for it."""
        self.port = _free_port()
        env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
               "PREFECT__SERVER_FINAL": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env.pop("PREFECT_API_URL", None)
        if self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flows.prefect_server_child", str(os.getpid()),
             "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "error", "--lifespan", "on"],
            env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            start_new_session=True,  # a Ctrl-C reaches flowae, which then stops the server
        )
        return self

    def wait_ready(self, timeout: float) -> None:
        """Poll ``/health`` until it answers, on the wall clock; one-line error otherwise."""
        import httpx

        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                code = self.process.poll()
                if code == _PORT_IN_USE_EXIT:
                    self.start()
                    continue
                if code is not None:
                    raise PrefectAPIError(
                        f"Prefect's temporary server exited with code {code} before it answered "
                        f"({self._last_log_line()}); set PREFECT_API_URL to a running Prefect server "
                        f"(`prefect server start`), log: {self.log_path}")
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        self.stop()
        raise PrefectAPIError(
            f"Prefect's temporary server did not answer within {timeout:g} s (its first start creates "
            f"the database under PREFECT_HOME, which is slow on a busy host); set PREFECT_API_URL to a "
            f"running Prefect server (`prefect server start`) or raise "
            f"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
            self.log_path.unlink(missing_ok=True)

    def _last_log_line(self) -> str:
        self._log.flush()
        lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        return lines[-1].strip()[:300] if lines else "no output"


def check_api(url: str, timeout: float = 10.0) -> None:
    """A user-given ``PREFECT_API_URL`` must answer; say so in one line when it does not."""
    import httpx

    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=timeout, headers=_auth_headers())
    except httpx.HTTPError as exc:
        raise PrefectAPIError(
            f"PREFECT_API_URL={url} does not answer ({exc.__class__.__name__}); start that server "
            f"or unset PREFECT_API_URL to use a temporary one") from None
    if response.status_code != 200:
        raise PrefectAPIError(f"PREFECT_API_URL={url} answered HTTP {response.status_code} on /health")


def _auth_headers() -> dict[str, str]:
    """What Prefect's own client sends: basic auth for a self-hosted server, a key for Cloud."""
    import base64

    from prefect.settings import get_current_settings

    api = get_current_settings().api
    if api.auth_string is not None:
        secret = api.auth_string.get_secret_value().encode()
        return {"Authorization": f"Basic {base64.b64encode(secret).decode()}"}
    if api.key is not None:
        return {"Authorization": f"Bearer {api.key.get_secret_value()}"}
    return {}


def _configured_api_url() -> str | None:
    """``PREFECT_API_URL`` from the active Prefect profile or settings context, if any."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


class PrefectAPI:
    """Where flows run: ``url``, and :meth:`wait_ready` to block until it answers."""

    def __init__(self, url: str, server: TemporaryPrefectServer | None = None,
                 timeout: float = DEFAULT_STARTUP_TIMEOUT_S) -> None:
        self.url = url
        self.server = server
        self.timeout = timeout

    def wait_ready(self) -> None:
        if self.server is not None:
            self.server.wait_ready(self.timeout)


@contextlib.contextmanager
def prefect_api() -> Iterator[PrefectAPI]:
    """The Prefect API that flows in this block run on; a temporary server stops with the block.

    The temporary server is launched on entry and waited for only in :meth:`PrefectAPI.wait_ready`,
    so a caller that imports its heavy modules in between overlaps them with the server's start.
    """
    url = os.environ.get("PREFECT_API_URL") or _configured_api_url()
    if url:
        check_api(url)
        yield PrefectAPI(url)
        return
    server = TemporaryPrefectServer().start()
    try:
        timeout = startup_timeout()
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            os.environ["PREFECT_API_URL"] = server.api_url  # child processes (Dask workers) too
            try:
                yield PrefectAPI(server.api_url, server, timeout)
            finally:
                _flush_to_api()
                os.environ.pop("PREFECT_API_URL", None)
    finally:
        server.stop()


def _flush_to_api(timeout: float = 15.0) -> None:
    """Send the logs and events still queued in this process before the server goes away."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        with contextlib.suppress(Exception):
            worker.drain_all(timeout=timeout)
