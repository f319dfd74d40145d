"""One seam for per-case work: serial or process pool, swappable for Ray/Dask.

Stages never loop over cases with their own pool; they call
``executor.map(fn, items)``. A user plugs another engine in by subclassing
:class:`Executor` (one method), without touching any stage.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from tqdm.auto import tqdm

from flare_uda.registry import Registry

T = TypeVar("T")
R = TypeVar("R")

EXECUTORS: Registry[type[Executor]] = Registry("executor")


class Executor(ABC):
    """Maps a picklable function over items, results in input order."""

    @abstractmethod
    def map(self, fn: Callable[[T], R], items: Iterable[T], desc: str | None = None) -> list[R]:
        """Apply ``fn`` to every item; return results in the order of ``items``."""


@EXECUTORS.register("serial")
class SerialExecutor(Executor):
    """Runs in this process, one item after another (debuggable, the default)."""

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress

    def map(self, fn: Callable[[T], R], items: Iterable[T], desc: str | None = None) -> list[R]:
        items = list(items)
        return [fn(x) for x in tqdm(items, desc=desc, disable=not self.progress or not desc)]


@EXECUTORS.register("process")
class ProcessExecutor(Executor):
    """A local process pool (``concurrent.futures``); ``fn`` and items must pickle."""

    def __init__(self, workers: int | None = None, progress: bool = True) -> None:
        if workers is not None and int(workers) < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = int(workers) if workers else max(1, (os.cpu_count() or 1))
        self.progress = progress

    def map(self, fn: Callable[[T], R], items: Iterable[T], desc: str | None = None) -> list[R]:
        items = list(items)
        if self.workers == 1 or len(items) <= 1:
            return SerialExecutor(self.progress).map(fn, items, desc)
        with ProcessPoolExecutor(max_workers=min(self.workers, len(items))) as pool:
            it = pool.map(fn, items)
            return list(
                tqdm(it, total=len(items), desc=desc, disable=not self.progress or not desc)
            )


def get_executor(spec: str | Executor | None = None, **kwargs: Any) -> Executor:
    """An executor from a name (``"serial"``, ``"process"``), an instance, or ``None`` (serial)."""
    if spec is None:
        return SerialExecutor(**kwargs)
    if isinstance(spec, Executor):
        return spec
    return EXECUTORS.get(spec)(**kwargs)
