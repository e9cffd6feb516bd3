"""A sweep's runs as Ray tasks (``recxplore sweep FILE --ray [ADDRESS]``).

Each (cell, seed) is one task asking for ``train.threads`` CPUs (1 when 0) and, with
``train.device`` set to a CUDA device, one GPU. Tasks run the same function a local worker runs,
so they go through the same cache under ``paths.home``, which every node must reach at the same
path (a shared filesystem whose file locks hold across machines: docs/sweeps-and-reports.md), and
a failed run is recorded as it is locally. A task whose worker dies is recorded as failed too.
Without an address a local Ray instance is started on this machine and stopped at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

from recxplore.errors import ConfigError


class RayRuns:
    """The sweep's pool, on Ray (the interface of ``recxplore.local_runs``)."""

    width = 1 << 30  # every run the sweep has ready goes to Ray at once; Ray places them

    def __init__(self, address: Optional[str]):
        try:
            import ray
        except ImportError:
            raise ConfigError(
                ["sweep --ray: Ray is not installed; pip install 'ray>=2.9' (or recxplore[ray])"]
            ) from None
        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                ignore_reinit_error=True,
            )
        self.pending: dict[Any, list[str]] = {}  # submitted, not yet waited for
        self.tasks: dict[Callable[..., Any], Any] = {}  # each function made a Ray task once

    def submit(self, fn: Callable[..., dict[str, Any]], *args: Any) -> Any:
        sweep, overrides, seed = args[0], args[1], args[2]
        cfg = sweep.config(overrides, seed)
        gpus = 1 if str(cfg.train.device).startswith("cuda") else 0
        options = {"num_cpus": cfg.train.threads or 1, "num_gpus": gpus, "max_retries": 0}
        task = self.tasks.setdefault(fn, self.ray.remote(fn))
        ref = task.options(**options).remote(*args)
        self.pending[ref] = overrides
        return ref

    def wait(self, handles: list[Any]) -> tuple[Any, dict[str, Any]]:
        (ref,), _ = self.ray.wait(handles, num_returns=1)
        overrides = self.pending.pop(ref)
        try:
            return ref, self.ray.get(ref)
        except self.ray.exceptions.RayError as err:  # the worker died, or Ray stopped
            error = f"{type(err).__name__}: {str(err).splitlines()[0]}"
            entry = {"overrides": overrides, "status": "failed", "error": error}
            return ref, {"entry": entry, "results": None}

    def shutdown(self, stopped: bool) -> None:
        for ref in self.pending if stopped else ():
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 -- a finished task cannot be cancelled
                pass
        if self.started:
            self.ray.shutdown()
