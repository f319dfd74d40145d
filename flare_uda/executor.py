"""One seam for per-case work: serial or process pool, swappable for Ray/Dask.

Stages never loop over cases with their own pool; they call
``executor.map(fn, items)``. A user plugs another engine in by subclassing
:class:`Executor` (one method), without touching any stage.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
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


@dataclass(frozen=True)
class SerialOptions:
    """Options of :class:`SerialExecutor`: ``progress`` shows a bar per ``map`` with a ``desc``."""

    progress: bool = True


@EXECUTORS.register("serial")
class SerialExecutor(Executor):
    """Runs in this process, one item after another (debuggable, the default)."""

    config_class = SerialOptions

    def map(self, fn: Callable[[T], R], items: Iterable[T], desc: str | None = None) -> list[R]:
        items = list(items)
        return [fn(x) for x in tqdm(items, desc=desc, disable=not self.config.progress or not desc)]


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


@EXECUTORS.register("process")
class ProcessExecutor(Executor):
    """A local process pool (``concurrent.futures``); ``fn`` and items must pickle."""

    config_class = ProcessOptions

    @property
    def workers(self) -> int:
        """The pool size this executor uses (``workers``, or the CPU count)."""
        return self.config.workers or max(1, os.cpu_count() or 1)

    def map(self, fn: Callable[[T], R], items: Iterable[T], desc: str | None = None) -> list[R]:
        items = list(items)
        progress = self.config.progress
        if self.workers == 1 or len(items) <= 1:
            return SerialExecutor(progress=progress).map(fn, items, desc)
        with ProcessPoolExecutor(max_workers=min(self.workers, len(items))) as pool:
            it = pool.map(fn, items)
            return list(tqdm(it, total=len(items), desc=desc, disable=not progress or not desc))


def get_executor(
    spec: str | Mapping | PluginSpec | Executor | None = None, **options: Any
) -> Executor:
    """An executor from a name (``"serial"``, ``"process"``), a ``{name, options}`` spec,
    an instance, or ``None`` (serial); ``options`` apply to a name or ``None``."""
    if isinstance(spec, Executor):
        return spec
    if spec is None or isinstance(spec, str):
        return Executor.from_config({"name": spec or "serial", "options": options})
    return Executor.from_config(spec)
