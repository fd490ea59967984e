"""Locks between processes, and whether a process still runs: one place, on ``filelock`` and
``psutil``.

Why one module: the registry's writes are serialised by a lock file, and four kinds of leftovers
(inbox claims, temp files of killed runs, flow scratch folders, registry lock tickets) are known to
be stale because the process that owns them is gone. Each asked the same questions with its own
``fcntl`` or ``os.kill(pid, 0)``; these helpers answer them once.
"""
from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import psutil
from filelock import FileLock


def file_lock(path: Path) -> FileLock:
    """An exclusive lock between processes (and between threads) on the file ``path``, created
    with its folder; ``with file_lock(p):`` blocks until the holder releases it. The file stays in
    place after release (removing it would let two waiters lock two different files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path, timeout=-1)


def process_gone(pid: int) -> bool:
    """No process ``pid`` runs on this host. A pid that is not positive (a marker still being
    written, or unreadable) is never "gone": unknown is no proof, so its leftovers stay. A process
    of another user is alive."""
    return pid > 0 and not psutil.pid_exists(pid)


def new_owner() -> str:
    """``host:pid:random``: who holds a claim or a lock ticket, and (on this host) whether that
    process still runs (:func:`owner_gone`)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_gone(owner: str) -> bool:
    """The process of ``owner`` (from :func:`new_owner`) no longer runs; only known on its host."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return process_gone(int(pid))
