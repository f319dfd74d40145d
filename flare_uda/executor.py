"""One seam for per-case work: serial, a process pool or a Ray cluster, swappable.

Stages never loop over cases with their own pool; they call
``executor.map(fn, items)``. A user plugs another engine in by subclassing
:class:`Executor` (one method), without touching any stage. Engines that can
hand results over as they finish also override :meth:`Executor.as_completed`,
which the pipeline uses to keep every finished case of a stage that is cut
short (:mod:`flare_uda.pipeline.partial`). The Ray engine lives in
:mod:`flare_uda.ray_executor` (an optional extra, ``flare-uda[distributed]``).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, TypeVar

from tqdm.auto import tqdm

from flare_uda.plugin import Plugin, PluginSpec
from flare_uda.registry import Registry

T = TypeVar("T")
R = TypeVar("R")

EXECUTORS: Registry[type[Executor]] = Registry("executor")


class Executor(Plugin, ABC):
    """Maps a picklable function over items, results in input order."""

    kind = "executor"

    @abstractmethod
    def map(self, fn: Callable[[T], R], items: Iterable[T], desc: str | None = None) -> list[R]:
        """Apply ``fn`` to every item; return results in the order of ``items``."""

    def as_completed(
        self, fn: Callable[[T], R], items: Iterable[T], desc: str | None = None
    ) -> Iterator[tuple[int, R]]:
        """Apply ``fn`` to every item, yielding ``(index, result)`` as each one finishes.

        The order is the engine's; every index comes once. This default runs
        :meth:`map` and yields its results in input order at its end; engines
        that can stream (process pool, Ray) yield each result as it arrives.
        """
        yield from enumerate(self.map(fn, items, desc))


class StreamingExecutor(Executor, ABC):
    """An engine whose primitive is :meth:`as_completed`; :meth:`map` puts its results
    back in input order."""

    def map(self, fn: Callable[[T], R], items: Iterable[T], desc: str | None = None) -> list[R]:
        items = list(items)
        results: list[Any] = [None] * len(items)
        for index, result in self.as_completed(fn, items, desc):
            results[index] = result
        return results

    @abstractmethod
    def as_completed(
        self, fn: Callable[[T], R], items: Iterable[T], desc: str | None = None
    ) -> Iterator[tuple[int, R]]:
        """Apply ``fn`` to every item, yielding ``(index, result)`` as each one finishes."""


@dataclass(frozen=True)
class SerialOptions:
    """Options of :class:`SerialExecutor`: ``progress`` shows a bar per ``map`` with a ``desc``."""

    progress: bool = True


@EXECUTORS.register("serial")
class SerialExecutor(Executor):
    """Runs in this process, one item after another (debuggable, the default)."""

    config_class = SerialOptions

    def map(self, fn: Callable[[T], R], items: Iterable[T], desc: str | None = None) -> list[R]:
        return [result for _, result in self.as_completed(fn, items, desc)]

    def as_completed(
        self, fn: Callable[[T], R], items: Iterable[T], desc: str | None = None
    ) -> Iterator[tuple[int, R]]:
        items = list(items)
        bar = tqdm(items, desc=desc, disable=not self.config.progress or not desc)
        for index, item in enumerate(bar):
            yield index, fn(item)


@dataclass(frozen=True)
class ProcessOptions:
    """Options of :class:`ProcessExecutor`.

    Parameters
    ----------
    workers : int or None
        Processes in the pool; ``None``: one per CPU core.
    progress : bool
    """

    workers: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1 (or null: one per core), got {self.workers}")


def _torch_threads(threads: int) -> None:
    """Pool initializer: ``threads`` torch threads per worker (cores / workers, not cores each),
    when torch is loaded (the work brings it along)."""
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


@EXECUTORS.register("process")
class ProcessExecutor(Executor):
    """A local process pool (``concurrent.futures``); ``fn`` and items must pickle.

    Each worker uses ``cores // workers`` torch threads (at least 1), so the
    pool does not run ``workers x cores`` threads on ``cores`` cores.
    """

    config_class = ProcessOptions

    @property
    def workers(self) -> int:
        """The pool size this executor uses (``workers``, or the CPU count)."""
        return self.config.workers or max(1, os.cpu_count() or 1)

    def _pool(self, n_items: int) -> ProcessPoolExecutor:
        """A pool of ``min(workers, n_items)`` processes, each with its share of torch threads."""
        n = min(self.workers, n_items)
        threads = max(1, (os.cpu_count() or 1) // n)
        return ProcessPoolExecutor(max_workers=n, initializer=_torch_threads, initargs=(threads,))

    def map(self, fn: Callable[[T], R], items: Iterable[T], desc: str | None = None) -> list[R]:
        items = list(items)
        progress = self.config.progress
        if self.workers == 1 or len(items) <= 1:
            return SerialExecutor(progress=progress).map(fn, items, desc)
        with self._pool(len(items)) as pool:
            it = pool.map(fn, items)
            return list(tqdm(it, total=len(items), desc=desc, disable=not progress or not desc))

    def as_completed(
        self, fn: Callable[[T], R], items: Iterable[T], desc: str | None = None
    ) -> Iterator[tuple[int, R]]:
        items = list(items)
        progress = self.config.progress
        if self.workers == 1 or len(items) <= 1:
            yield from SerialExecutor(progress=progress).as_completed(fn, items, desc)
            return
        with self._pool(len(items)) as pool:
            futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
            bar = tqdm(total=len(items), desc=desc, disable=not progress or not desc)
            with bar:
                for future in as_completed(futures):
                    bar.update()
                    yield futures[future], future.result()


def get_executor(
    spec: str | Mapping | PluginSpec | Executor | None = None, **options: Any
) -> Executor:
    """An executor from a name (``"serial"``, ``"process"``, ``"ray"``), a ``{name, options}`` spec,
    an instance, or ``None`` (serial); ``options`` apply to a name or ``None``."""
    if isinstance(spec, Executor):
        return spec
    if spec is None or isinstance(spec, str):
        return Executor.from_config({"name": spec or "serial", "options": options})
    return Executor.from_config(spec)


from flare_uda import ray_executor as _ray_executor  # noqa: E402,F401  (registers "ray")
