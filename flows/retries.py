"""Which task failures Prefect should retry: transient I/O errors only (a network share that
hiccupped); a data problem would fail the same way again."""
from __future__ import annotations


def retry_on_io_error(task_obj, task_run, state) -> bool:
    try:
        state.result()
    except OSError:
        return True
    except Exception:  # noqa: BLE001 - any other failure is final
        return False
    return False
