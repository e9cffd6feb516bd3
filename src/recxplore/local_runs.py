"""A sweep's runs on this machine: one after the other, or ``jobs`` worker processes.

Every pool (these two and ``RayRuns``) offers the same three calls: ``submit`` a run, ``wait``
for any one submitted run to end, ``shutdown`` (``stopped``: the sweep was interrupted, so runs
still going stop too); ``width`` says how many runs the sweep keeps submitted
at once. The sweep decides what runs next; the pool only runs it.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any


class SerialRuns:
    """Runs in this process, each when it is waited for (``width`` 1: one at a time)."""

    width = 1

    def __init__(self) -> None:
        self.calls: dict[int, tuple[Callable[..., dict[str, Any]], tuple[Any, ...]]] = {}
        self.handles = itertools.count()

    def submit(self, fn: Callable[..., dict[str, Any]], *args: Any) -> int:
        handle = next(self.handles)
        self.calls[handle] = (fn, args)
        return handle

    def wait(self, handles: list[int]) -> tuple[int, dict[str, Any]]:
        fn, args = self.calls.pop(handles[0])
        return handles[0], fn(*args)

    def shutdown(self, stopped: bool) -> None:
        self.calls.clear()


class ProcessRuns:
    """Runs in ``jobs`` spawned worker processes (``width`` jobs: a free worker never waits)."""

    def __init__(self, jobs: int):
        self.width = jobs
        self.executor = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, fn: Callable[..., dict[str, Any]], *args: Any) -> Future:
        return self.executor.submit(fn, *args)

    def wait(self, handles: list[Future]) -> tuple[Future, dict[str, Any]]:
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        first = next(f for f in handles if f in done)  # the earliest submitted of those done
        return first, first.result()

    def shutdown(self, stopped: bool) -> None:
        if stopped:  # the workers stop too (their runs resume from their checkpoints)
            for worker in multiprocessing.active_children():
                worker.terminate()
        self.executor.shutdown(cancel_futures=True)
