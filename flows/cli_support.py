"""How a flowae command ends when something goes wrong: one line on stderr, a non-zero exit, and
the full traceback in a log file beside the outputs (never on the terminal).

Why: nightly jobs are read by people and by alerting rules; a traceback hides the one fact that
matters (which file, what reason) and a log file keeps everything a developer needs.
"""
from __future__ import annotations

import datetime as dt
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import typer

from flows.prefect_api import PrefectAPI, PrefectAPIError, prefect_api

T = TypeVar("T")

#: Errors whose message is already the user-facing reason (bad input, bad settings, no data).
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, PermissionError,
                                                    KeyError, LookupError)


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"flowae: {one_line(message)}", err=True)
    raise typer.Exit(code)


def one_line(exc: BaseException | str) -> str:
    """pydantic and friends write paragraphs; a CLI error is one line."""
    return " ".join(str(exc).split())


def write_error_log(log_dir: Path | None, command: str, exc: BaseException) -> Path:
    """``<log_dir>/flowae-<command>.error.log`` (the working directory when there is no output)."""
    folder = Path(log_dir) if log_dir is not None else Path.cwd()
    if folder.exists() and not folder.is_dir():
        folder = Path.cwd()
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / f"flowae-{command}.error.log").resolve()
    text = "".join(traceback.format_exception(exc))
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"--- {dt.datetime.now().isoformat(timespec='seconds')} flowae {command}\n{text}\n")
    return path


def _refusals() -> tuple[type[BaseException], ...]:
    """flowae's own one-line refusals (registry state, changed data, untrusted model files);
    imported only on the failure path, so the CLI starts as fast as before."""
    from components.detect.holdout import DataChanged
    from components.serve.packaging import UntrustedModel
    from components.serve.registry import RegistryError

    return (RegistryError, DataChanged, UntrustedModel)


def run_command(command: str, log_dir: Path | None, work: Callable[[], T]) -> T:
    """Run ``work``; any failure becomes one line (plus the traceback in the error log)."""
    try:
        return work()
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except PrefectAPIError as exc:
        fail(f"{command}: {exc}")
    except EXPECTED_ERRORS as exc:
        log = write_error_log(log_dir, command, exc)
        fail(f"{command}: {_reason(exc)} (details: {log})")
    except Exception as exc:  # noqa: BLE001 - the last line of defence: never a traceback
        log = write_error_log(log_dir, command, exc)
        if isinstance(exc, _refusals()):  # flowae's own refusals are answers, not crashes
            fail(f"{command}: {_reason(exc)} (details: {log})")
        fail(f"{command}: {exc.__class__.__name__}: {_reason(exc)} (traceback: {log})")
    raise AssertionError("unreachable")


def run_flow_command(command: str, log_dir: Path | None, work: Callable[[PrefectAPI], T]) -> T:
    """:func:`run_command` with a Prefect API: the user's ``PREFECT_API_URL`` or a temporary server
    that is started before ``work`` imports its modules and stopped when the command ends."""
    def with_api() -> T:
        with prefect_api() as api:
            return work(api)

    return run_command(command, log_dir, with_api)


def _reason(exc: BaseException) -> str:
    text = one_line(exc)
    if isinstance(exc, KeyError) and text.startswith(("'", '"')):
        text = text.strip("'\"")
    return text or exc.__class__.__name__


def inputs_label(inputs, limit: int = 80) -> str:
    """Input files in a run name: their stems, shortened (``monday, ddos +3 more``)."""
    names = [Path(str(i).rstrip("/")).name.split(".")[0] or str(i) for i in inputs]
    label = ""
    for n, name in enumerate(names):
        more = f" +{len(names) - n} more"
        candidate = f"{label}, {name}" if label else name
        if len(candidate) + len(more) > limit and label:
            return label + more
        label = candidate
    return label or "no inputs"


def flow_job(model: type[T], key: str = "job") -> T | None:
    """The job parameter of the running Prefect flow (for its run name); None when unreadable, so
    a name never fails a run."""
    try:
        from prefect.runtime import flow_run

        value = flow_run.parameters[key]
        return value if isinstance(value, model) else model.model_validate(value)
    except Exception:  # noqa: BLE001 - a run name is cosmetic
        return None


def ui_commands(settings) -> dict[str, str]:
    """The commands that open the UIs of a local store, with absolute paths (the venv's binaries,
    the SQLite file, the artifact folder), so they work from any directory; {} for a remote store."""
    import shlex
    import sys

    from components.settings import artifact_location

    bin_dir = Path(sys.executable).parent.resolve()
    out = {"prefect": f"{shlex.quote(str(bin_dir / 'prefect'))} server start --host 127.0.0.1 --port 4200"}
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///")).resolve()
        out["mlflow"] = (f"{shlex.quote(str(bin_dir / 'mlflow'))} ui --backend-store-uri "
                         f"{shlex.quote('sqlite:///' + str(db))} --default-artifact-root "
                         f"{shlex.quote(str(artifact_location(settings)))} --host 127.0.0.1 --port 5000")
    return out
