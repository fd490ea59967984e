"""A flow's scratch folder for the files its stages hand each other (prepared flows, detector
folders): removed when the flow ends, and, when a run was killed (``kill -9`` gives no chance to
clean up), removed by the next flow that starts, once its owner process is gone."""
from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from components.locks import process_gone

OWNER = ".owner-pid"


def remove_stale(root: Path) -> list[Path]:
    """Scratch folders under ``root`` whose owner process no longer runs."""
    removed = []
    if not root.is_dir():
        return removed
    for folder in root.iterdir():
        marker = folder / OWNER
        if folder.is_dir() and marker.is_file():
            try:
                pid = int(marker.read_text().strip() or 0)
            except ValueError:
                pid = 0
            if pid != os.getpid() and process_gone(pid):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed


@contextlib.contextmanager
def workspace(root: Path, name: str) -> Iterator[Path]:
    root = Path(root)
    remove_stale(root)
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / OWNER).write_text(str(os.getpid()))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
