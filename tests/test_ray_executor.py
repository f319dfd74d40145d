"""The Ray executor: equal to serial (prediction, MDM), killed workers retried, stages resume.

Every test shares one local Ray runtime (the ``ray_runtime`` session fixture:
Ray's start-up takes seconds) and skips where Ray is not installed.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from flare_uda.executor import SerialExecutor, get_executor
from flare_uda.pipeline import Cases, Predict, Runner, Stage, get_preset
from flare_uda.ray_executor import RayExecutor, RayOptions

pytest.importorskip("ray")
pytestmark = pytest.mark.usefixtures("ray_runtime")


def ray_executor(**options) -> RayExecutor:
    return get_executor("ray", **{"progress": False, **options})


def square(x: int) -> int:
    return x * x


def refuse_two(x: int) -> int:
    if x == 2:
        raise KeyError(f"item {x} is refused")
    return x


class KillFirstTry:
    """Squares; kills its own worker process (SIGKILL) on the first ``tries`` tries of ``victim``.

    Every try leaves a file ``{item}-{pid}-{n}`` in ``log``, so a test counts the tries.
    """

    def __init__(self, log: Path, victim: int, tries: int = 1) -> None:
        self.log, self.victim, self.tries = log, victim, tries

    def __call__(self, x: int) -> int:
        n = len(list(self.log.glob(f"{x}-*")))
        (self.log / f"{x}-{os.getpid()}-{n}").touch()
        if x == self.victim and n < self.tries:
            os.kill(os.getpid(), signal.SIGKILL)
        return x * x


def tries(log: Path) -> dict[int, int]:
    out: dict[int, int] = {}
    for p in log.iterdir():
        item = int(p.name.split("-")[0])
        out[item] = out.get(item, 0) + 1
    return out


def test_map_and_as_completed_equal_serial():
    ray = ray_executor()
    assert ray.map(square, range(7), desc="sq") == SerialExecutor(progress=False).map(
        square, range(7)
    )
    assert sorted(ray.as_completed(square, range(5))) == [(i, i * i) for i in range(5)]
    assert ray.map(square, []) == []
    assert ray_executor(max_pending=1).map(square, [3, 1, 2]) == [9, 1, 4]


def test_an_error_of_the_function_reaches_the_caller_as_itself():
    with pytest.raises(KeyError, match="item 2 is refused"):
        ray_executor().map(refuse_two, range(4))


def test_a_killed_worker_is_retried(tmp_path):
    fn = KillFirstTry(tmp_path, victim=3)
    assert ray_executor(max_retries=2).map(fn, range(6)) == [x * x for x in range(6)]
    assert tries(tmp_path) == {0: 1, 1: 1, 2: 1, 3: 2, 4: 1, 5: 1}


class Squares(Stage):
    """A per-case stage: squares its numbers through the runner's executor."""

    name = "squares"

    def __init__(self, fn) -> None:
        self.fn = fn

    def run(self, runner, folder, *inputs):
        return runner.executor.map(self.fn, range(6), desc="squares")


def test_a_stage_cut_short_by_lost_workers_resumes_from_the_finished_cases(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    fn = KillFirstTry(log, victim=3, tries=1)
    no_retry = Runner(tmp_path / "run", executor=ray_executor(max_retries=0), progress=False)
    with pytest.raises(RuntimeError, match=r"1 item\(s\) of 'squares' lost \(indices \[3\]\)"):
        no_retry.get(Squares(fn))
    assert tries(log) == {i: 1 for i in range(6)}  # every other item finished and was kept
    again = Runner(tmp_path / "run", executor=ray_executor(), progress=False)
    assert again.get(Squares(fn)) == [x * x for x in range(6)]
    assert tries(log) == {0: 1, 1: 1, 2: 1, 3: 2, 4: 1, 5: 1}  # only the lost one ran again
    assert not list((tmp_path / "run").rglob("partial"))  # kept results go once done


@pytest.fixture(scope="module")
def phantom():
    """Tiny phantom MR cases (T1 and T2, with labels) and a segmenter trained on two of them."""
    from flare_uda.data.phantom import generate_cohort
    from flare_uda.segmentation import train_segmenter

    _, mr = generate_cohort("tiny", n_ct=0, n_mr=4, seed=3)
    config = get_preset("tiny").segmentation.train_config()
    return mr, train_segmenter(mr[:2], config, progress=False, device="cpu")


class Model(Stage):
    cached, name = False, "model"

    def __init__(self, segmenter) -> None:
        self.segmenter = segmenter

    def run(self, runner, folder):
        return self.segmenter


def test_prediction_stage_on_ray_equals_serial(tmp_path, phantom):
    mr, segmenter = phantom
    inferer = get_preset("tiny").inference
    labels = {}
    for name, engine in (("serial", SerialExecutor(progress=False)), ("ray", ray_executor())):
        stage = Predict("mr", Model(segmenter), Cases("mr", mr), inferer)
        labels[name] = Runner(tmp_path / name, executor=engine, progress=False).get(stage)
    assert sorted(labels["ray"]) == sorted(c.case_id for c in mr)
    for cid, label in labels["serial"].items():
        np.testing.assert_array_equal(labels["ray"][cid].array, label.array, err_msg=cid)
        assert labels["ray"][cid].spacing == label.spacing


@pytest.mark.parametrize("multi", [False, True], ids=["paper", "deformable-2-atlases"])
def test_mdm_on_ray_equals_serial(phantom, multi):
    from flare_uda.registration import MDMConfig, run_mdm
    from flare_uda.registration.fusion import FusionConfig

    mr, _ = phantom
    config = MDMConfig()
    if multi:  # issue 14's MDM: a deformable registrar, 2 atlases fused per case
        config = MDMConfig(registrar={"name": "deformable"}, fusion=FusionConfig(atlases=2))
    serial = run_mdm(mr, config, executor=SerialExecutor(progress=False))
    ray = run_mdm(mr, config, executor=ray_executor())
    assert [r.case_id for r in ray] == [r.case_id for r in serial] and len(serial) == 2
    for a, b in zip(serial, ray, strict=True):
        assert a.matched_ids == b.matched_ids and len(a.matched_ids) == 1 + multi
        np.testing.assert_array_equal(a.matrix, b.matrix)
        np.testing.assert_array_equal(a.label.array, b.label.array)


def test_a_task_no_node_can_run_is_refused_not_left_waiting():
    with pytest.raises(ValueError, match=r"no node of the Ray cluster can run a task that needs"):
        ray_executor(gpus_per_task=1).map(square, [1])
    with pytest.raises(ValueError, match=r"needs 64.0 CPU\(s\) and 0.0 GPU\(s\)"):
        ray_executor(cpus_per_task=64).map(square, [1])


def test_option_errors():
    for options, message in (
        ({"address": " "}, "address must be null"),
        ({"workers": 0}, r"workers must be >= 1 \(or null: one per core\), got 0"),
        ({"cpus_per_task": 0}, "cpus_per_task must be > 0, got 0"),
        ({"gpus_per_task": -1}, "gpus_per_task must be >= 0, got -1"),
        ({"max_retries": -1}, "max_retries must be >= 0, got -1"),
        ({"max_pending": 0}, r"max_pending must be >= 1 \(or null\), got 0"),
        ({"object_store_mb": 10}, r"object_store_mb must be >= 80 \(Ray's minimum\), got 10"),
    ):
        with pytest.raises(ValueError, match=message):
            RayOptions(**options)


def test_without_ray_the_error_says_how_to_install_it(monkeypatch):
    from flare_uda.ray_executor import require_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'flare-uda\[distributed\]'"):
        require_ray()
