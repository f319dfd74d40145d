"""A stage cut short keeps its finished cases and a rerun computes only the rest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flare_uda.executor import ProcessExecutor, SerialExecutor
from flare_uda.pipeline import Runner, Stage
from flare_uda.pipeline.partial import KeepFinished, describe
from flare_uda.volume import Case, Volume


class FailOnce:
    """Squares; raises on the first try of ``victim``; logs every try as a file in ``log``."""

    def __init__(self, log: Path, victim: int) -> None:
        self.log, self.victim = log, victim

    def __call__(self, x: int) -> int:
        n = len(list(self.log.glob(f"{x}-*")))
        (self.log / f"{x}-{n}").touch()
        if x == self.victim and n == 0:
            raise RuntimeError(f"simulated failure on item {x}")
        return x * x


class Squares(Stage):
    name = "squares"

    def __init__(self, fn, n: int = 6) -> None:
        self.fn, self.n = fn, n

    def run(self, runner, folder, *inputs):
        return runner.executor.map(self.fn, range(self.n), desc="squares")


def tries(log: Path) -> list[int]:
    return sorted(int(p.name.split("-")[0]) for p in log.iterdir())


@pytest.mark.parametrize("engine", [SerialExecutor(progress=False), ProcessExecutor(workers=2)])
def test_a_failed_stage_resumes_from_its_finished_cases(tmp_path, engine):
    log = tmp_path / "log"
    log.mkdir()
    fn = FailOnce(log, victim=3)
    with pytest.raises(RuntimeError, match="simulated failure on item 3"):
        Runner(tmp_path / "run", executor=engine, progress=False).get(Squares(fn))
    kept = len(list((tmp_path / "run").rglob("partial/*/*.pkl.z")))
    first = tries(log)
    if isinstance(engine, SerialExecutor):  # in order: 0, 1, 2 finished, 3 failed
        assert first == [0, 1, 2, 3] and kept == 3
    assert Runner(tmp_path / "run", executor=engine, progress=False).get(Squares(fn)) == [
        x * x for x in range(6)
    ]
    again = tries(log)
    assert len(again) == len(first) + 6 - kept  # kept cases are never computed again
    assert again.count(3) == 2
    assert not list((tmp_path / "run").rglob("partial"))


def test_another_call_in_the_same_folder_starts_afresh(tmp_path):
    keep = KeepFinished(SerialExecutor(progress=False), tmp_path)
    assert keep.map(abs, [-1, -2], desc="a") == [1, 2]
    assert KeepFinished(SerialExecutor(progress=False), tmp_path).map(abs, [-1, -2], "a") == [1, 2]
    assert keep.map(abs, [-3, -4], desc="a") == [3, 4]  # other items: not the kept results
    assert len(list(tmp_path.iterdir())) == 2
    keep.clear()
    assert not tmp_path.exists()
    with pytest.raises(TypeError, match="engine must be an Executor, got str"):
        KeepFinished("serial", tmp_path)


def test_items_are_described_by_ids_and_shapes():
    vol = Volume(np.zeros((2, 3, 4)))
    case = Case("c1", vol, None, "MR")
    assert describe((case, vol, Path("a"), 1.5, None, object())) == [
        {"case": "c1", "shape": [2, 3, 4]},
        {"volume": [2, 3, 4]},
        "a",
        1.5,
        None,
        "object",
    ]
