"""``python -m flows.prefect_server_child PARENT_PID UVICORN_ARGS...``: Prefect's API under uvicorn,
stopped by the kernel when the flowae process that started it dies (even by ``kill -9``).

Why a module and not ``preexec_fn``: ``preexec_fn`` is unsafe once the parent has threads. Here the
child asks for ``PR_SET_PDEATHSIG`` itself, re-checks that its parent is still the one that started
it (closing the race), then becomes uvicorn with ``exec``.
"""
from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> None:
    parent = int(argv[0])
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the line above took effect
        sys.exit(0)
    os.execv(sys.executable, [sys.executable, "-m", "uvicorn", *argv[1:]])


if __name__ == "__main__":
    main(sys.argv[1:])
