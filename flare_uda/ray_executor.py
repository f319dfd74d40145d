"""The Ray engine behind the executor seam: per-case work as Ray tasks, locally or on a cluster.

Each item becomes one Ray task that declares its resources (``cpus_per_task``
CPU threads, ``gpus_per_task`` GPUs: Ray then shows the task only its own
GPUs, as ``cuda:0``), so Ray packs as many tasks on a node as fit. The
function is put into Ray's object store once per :meth:`RayExecutor.map` and
deserialised once per worker process, not once per task; items travel through
the object store (numpy arrays are read there without a copy, read-only), so
no task reads a volume from disk again. A task whose worker process dies (a
killed process, a lost node) is retried up to ``max_retries`` times; an
exception raised by the function itself is not retried and reaches the caller
as itself. Results come back in input order (:meth:`~RayExecutor.map`) or as
they finish (:meth:`~RayExecutor.as_completed`), identical to the serial
executor's.

``address=None`` starts a local Ray runtime in this process on first use
(small object store, no dashboard, quiet logs), or reuses the one already
running; ``"auto"`` joins the cluster this machine belongs to (``ray start``),
``"HOST:PORT"`` a given head node, ``"ray://HOST:10001"`` a cluster through
Ray Client. Ray itself is an optional extra: ``pip install 'flare-uda[distributed]'``.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from tqdm.auto import tqdm

from flare_uda.executor import EXECUTORS, StreamingExecutor

T = TypeVar("T")
R = TypeVar("R")

INSTALL_HINT = "pip install 'flare-uda[distributed]' (or: pip install 'ray>=2.9')"


def require_ray():
    """The ``ray`` module; an ``ImportError`` that says how to install it when it is missing."""
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            f"the ray executor needs Ray, which is not installed: {INSTALL_HINT}"
        ) from err
    return ray


@dataclass(frozen=True)
class RayOptions:
    """Options of :class:`RayExecutor`.

    Parameters
    ----------
    address : str or None
        ``None``: a local Ray runtime (started on first use, or the one already
        running in this process); ``"auto"``: the cluster this machine belongs
        to; ``"HOST:PORT"`` or ``"ray://HOST:PORT"``: that cluster.
    workers : int or None
        Local runtime only: the CPUs it offers (``None``: every core).
    cpus_per_task : float
        CPUs each task reserves; torch in the task uses that many threads (at least 1).
    gpus_per_task : float
        GPUs each task reserves (e.g. 0.25: four tasks share a GPU); 0 on CPU clusters.
    max_retries : int
        Times a task is rerun after its worker process died.
    max_pending : int or None
        Tasks submitted at once (their items wait in the object store); ``None``:
        twice the number of tasks the cluster can run at a time.
    object_store_mb : int
        Local runtime only: the object store's size in MiB (at least 80).
    progress : bool
        A progress bar per ``map`` with a ``desc``.
    """

    address: str | None = None
    workers: int | None = None
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0
    max_retries: int = 3
    max_pending: int | None = None
    object_store_mb: int = 256
    progress: bool = True

    def __post_init__(self) -> None:
        if self.address is not None and not str(self.address).strip():
            raise ValueError(
                "address must be null (a local runtime), 'auto' or HOST:PORT, got an empty string"
            )
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1 (or null: one per core), got {self.workers}")
        if not self.cpus_per_task > 0:
            raise ValueError(f"cpus_per_task must be > 0, got {self.cpus_per_task}")
        if not self.gpus_per_task >= 0:
            raise ValueError(f"gpus_per_task must be >= 0, got {self.gpus_per_task}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.max_pending is not None and self.max_pending < 1:
            raise ValueError(f"max_pending must be >= 1 (or null), got {self.max_pending}")
        if self.object_store_mb < 80:
            raise ValueError(
                f"object_store_mb must be >= 80 (Ray's minimum), got {self.object_store_mb}"
            )


_FUNCTIONS: dict[str, Any] = {}
"""Per worker process: the function of the current map, by object id (deserialised once)."""


def _run_task(fn_box: list, item: Any, threads: int) -> Any:
    """The body of every task: the map's function (cached per worker) applied to ``item``."""
    import ray
    import torch

    ref = fn_box[0]  # boxed, so Ray hands the reference over instead of the value
    key = ref.hex()
    if key not in _FUNCTIONS:
        _FUNCTIONS.clear()  # only the current map's function is kept
        _FUNCTIONS[key] = ray.get(ref)
    torch.set_num_threads(threads)
    return _FUNCTIONS[key](item)


def connect(options: RayOptions) -> Any:
    """The ``ray`` module, initialised per ``options`` unless Ray already runs in this process."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    if options.address is not None:
        ray.init(address=options.address, **quiet)
        return ray
    ray.init(
        num_cpus=options.workers or max(1, os.cpu_count() or 1),
        object_store_memory=options.object_store_mb * 2**20,
        include_dashboard=False,
        **quiet,
    )
    return ray


@EXECUTORS.register("ray")
class RayExecutor(StreamingExecutor):
    """Per-case work as Ray tasks (see the module docstring); ``fn`` and items must pickle."""

    config_class = RayOptions

    def as_completed(
        self, fn: Callable[[T], R], items: Iterable[T], desc: str | None = None
    ) -> Iterator[tuple[int, R]]:
        """Yield ``(index, result)`` as tasks finish.

        An item whose worker died more than ``max_retries`` times does not stop
        the others: every other item still runs and is yielded, then a
        ``RuntimeError`` names the lost item(s). An exception raised by ``fn``
        is raised at once, as itself.
        """
        items = list(items)
        if not items:
            return
        ray = connect(self.config)
        opts = self.config
        self.check_feasible(ray)
        task = _remote(ray).options(
            num_cpus=opts.cpus_per_task,
            num_gpus=opts.gpus_per_task,
            max_retries=opts.max_retries,
            retry_exceptions=False,
        )
        fn_box = [ray.put(fn)]
        threads = max(1, int(opts.cpus_per_task))
        limit = opts.max_pending or 2 * self.slots(ray)
        pending: dict[Any, int] = {}
        todo = iter(enumerate(items))
        lost: list[tuple[int, BaseException]] = []
        with tqdm(total=len(items), desc=desc, disable=not opts.progress or not desc) as bar:
            while True:
                for index, item in itertools.islice(todo, max(0, limit - len(pending))):
                    pending[task.remote(fn_box, item, threads)] = index
                if not pending:
                    break
                done, _ = ray.wait(list(pending), num_returns=1)
                index = pending.pop(done[0])
                bar.update()
                try:
                    result = _result(ray, done[0])
                except _WorkerLost as err:
                    lost.append((index, err.__cause__))
                    continue
                yield index, result
        if lost:
            what = f" of {desc!r}" if desc else ""
            raise RuntimeError(
                f"{len(lost)} item(s){what} lost (indices {[i for i, _ in lost]}): the Ray "
                f"worker running each died {opts.max_retries + 1} time(s) "
                f"(max_retries={opts.max_retries}; {type(lost[0][1]).__name__}); every other "
                f"item finished (the pipeline keeps them: rerun to compute only the lost ones)"
            ) from lost[0][1]

    def check_feasible(self, ray: Any) -> None:
        """Raise ``ValueError`` unless some node of the cluster can run one task (else Ray
        would wait for such a node for ever)."""
        need = {"CPU": self.config.cpus_per_task, "GPU": self.config.gpus_per_task}
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive", True)]
        if any(all(r.get(k, 0.0) >= v for k, v in need.items() if v > 0) for r in nodes):
            return
        have = [{k: r.get(k, 0.0) for k in need} for r in nodes]
        raise ValueError(
            f"no node of the Ray cluster can run a task that needs {self.config.cpus_per_task} "
            f"CPU(s) and {self.config.gpus_per_task} GPU(s) (cpus_per_task, gpus_per_task); "
            f"its nodes have {have}"
        )

    def slots(self, ray: Any) -> int:
        """How many tasks the cluster can run at once (by its CPUs and GPUs), at least 1."""
        resources = ray.cluster_resources()
        n = resources.get("CPU", 1.0) / self.config.cpus_per_task
        if self.config.gpus_per_task > 0:
            n = min(n, resources.get("GPU", 0.0) / self.config.gpus_per_task)
        return max(1, int(n))


class _WorkerLost(Exception):
    """A task's worker process (or node) died on every try."""


def _result(ray: Any, ref: Any) -> Any:
    """The task's result; ``fn``'s own exception re-raised as itself."""
    lost = tuple(
        getattr(ray.exceptions, name)
        for name in ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError")
        if hasattr(ray.exceptions, name)
    )
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        cause = getattr(err, "cause", None)
        if isinstance(cause, BaseException):
            raise cause from None
        raise
    except lost as err:
        raise _WorkerLost() from err


_REMOTE: dict[int, Any] = {}


def _remote(ray: Any) -> Any:
    """``_run_task`` as a Ray remote function (made once per process)."""
    if not _REMOTE:
        _REMOTE[0] = ray.remote(_run_task)
    return _REMOTE[0]
