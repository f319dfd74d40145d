"""Per-case results of a running stage, kept as they finish, so a cut-short stage resumes.

While a stage runs, the :class:`~flare_uda.pipeline.runner.Runner` hands it a
:class:`KeepFinished` executor instead of the configured engine. It passes the
work on to the engine (:meth:`Executor.as_completed`: each result as it
arrives) and writes every finished item's result into the stage folder's
``partial/`` at once, atomically. When the stage is rerun after a kill, an
error or a lost worker (its folder has no ``DONE.json``), the same call finds
those results and computes only the items still missing, so no finished case
is computed twice. The runner removes ``partial/`` once the stage is done.

A call is recognised by its description, a short description of its items
(case ids, volume shapes, plain values) and the function's name; a call that
differs starts afresh. Stage folders are keyed by the stage's configuration
and its inputs, so a rerun in the same folder computes the same results.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import zlib
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from flare_uda._atomic import atomic_path, write_json
from flare_uda.executor import Executor, StreamingExecutor
from flare_uda.volume import Case, Volume

T = TypeVar("T")
R = TypeVar("R")

PARTIAL = "partial"
"""The sub-folder of a stage folder holding the results of unfinished calls."""


def describe(item: Any) -> Any:
    """A short JSON-able description of a work item (ids and shapes, not voxels)."""
    if isinstance(item, Case):
        return {"case": item.case_id, "shape": list(item.image.shape)}
    if isinstance(item, Volume):
        return {"volume": list(item.shape)}
    if isinstance(item, (str, int, float, bool)) or item is None:
        return item
    if isinstance(item, Path):
        return str(item)
    if isinstance(item, (tuple, list)):
        return [describe(x) for x in item]
    return type(item).__qualname__


def function_name(fn: Callable) -> str:
    """The qualified name of ``fn`` (through ``functools.partial`` layers)."""
    while isinstance(fn, partial):
        fn = fn.func
    return getattr(fn, "__qualname__", type(fn).__qualname__)


class KeepFinished(StreamingExecutor):
    """An executor that keeps each finished result in ``folder`` and reuses it on a rerun.

    Parameters
    ----------
    engine : Executor
        The engine that computes the missing items.
    folder : path-like
        Where results are kept (``<stage folder>/partial``).
    """

    def __init__(self, engine: Executor, folder: str | Path) -> None:
        super().__init__()
        if not isinstance(engine, Executor):
            raise TypeError(f"engine must be an Executor, got {type(engine).__name__}")
        self.engine, self.folder = engine, Path(folder)
        self._seen: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"KeepFinished({self.engine!r}, {str(self.folder)!r})"

    def as_completed(
        self, fn: Callable[[T], R], items: Iterable[T], desc: str | None = None
    ) -> Iterator[tuple[int, R]]:
        items = list(items)
        where = self._call_folder(fn, items, desc)
        todo = []
        for index in range(len(items)):
            path = where / f"{index:06d}.pkl.z"
            if path.is_file():
                yield index, pickle.loads(zlib.decompress(path.read_bytes()))
            else:
                todo.append(index)
        if not todo:
            return
        for j, result in self.engine.as_completed(fn, [items[i] for i in todo], desc):
            with atomic_path(where / f"{todo[j]:06d}.pkl.z") as tmp:
                tmp.write_bytes(zlib.compress(pickle.dumps(result, protocol=5), 1))
            yield todo[j], result

    def _call_folder(self, fn: Callable, items: list, desc: str | None) -> Path:
        """The folder of this call's results (emptied when it holds another call's)."""
        call = {"desc": desc, "fn": function_name(fn), "items": [describe(x) for x in items]}
        text = json.dumps(call, sort_keys=True, default=str)
        key = hashlib.sha256(text.encode()).hexdigest()[:12]
        self._seen[key] = self._seen.get(key, -1) + 1  # the same call twice: two folders
        where = self.folder / f"{key}-{self._seen[key]}"
        manifest = where / "call.json"
        if manifest.is_file() and json.loads(manifest.read_text()) != json.loads(text):
            shutil.rmtree(where)
        if not manifest.is_file():
            write_json(manifest, call)
        return where

    def clear(self) -> None:
        """Remove every kept result (the stage is done)."""
        shutil.rmtree(self.folder, ignore_errors=True)
