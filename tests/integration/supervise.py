"""``python supervise.py PARENT_PID STOP_SIGNAL [--user NAME] -- COMMAND...``

Runs COMMAND in a process group of its own and stops that whole group (STOP_SIGNAL, then SIGKILL
after a grace period) when this process gets SIGTERM or SIGINT, or when the test process
PARENT_PID dies, even by ``kill -9`` (Linux ``PR_SET_PDEATHSIG``).

Why: ``mlflow server`` and ``prefect server start`` run uvicorn as a child of their own, postgres
forks a backend per connection, and ``weed server`` can take seconds to stop. Signalling only the
top process would leave servers holding ports and CPU on a machine shared with other test runs.
Why a script and not ``preexec_fn``: ``preexec_fn`` is unsafe once the parent has threads, and the
parent-death signal must be set by the process that should receive it. ``--user`` starts COMMAND
as that user (PostgreSQL refuses to run as root); the supervisor itself keeps its own user so it
can signal the group.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

GRACE_S = 15.0


def _parent_death_signal(signum: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signum)  # PR_SET_PDEATHSIG


def _stop_group(child: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(child.pid, signum)
    except ProcessLookupError:
        return
    try:
        child.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    try:  # the leader is gone or stuck: nothing of the group may outlive it
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait()


def main(argv: list[str]) -> int:
    parent, stop_signal = int(argv[0]), signal.Signals[argv[1]]
    rest = argv[2:]
    user = None
    if rest[:1] == ["--user"]:
        user, rest = rest[1], rest[2:]
    if rest[:1] != ["--"] or len(rest) < 2:
        raise SystemExit(__doc__)
    command = rest[1:]

    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    _parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent:  # the test process died before the line above took effect
        return 0

    extra = {}
    if user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        extra = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    child = subprocess.Popen(command, start_new_session=True, **extra)
    while not stopping and child.poll() is None:
        time.sleep(0.1)
    if child.poll() is None:
        _stop_group(child, stop_signal)
        return 0
    _stop_group(child, signal.SIGTERM)  # leftovers of a command that exited on its own
    return child.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
