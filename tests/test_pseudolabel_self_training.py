"""The self-training loop: rounds on disk, resume after a kill, filter and ensemble."""

from __future__ import annotations

import json

import numpy as np
import pytest

from flare_uda.executor import ProcessExecutor
from flare_uda.pseudolabel import OrganWiseFilter, UncertaintyFilter, run_self_training
from flare_uda.volume import Case, Volume


def _cases(n: int = 3) -> list[Case]:
    out = []
    for i in range(n):
        lab = np.zeros((4, 6, 6), np.uint8)
        lab[1:3, 1 : 3 + i, 1:4] = 1
        img = Volume(lab.astype(np.float32), (2.0, 1.0, 1.0), (float(i), 0.5, -3.0))
        out.append(Case(f"case{i}", img, img.with_array(lab), "MR", "T2"))
    return out


class Recorder:
    """A fake trainer: the 'segmenter' is the round index; records what it trained on."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[int] = []
        self.seen: dict[int, dict[str, int]] = {}
        self.fail_at = fail_at

    def train(self, cases: list[Case], round_index: int) -> int:
        self.calls.append(round_index)
        if round_index == self.fail_at:
            raise RuntimeError("killed")
        self.seen[round_index] = {c.case_id: int(c.label.array.sum()) for c in cases}
        return round_index


def predict(segmenter: int, case: Case) -> Volume:
    """Round k's label: the initial one with row y=1 grown to x < 4 + k (case1 stays put)."""
    lab = case.image.array.astype(np.uint8)
    if case.case_id != "case1":
        lab[1:3, 1, 1 : 4 + segmenter] = 1
    return case.image.with_array(lab)


def test_rounds_written_and_final_ensemble(tmp_path):
    cases = _cases()
    rec = Recorder()
    res = run_self_training(rec.train, predict, cases, rounds=3, work_dir=tmp_path)
    assert rec.calls == [1, 2, 3]
    for k in (1, 2, 3):
        assert (tmp_path / f"round_{k}" / "case0.nii.gz").exists()
    # round 2 trained on round 1's predictions, not on the initial labels
    assert rec.seen[2]["case0"] != rec.seen[1]["case0"]
    assert res.uncertainty["case1"] == 0.0 and res.uncertainty["case0"] > 0
    assert res.kept == ["case0", "case1", "case2"]
    # union over rounds equals the largest (latest) label here; geometry is the case's
    assert res.labels["case0"].same_geometry(cases[0].image)
    np.testing.assert_array_equal(res.labels["case0"].array, predict(3, cases[0]).array)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["completed"] == [1, 2, 3] and state["final"]["kept"] == res.kept


def test_resume_after_kill_does_not_recompute_round_1(tmp_path):
    cases = _cases()
    killed = Recorder(fail_at=2)
    with pytest.raises(RuntimeError, match="killed"):
        run_self_training(killed.train, predict, cases, rounds=3, work_dir=tmp_path)
    assert json.loads((tmp_path / "state.json").read_text())["completed"] == [1]
    mtime = (tmp_path / "round_1" / "case0.nii.gz").stat().st_mtime_ns
    resumed = Recorder()
    res = run_self_training(resumed.train, predict, cases, rounds=3, work_dir=tmp_path)
    assert resumed.calls == [2, 3]  # round 1 is not recomputed
    assert (tmp_path / "round_1" / "case0.nii.gz").stat().st_mtime_ns == mtime
    # round 2 resumed from round 1's labels on disk
    assert resumed.seen[2] == {c.case_id: int(predict(1, c).array.sum()) for c in cases}
    fresh = run_self_training(Recorder().train, predict, cases, 3, tmp_path / "fresh")
    assert res.uncertainty == fresh.uncertainty


def test_process_executor_matches_serial(tmp_path):
    cases = _cases()
    serial = run_self_training(Recorder().train, predict, cases, 2, tmp_path / "s")
    pool = ProcessExecutor(workers=2, progress=False)
    parallel = run_self_training(Recorder().train, predict, cases, 2, tmp_path / "p", pool)
    assert parallel.uncertainty == serial.uncertainty
    for cid in serial.kept:
        np.testing.assert_array_equal(parallel.labels[cid].array, serial.labels[cid].array)


def test_filter_applied(tmp_path):
    res = run_self_training(
        Recorder().train,
        predict,
        _cases(),
        2,
        tmp_path,
        label_filter=UncertaintyFilter(threshold=0.0),
    )
    assert res.kept == ["case1"] and list(res.labels) == ["case1"]
    assert (tmp_path / "final" / "case1.nii.gz").exists()
    assert not (tmp_path / "final" / "case0.nii.gz").exists()


def predict_two_organs(segmenter: int, case: Case) -> Volume:
    """Organ 1 as the case's label; organ 2 a row that grows with the round in case0 only."""
    lab = case.image.array.astype(np.uint8)
    lab[3, 4, : 2 + (segmenter if case.case_id == "case0" else 0)] = 2
    return case.image.with_array(lab)


def test_an_organ_wise_filter_leaves_distrusted_organs_unknown(tmp_path):
    res = run_self_training(
        Recorder().train,
        predict_two_organs,
        _cases(),
        2,
        tmp_path,
        label_filter=OrganWiseFilter(threshold=0.2, prior=False),
    )
    # organ 2 of case0 changes between rounds (u = 1/3): only that organ is dropped
    assert res.kept == ["case0", "case1", "case2"]
    assert res.organs == {"case0": (1,), "case1": (1, 2), "case2": (1, 2)}
    assert set(np.unique(res.labels["case0"].array)) == {0, 1}  # dropped, not relabelled
    assert set(np.unique(res.labels["case1"].array)) == {0, 1, 2}
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["final"]["organs"] == {"case0": [1], "case1": [1, 2], "case2": [1, 2]}
    case_wise = run_self_training(Recorder().train, predict_two_organs, _cases(), 2, tmp_path / "c")
    assert case_wise.organs == {f"case{i}": tuple(range(1, 14)) for i in range(3)}


def test_loop_errors(tmp_path):
    cases = _cases()
    with pytest.raises(ValueError, match="rounds must be an integer >= 2"):
        run_self_training(Recorder().train, predict, cases, 1, tmp_path)
    with pytest.raises(ValueError, match="at least one case"):
        run_self_training(Recorder().train, predict, [], 2, tmp_path)
    with pytest.raises(ValueError, match="unique"):
        run_self_training(Recorder().train, predict, cases + cases[:1], 2, tmp_path)
    run_self_training(Recorder().train, predict, cases, 2, tmp_path / "a")
    with pytest.raises(ValueError, match="run on other cases"):
        run_self_training(Recorder().train, predict, cases[:2], 2, tmp_path / "a")

    def bad_predict(segmenter, case):
        return Volume(np.zeros((2, 2, 2), np.uint8))

    with pytest.raises(ValueError, match="predict_fn returned shape"):
        run_self_training(Recorder().train, bad_predict, cases, 2, tmp_path / "b")
    with pytest.raises(KeyError, match="Did you mean 'union'"):
        run_self_training(Recorder().train, predict, cases, 2, tmp_path / "c", ensembler="unon")
