"""components.locks: the file lock excludes a second holder until released; a finished process is
gone, a running one or an unknown pid is not."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from filelock import Timeout

from components.locks import file_lock, new_owner, owner_gone, process_gone


def test_a_held_file_lock_keeps_others_out_until_released(tmp_path):
    path = tmp_path / "nested" / "store.lock"  # its folder is created
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with file_lock(path):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(30)
    with pytest.raises(Timeout):
        file_lock(path).acquire(timeout=0.1)  # held by the other thread
    release.set()
    thread.join(30)
    lock = file_lock(path)
    lock.acquire(timeout=30)
    assert lock.is_locked and path.is_file()  # the file stays: waiters share one inode
    lock.release()


def test_process_gone_only_for_a_process_that_ended():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_gone(child.pid)
    assert not process_gone(os.getpid())
    assert not process_gone(0)  # an unreadable pid marker: unknown is not gone
    host = new_owner().partition(":")[0]
    assert owner_gone(f"{host}:{child.pid}:x") and not owner_gone(new_owner())
    assert not owner_gone(f"another-host:{child.pid}:x")  # another host's process: unknown here
