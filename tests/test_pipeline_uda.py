"""The composable pipeline: stage objects, the runner (cache, log, wall time, estimates),
settings as compositions, checks before work, picklable per-case work."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from flare_uda.executor import ProcessExecutor
from flare_uda.pipeline import Cases, Predict, Runner, Stage, get_preset
from flare_uda.pipeline.runner import format_seconds
from flare_uda.pipeline.stages import Predictor, with_labels
from flare_uda.pipeline.uda import NoPseudoLabels, UDAPipeline, usable
from flare_uda.plugin import spec
from flare_uda.volume import Case, Volume


def _case(cid: str, fg: bool, sequence: str = "T1") -> Case:
    img = Volume(np.zeros((4, 8, 8), np.float32))
    lab = np.zeros((4, 8, 8), np.uint8)
    lab[1:3, 2:5, 2:5] = 1 if fg else 0
    return Case(cid, img, Volume(lab), "MR", sequence)


def test_usable_drops_empty_labels():
    cases = [_case("a", True), _case("b", False), _case("c", True)]
    assert [c.case_id for c in usable(cases, "MDM")] == ["a", "c"]


def test_usable_all_empty_raises():
    with pytest.raises(NoPseudoLabels, match="all 2 pseudo-labels are empty"):
        usable([_case("a", False), _case("b", False)], "MDM")


def test_pipeline_input_errors(tmp_path):
    pipe = UDAPipeline(get_preset("tiny"), tmp_path)
    with pytest.raises(ValueError, match="expected CT, MR and MR-test cases"):
        pipe.run([], [_case("m", True)], [_case("t", True)])
    unlabelled = _case("ct", True).with_label(None)
    with pytest.raises(ValueError, match="need labels"):
        pipe.run([unlabelled], [_case("m", True)], [_case("t", True)])
    with pytest.raises(TypeError, match="UDAConfig"):
        UDAPipeline({"data": {}}, tmp_path)


def test_the_plan_is_checked_before_any_work(tmp_path):
    """An MDM without worse-sequence cases, an oracle without labels: no stage folder is made."""
    pipe = UDAPipeline(get_preset("tiny"), tmp_path, progress=False, device="cpu")
    t1_only = [_case("m1", True), _case("m2", True)]
    with pytest.raises(ValueError, match=r"mdm.worse is 'T2', but no mr case has that sequence"):
        pipe.run([_case("ct", True)], t1_only, [_case("t", True)])
    unlabelled = [c.with_label(None) for c in t1_only]
    with pytest.raises(ValueError, match="the oracle setting needs labelled MR cases"):
        pipe.run([_case("ct", True)], unlabelled, [_case("t", True)])
    assert not (tmp_path / "stages").exists()


def test_pipeline_device_is_resolved_and_checked(tmp_path):
    pipe = UDAPipeline(get_preset("tiny"), tmp_path, progress=False, device="cpu")
    assert pipe.device == torch.device("cpu")
    with pytest.raises(ValueError, match="expected a device like"):
        UDAPipeline(get_preset("tiny"), tmp_path, progress=False, device="tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no CUDA device"):
            UDAPipeline(get_preset("tiny"), tmp_path, progress=False, device="cuda")


class Double(Stage):
    """A toy stage: doubles the numbers of its upstream result; counts its runs."""

    runs = 0

    def __init__(self, name: str, source: Stage, factor: int = 2, units: float = 0.0):
        self.name, self.factor, self.units = name, factor, units
        self.upstream = (source,)

    def config(self):
        return {"factor": self.factor}

    def run(self, runner, folder: Path, numbers):
        Double.runs += 1
        out = [n * self.factor for n in numbers]
        (folder / "out.json").write_text(json.dumps(out))
        return out

    def load(self, runner, folder: Path):
        return json.loads((folder / "out.json").read_text())

    def work(self):
        return ("train", self.units) if self.units else None


class Numbers(Stage):
    cached = False

    def __init__(self, values):
        self.name, self.values = "numbers", list(values)

    def config(self):
        return {"values": self.values}

    def run(self, runner, folder):
        return self.values


def test_runner_caches_logs_times_and_estimates(tmp_path):
    lines: list[str] = []
    first = Double("first", Numbers([1, 2]), units=10.0)
    second = Double("second", first, factor=3, units=30.0)
    runner = Runner(tmp_path, log=lines.append)
    assert [s.name for s in runner.plan([second])] == ["first", "second"]
    Double.runs = 0
    assert runner.get(second) == [6, 12] and Double.runs == 2
    assert runner.get(second) == [6, 12] and Double.runs == 2  # once per run
    assert lines[0] == "plan: 2 stage(s) to run, 0 from the cache"
    assert lines[1].startswith("run    first-") and "done   first in" in lines[2]
    # after the first training-kind stage, the second is estimated from its speed: 3x the work
    assert "1 stage(s) left, ~" in lines[2] and "estimated for the 1 that train" in lines[2]
    assert lines[-1].endswith("no planned stage left")
    info = json.loads(next((tmp_path / "stages").glob("second-*/DONE.json")).read_text())
    assert info["seconds"] >= 0 and info["stage"] == "second"

    lines.clear()
    again = Runner(tmp_path, log=lines.append)
    second = Double("second", Double("first", Numbers([1, 2]), units=10.0), factor=3, units=30.0)
    again.plan([second])
    assert again.get(second) == [6, 12] and Double.runs == 2  # from the cache
    assert lines == [
        "plan: 0 stage(s) to run, 2 from the cache",
        f"cached second-{again.key(second)}",
    ]
    # the upstream stage was not even read (nothing needed it), but the summary lists it
    assert [(r.name, r.status) for r in again.summary()] == [
        ("first", "cached"),
        ("second", "cached"),
    ]

    changed = Double("second", Double("first", Numbers([1, 2]), factor=5), factor=3)
    assert Runner(tmp_path).key(changed) != again.key(second)  # keys chain


def test_format_seconds():
    assert [format_seconds(s) for s in (3.21, 42, 150, 9000)] == [
        "3.2 s",
        "42 s",
        "2.5 min",
        "2.5 h",
    ]


class Identity(torch.nn.Module):
    def forward(self, x):
        out = torch.zeros(x.shape[0], 3, *x.shape[2:])
        out[:, 1] = x[:, 0]
        return out


class Model(Stage):
    """A stage handing over a fixed segmenter (not cached)."""

    cached = False
    name = "model"

    def run(self, runner, folder):
        from flare_uda.inference import SegmentationPlan
        from flare_uda.segmentation import NetworkSegmenter

        plan = SegmentationPlan((4, 8, 8), (1.0, 1.0, 1.0), num_classes=3, normalization="none")
        return NetworkSegmenter.from_network(Identity(), plan)


def test_predict_through_a_process_pool_is_picklable(tmp_path):
    cases = [
        Case(f"c{i}", Volume(np.full((4, 8, 8), i % 2, np.float32)), None, "MR") for i in range(3)
    ]
    inferer = spec("inferer", "sliding_window", skip_empty=False)
    predictor = Predictor(inferer)
    assert pickle.loads(pickle.dumps(predictor)).inferer.config == predictor.inferer.config
    stage = Predict("toy", Model(), Cases("cases", cases), inferer)
    runner = Runner(tmp_path, executor=ProcessExecutor(workers=2, progress=False), progress=False)
    labels = runner.get(stage)
    assert [int(labels[f"c{i}"].array.max()) for i in range(3)] == [0, 1, 0]
    cached = Runner(tmp_path, progress=False).get(stage)
    assert sorted(cached) == ["c0", "c1", "c2"]
    np.testing.assert_array_equal(cached["c1"].array, labels["c1"].array)
    assert [c.case_id for c in with_labels(cases, labels)] == ["c0", "c1", "c2"]


class Budgeted(Double):
    def max_seconds(self):
        return 120.0


def test_a_time_budget_caps_the_estimate(tmp_path):
    lines: list[str] = []
    first = Double("first", Numbers([1]))
    capped = Budgeted("capped", first, units=1e9)
    runner = Runner(tmp_path, log=lines.append)
    runner.plan([capped])
    runner.get(first)
    assert "1 stage(s) left, ~2.0 min estimated for the 1 that train" in lines[-1]


def test_training_stages_warm_start_from_an_upstream_model(tmp_path):
    from flare_uda.data.phantom import generate_cohort
    from flare_uda.pipeline import Train

    ct, _ = generate_cohort("tiny", n_ct=2, n_mr=0)
    cases = Cases("ct", ct)
    section = get_preset("tiny").segmentation
    first = Train("first", section, cases)
    warm = Train("warm", section, cases, init=first)
    runner = Runner(tmp_path, progress=False)
    start = runner.get(first)
    assert runner.key(warm) != runner.key(Train("warm", section, cases))
    model = runner.get(warm)
    assert model.plan == start.plan
