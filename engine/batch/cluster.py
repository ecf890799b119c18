"""Where a batch runs: an embedded local Dask cluster, or an existing one given by its scheduler address.

CPU work: a `LocalCluster` of worker processes, one per core (or `workers`), one thread each, so
each worker runs one pullback with one inference thread. GPU work: every task asks for the worker
resource `GPU=1`, so a worker offering `GPU=1` runs one pullback at a time on its GPU; locally
that is dask-cuda's `LocalCUDACluster` (one worker per visible GPU, each pinned to its own) when
dask-cuda is installed, else one worker on the default GPU. Everything binds to loopback.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dask
from distributed import Client, LocalCluster

from engine.errors import InputError

GPU_RESOURCE = "GPU"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ClusterRequest:
    """How to get workers: `scheduler` address, else a local cluster of `workers` (None: one per core)."""

    scheduler: str | None = None
    workers: int | None = None
    gpu: bool = False
    dashboard: bool = False
    retries: int = 3  # times a task may be on a worker that dies before it is declared lost (local cluster)


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def task_resources(gpu: bool) -> dict[str, float] | None:
    """The resources each task asks for: one GPU for GPU work, none for CPU work."""
    return {GPU_RESOURCE: 1} if gpu else None


def _local_cluster(request: ClusterRequest) -> LocalCluster:
    dashboard = f"{LOOPBACK}:8787" if request.dashboard else None  # another free port when taken
    common = {"threads_per_worker": 1, "dashboard_address": dashboard, "host": LOOPBACK}
    if request.gpu:
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError:
            return LocalCluster(n_workers=1, processes=True, resources={GPU_RESOURCE: 1}, **common)
        return LocalCUDACluster(n_workers=request.workers, resources={GPU_RESOURCE: 1}, **common)
    return LocalCluster(n_workers=request.workers or available_cores(), processes=True, **common)


def _check_gpu_workers(client: Client) -> None:
    offered = [w for w in client.scheduler_info()["workers"].values() if w.get("resources", {}).get(GPU_RESOURCE)]
    if not offered:
        raise InputError(
            f"no worker of the cluster offers the resource {GPU_RESOURCE}; start GPU workers with "
            f"--resources {GPU_RESOURCE}=1 (one per GPU), or run on the CPU (--device cpu)",
            source=client.scheduler.address,
        )


@contextmanager
def connect(request: ClusterRequest) -> Iterator[Client]:
    """A client of the requested cluster; a local cluster is started here and shut down on exit."""
    if request.scheduler is not None:
        try:
            client = Client(request.scheduler, timeout="20s")
        except OSError as error:
            raise InputError(f"cannot reach the Dask scheduler ({error})", source=request.scheduler) from None
        with client:
            if request.gpu:
                _check_gpu_workers(client)
            yield client
        return
    if not logging.getLogger().isEnabledFor(logging.DEBUG):  # the local nannies' shutdown notices are no news
        logging.getLogger("distributed").setLevel(logging.ERROR)
    with dask.config.set({"distributed.scheduler.allowed-failures": request.retries}), warnings.catch_warnings():
        # "Port 8787 is already in use ... on port N instead": harmless, the link printed is the real one
        warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
        with _local_cluster(request) as cluster, Client(cluster) as client:
            yield client
