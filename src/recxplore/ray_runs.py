"""A sweep's runs as Ray tasks (``recxplore sweep FILE --ray [ADDRESS]``).

Each (cell, seed) is one task asking for ``train.threads`` CPUs (1 when 0) and, with
``train.device`` set to a CUDA device, one GPU. Tasks run the same function a local worker runs,
so they go through the same cache under ``paths.home``, which every node must reach at the same
path (a shared filesystem whose file locks hold across machines: docs/sweeps-and-reports.md), and
a failed run is recorded as it is locally. A task whose worker dies is recorded as failed too.
Without an address a local Ray instance is started on this machine and stopped at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Optional

from recxplore.errors import ConfigError


class RayRuns:
    """The sweep's pool, on Ray: ``map`` submits every task at once and yields in order."""

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
        self.pending: list[Any] = []

    def map(self, fn: Callable[..., dict[str, Any]], *columns: Iterable[Any]) -> Iterator[Any]:
        task = self.ray.remote(fn)
        self.pending = []
        for args in zip(*columns):
            sweep, overrides, seed = args[0], args[1], args[2]
            cfg = sweep.config(overrides, seed)
            gpus = 1 if str(cfg.train.device).startswith("cuda") else 0
            options = {"num_cpus": cfg.train.threads or 1, "num_gpus": gpus, "max_retries": 0}
            self.pending.append((overrides, task.options(**options).remote(*args)))
        for overrides, ref in self.pending:
            try:
                yield self.ray.get(ref)
            except self.ray.exceptions.RayError as err:  # the worker died, or Ray stopped
                error = f"{type(err).__name__}: {str(err).splitlines()[0]}"
                yield {
                    "entry": {"overrides": overrides, "status": "failed", "error": error},
                    "results": None,
                }

    def shutdown(self, cancel_futures: bool = True) -> None:
        if cancel_futures:
            for _, ref in self.pending:
                try:
                    self.ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 -- a finished task cannot be cancelled
                    pass
        if self.started:
            self.ray.shutdown()
