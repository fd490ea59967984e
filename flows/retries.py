"""How flowae's tasks run: which failures Prefect retries, and how many files are in flight.

Retries: transient I/O errors only (a network share that hiccupped); a data problem would fail the
same way again.

Bounded work: Prefect gives every flow an unbounded thread pool, and a subflow called from another
flow does not inherit the caller's runner. So every flow that maps over files is defined with
:class:`FileRunner`: a thread pool of ``FLOWAE_MAX_PARALLEL_FILES`` workers (default 1), read when
each flow run starts, whoever calls the flow. Memory then stays bounded by that many files (or
parts of a big file) at a time.
"""
from __future__ import annotations

from typing import Self

from prefect.task_runners import ThreadPoolTaskRunner


def retry_on_io_error(task_obj, task_run, state) -> bool:
    try:
        state.result()
    except OSError:
        return True
    except Exception:  # noqa: BLE001 - any other failure is final
        return False
    return False


class FileRunner(ThreadPoolTaskRunner):
    """A thread pool with ``max_workers`` threads, or ``FLOWAE_MAX_PARALLEL_FILES`` when not given
    (read at each flow run's start, so a changed setting needs no re-import)."""

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers=max_workers if max_workers is not None else 1)
        self._fixed = max_workers

    def duplicate(self) -> Self:
        return type(self)(self._fixed)

    def __enter__(self) -> Self:
        if self._fixed is None:
            from components.settings import load_settings

            self._max_workers = load_settings().max_parallel_files
        return super().__enter__()
