"""Read ahead and write behind: the two ends of the ingest pipeline run beside the checks.

Why: reading CSV (pyarrow), checking a batch (numpy/pyarrow) and writing parquet (pyarrow) each
spend most of their time in C++ without holding the GIL, so on two cores they overlap: reading the
next batch and writing the last one while the current one is checked roughly halves the wall time
of a large file. Queues hold at most ``depth`` batches, so memory stays bounded; order is kept.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_POLL = 0.1


def prefetch(items: Iterable[T], depth: int = 2, name: str = "flowae-read-ahead") -> Iterator[T]:
    """Iterate ``items`` on a worker thread, up to ``depth`` ahead; its errors are raised here."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                box.put(entry, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not put(("item", item)):
                    return
            put(("done", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(("error", exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    try:
        while True:
            kind, value = box.get()
            if kind == "item":
                yield value
            elif kind == "done":
                return
            else:
                raise value
    finally:
        stop.set()
        worker.join()


class WriteBehind:
    """Run calls one after another on a worker thread, in the order submitted. The first error is
    raised by the next ``submit`` or by ``wait``; calls after an error are skipped."""

    def __init__(self, depth: int = 2, name: str = "flowae-write-behind") -> None:
        self._box: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._worker = threading.Thread(target=self._run, name=name, daemon=True)
        self._worker.start()

    def _run(self) -> None:
        while True:
            task = self._box.get()
            try:
                if task is None:
                    return
                if self._error is None:
                    fn, args = task
                    fn(*args)
            except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
                self._error = exc
            finally:
                self._box.task_done()

    def submit(self, fn: Callable[..., object], *args) -> None:
        self._raise()
        self._box.put((fn, args))

    def wait(self) -> None:
        """Block until every submitted call ran; raise the first error."""
        self._box.join()
        self._raise()

    def close(self) -> None:
        """Stop the worker after the calls already submitted (errors are not raised here)."""
        if self._worker.is_alive():
            self._box.put(None)
            self._worker.join()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
