"""Stage objects and the runner that caches, times and logs them.

A :class:`Stage` is one step of a pipeline: it names its upstream stages, says
what its result depends on (:meth:`Stage.config`, part of its cache key), and
knows how to compute its result (:meth:`Stage.run`) and how to read it back
from its folder (:meth:`Stage.load`). Stages chain into a graph that a user
builds in Python (:mod:`flare_uda.pipeline.stages`,
:mod:`flare_uda.pipeline.settings`); a :class:`Runner` computes any stage of
it, once per run, each in ``run_dir/stages/<name>-<key>/`` (keys chain, so a
changed option reruns that stage and what depends on it, nothing else).

The runner logs whether each stage runs or comes from the cache, records its
wall time (in the stage's ``DONE.json`` and in :attr:`Runner.records`, for the
report), and after each stage it ran prints an estimate of the time the
planned stages still need: stages that train report their amount of work
(:meth:`Stage.work`, e.g. iterations x batch x patch voxels), and the runner
divides by the rate it measured on the stages of that kind it already ran. Per-case work
keeps its finished cases (:mod:`flare_uda.pipeline.partial`): a cut-short stage resumes.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from flare_uda._validation import require_int
from flare_uda.executor import Executor, SerialExecutor
from flare_uda.pipeline.cache import StageCache, stage_key
from flare_uda.pipeline.partial import PARTIAL, KeepFinished


class Stage(ABC):
    """One step of a pipeline (see the module docstring).

    Attributes
    ----------
    name : str
        Folder prefix and log name (e.g. ``"train_asit"``).
    upstream : tuple of Stage
        Stages whose results :meth:`run` receives, in order.
    cached : bool
        False for stages that only hand over inputs (nothing written).
    """

    name: str
    upstream: tuple[Stage, ...] = ()
    cached: bool = True

    def config(self) -> Any:
        """What the result depends on besides the upstream results (JSON-able)."""
        return {}

    @abstractmethod
    def run(self, runner: Runner, folder: Path | None, *inputs: Any) -> Any:
        """Compute the result into ``folder`` from the upstream results ``inputs``."""

    def load(self, runner: Runner, folder: Path) -> Any:
        """Read the result a finished :meth:`run` left in ``folder``."""
        raise NotImplementedError(f"{type(self).__name__} does not load cached results")

    def describe(self) -> str:
        """One line for the log: what running this stage does."""
        return self.name

    def info(self, result: Any) -> dict:
        """Extra facts about ``result`` for ``DONE.json`` (JSON-able)."""
        return {}

    def work(self) -> tuple[str, float] | None:
        """(kind, amount) of work, for time estimates; ``None`` when not estimated."""
        return None

    def max_seconds(self) -> float | None:
        """An upper bound of the stage's wall time (e.g. a training's time budget), or None."""
        return None

    def check(self) -> None:
        """Raise ``ValueError`` if this stage cannot run (called before any stage runs)."""
        return None


@dataclass(frozen=True)
class StageRecord:
    """How one stage was obtained in a run.

    ``status`` is ``"ran"``, ``"cached"`` (read back, or not needed because
    what depends on it was cached too) or ``"not run"`` (an error stopped its
    setting); ``seconds`` is the wall time of the run that computed the result
    (for a cached stage, the earlier run's).
    """

    name: str
    key: str
    status: str
    seconds: float | None


def walk(stages: Iterable[Stage]) -> list[Stage]:
    """Every stage the given ones depend on (themselves included), upstream first, once each."""
    seen: dict[int, Stage] = {}

    def visit(stage: Stage) -> None:
        if id(stage) in seen:
            return
        for up in stage.upstream:
            visit(up)
        seen[id(stage)] = stage

    for stage in stages:
        visit(stage)
    return list(seen.values())


class Runner:
    """Computes stages once per run, from the cache when their folder is done.

    Parameters
    ----------
    run_dir : path-like
        Stage folders go to ``run_dir/stages``.
    device : str or torch.device
        Where stages that train or predict run.
    executor : Executor, optional
        The per-case engine (default serial); a running stage's :attr:`executor` wraps it.
    progress : bool
        Progress bars and log lines.
    log : callable, optional
        Receives each log line (default: print with a ``[flare-uda]`` prefix).
    train_processes : int
        Processes per training stage (> 1: torchrun, :mod:`flare_uda.segmentation.launch`).
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        device: str | torch.device = "cpu",
        executor: Executor | None = None,
        progress: bool = True,
        log: Callable[[str], None] | None = None,
        train_processes: int = 1,
    ) -> None:
        self.train_processes = require_int(train_processes, "train_processes", 1)
        self.cache = StageCache(Path(run_dir) / "stages")
        self.device = torch.device(device)
        self.engine = executor if executor is not None else SerialExecutor(progress=progress)
        self._running: KeepFinished | None = None
        self.progress, self._log = progress, log
        self.records: list[StageRecord] = []
        self._planned: dict[str, Stage] = {}  # key -> stage, upstream first
        self._keys: dict[int, tuple[Stage, str]] = {}  # the stage is kept: ids stay unique
        self._results: dict[str, Any] = {}
        self._pending: dict[str, Stage] = {}
        self._measured: dict[str, list[float]] = {}  # kind -> [seconds, amount]

    @property
    def executor(self) -> Executor:
        """The per-case engine; while a stage runs, one that keeps its finished cases."""
        return self._running if self._running is not None else self.engine

    def log(self, message: str) -> None:
        if self._log is not None:
            self._log(message)
        elif self.progress:
            print(f"[flare-uda] {message}", flush=True)

    def key(self, stage: Stage) -> str:
        """The cache key of ``stage``: its name, config and its upstream stages' keys."""
        if id(stage) not in self._keys:
            upstream = tuple(self.key(u) for u in stage.upstream)
            self._keys[id(stage)] = (stage, stage_key(stage.name, stage.config(), upstream))
        return self._keys[id(stage)][1]

    def plan(self, stages: Sequence[Stage]) -> list[Stage]:
        """Check every stage the given ones need and note those not cached yet (for estimates).

        Returns the stages that will run. Raises what a stage's :meth:`Stage.check` raises.
        """
        todo, cached = [], 0
        for stage in walk(stages):
            stage.check()
            key = self.key(stage)
            if not stage.cached or key in self._planned:
                continue
            self._planned[key] = stage
            if self.cache.folder(stage.name, key).done:
                cached += 1
            else:
                self._pending[key] = stage
                todo.append(stage)
        self.log(f"plan: {len(todo)} stage(s) to run, {cached} from the cache")
        return todo

    def summary(self) -> list[StageRecord]:
        """Every planned stage (upstream first): how it was obtained, its wall time."""
        done = {r.key: r for r in self.records}
        out = []
        for key, stage in self._planned.items():
            if key in done:
                out.append(done[key])
                continue
            folder = self.cache.folder(stage.name, key)
            seconds = folder.info().get("seconds") if folder.done else None
            out.append(
                StageRecord(stage.name, key, "cached" if folder.done else "not run", seconds)
            )
        return out

    def has(self, stage: Stage) -> bool:
        """Whether :meth:`get` computes nothing: the result is held, its folder is done, or
        the stage only hands over inputs (not cached)."""
        key = self.key(stage)
        return key in self._results or not stage.cached or self.cache.folder(stage.name, key).done

    def get(self, stage: Stage) -> Any:
        """The result of ``stage`` (run, or read from its finished folder), computed once."""
        key = self.key(stage)
        if key in self._results:
            return self._results[key]
        if not stage.cached:
            result = stage.run(self, None, *(self.get(u) for u in stage.upstream))
            self._results[key] = result
            return result
        folder = self.cache.folder(stage.name, key)
        if folder.done:
            self.log(f"cached {stage.name}-{key}")
            result = stage.load(self, folder.dir)
            self.records.append(
                StageRecord(stage.name, key, "cached", folder.info().get("seconds"))
            )
        else:
            inputs = [self.get(u) for u in stage.upstream]
            folder.dir.mkdir(parents=True, exist_ok=True)
            self.log(f"run    {stage.name}-{key}: {stage.describe()}")
            start = time.perf_counter()
            outer, self._running = self._running, KeepFinished(self.engine, folder.dir / PARTIAL)
            try:
                result = stage.run(self, folder.dir, *inputs)
            finally:
                keep, self._running = self._running, outer
            seconds = time.perf_counter() - start
            folder.mark_done({**stage.info(result), "seconds": round(seconds, 3)})
            keep.clear()
            self.records.append(StageRecord(stage.name, key, "ran", seconds))
            self._finished(stage, key, seconds)
        self._results[key] = result
        return result

    def _finished(self, stage: Stage, key: str, seconds: float) -> None:
        self._pending.pop(key, None)
        work = stage.work()
        if work is not None and work[1] > 0 and stage.max_seconds() is None:  # not cut short
            total = self._measured.setdefault(work[0], [0.0, 0.0])
            total[0] += seconds
            total[1] += work[1]
        left = f"; {self.remaining()}" if self._planned else ""  # nothing planned: no estimate
        self.log(f"done   {stage.name} in {format_seconds(seconds)}{left}")

    def remaining(self) -> str:
        """An estimate of the time the planned stages not run yet need, in words.

        Only stages that report their work (:meth:`Stage.work`) are estimated, and only
        once a stage of the same kind ran in this run: work x its measured seconds per unit,
        at most the stage's :meth:`Stage.max_seconds` (a time budget, which alone is the
        estimate before any speed was measured).
        """
        if not self._pending:
            return "no planned stage left"
        estimated, seconds, other = 0, 0.0, 0
        for stage in self._pending.values():
            work, bound = stage.work(), stage.max_seconds()
            measured = self._measured.get(work[0]) if work is not None else None
            if measured is None and bound is None:
                other += 1
                continue
            guess = work[1] * measured[0] / measured[1] if measured is not None else bound
            estimated += 1
            seconds += guess if bound is None else min(guess, bound)
        text = f"{len(self._pending)} stage(s) left"
        if estimated:
            text += f", ~{format_seconds(seconds)} estimated for the {estimated} that train"
        if other:
            text += f", {other} not estimated"
        return text


def format_seconds(seconds: float) -> str:
    """``"42 s"``, ``"3.5 min"`` or ``"1.2 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
