"""MDM: sub-domain split, match, register, transfer, quality gate, executor seam."""

from __future__ import annotations

import numpy as np
import pytest

from flare_uda.executor import SerialExecutor
from flare_uda.registration.mdm import (
    MDMConfig,
    mean_dice,
    run_mdm,
    split_by_quality,
    split_by_sequence,
)
from flare_uda.volume import Case, Volume

SHAPE = (16, 32, 32)
SPACING = (3.0, 2.0, 2.0)


def boxes(shift: int = 0, scale: float = 1.0) -> np.ndarray:
    """Liver (1), right kidney (2) and left kidney (13) as boxes, shifted along x."""
    lab = np.zeros(SHAPE, np.uint8)
    s = lambda n: int(round(n * scale))  # noqa: E731
    lab[3 : 3 + s(9), 4 : 4 + s(12), 4 + shift : 4 + shift + s(12)] = 1
    lab[5 : 5 + s(6), 20 : 20 + s(6), 5 + shift : 5 + shift + s(5)] = 2
    lab[5 : 5 + s(6), 20 : 20 + s(6), 20 + shift : 20 + shift + s(5)] = 13
    return lab


def case(cid: str, sequence: str | None, label: np.ndarray, origin=(0.0, 0.0, 0.0)) -> Case:
    img = Volume(label.astype(np.float32), SPACING, origin)
    return Case(cid, img, Volume(label, SPACING, origin), "MR", sequence)


LABELS = {"features": "labels", "shrink_factors": [8, 4, 2]}


def test_transfer_moves_better_label_onto_worse_grid():
    better = [case("t1_a", "T1", boxes(scale=0.8)), case("t1_b", "T1", boxes(shift=3))]
    worse_label = boxes()
    worse_label[3:5][worse_label[3:5] == 1] = 0  # its own pseudo-label misses part of the liver
    worse = case("t2", "T2", worse_label, origin=(0.0, 4.0, 0.0))
    # t1_b (same size, shifted 3 voxels) is the volume match: t1_a is 0.8^3 the size.
    cfg = MDMConfig(gate_dice=0.8, registrar={"name": "torch", "options": LABELS})
    (res,) = run_mdm(better + [worse], cfg, executor=SerialExecutor())
    assert (res.case_id, res.matched_id) == ("t2", "t1_b")
    assert res.label is not None and res.label.same_geometry(worse.image)
    # the full liver comes from the better domain, aligned with where it truly is
    assert mean_dice(res.label.array, boxes(), (1,)) > 0.85
    assert res.gate_dice >= 0.8
    # at the kidneys: 3 voxels of 2 mm along x, plus the 4 mm origin offset in y
    kidneys = worse.image.index_to_physical(np.argwhere(np.isin(boxes(), (2, 13))))
    mapped = kidneys @ res.matrix[:3, :3].T + res.matrix[:3, 3]
    err = np.linalg.norm(mapped - (kidneys + [0.0, -4.0, 6.0]), axis=1)
    assert np.sqrt((err**2).mean()) < 2.0  # mm, one voxel


def test_gate_rejects_disagreeing_transfer():
    better = case("t1", "T1", boxes())
    own = boxes()
    own[own == 13] = 0
    own[own == 2] = 0
    own[5:11, 20:26, 12:17] = 2  # kidneys elsewhere in the worse case's own label
    worse = case("t2", "T2", own)
    sitk = {"name": "sitk", "options": {"iterations": 20, "features": "labels"}}
    (res,) = run_mdm([better, worse], MDMConfig(gate_dice=0.8, registrar=sitk))
    assert res.label is None and res.gate_dice < 0.8
    labels = {"name": "torch", "options": LABELS}
    (ungated,) = run_mdm([better, worse], MDMConfig(gate_dice=None, registrar=labels))
    assert ungated.label is not None and ungated.gate_dice is None


def test_anatomy_features_and_quality_split():
    better = case("a", None, boxes(shift=2))
    worse = case("b", None, boxes())
    cfg = MDMConfig(gate_dice=0.7)  # the default registrar sees the anatomy-space images
    (res,) = run_mdm([better, worse], cfg, scores={"a": 1.0, "b": 0.0})
    assert (res.case_id, res.matched_id) == ("b", "a")
    assert res.label is not None and mean_dice(res.label.array, boxes(), (1, 2, 13)) > 0.8


def test_split_by_sequence_and_quality():
    cases = [case(f"c{i}", seq, boxes()) for i, seq in enumerate(["T1", "T2", "T1", "DWI"])]
    better, worse = split_by_sequence(cases, "T1", "T2")
    assert [c.case_id for c in better] == ["c0", "c2"] and [c.case_id for c in worse] == ["c1"]
    better, worse = split_by_quality(cases, {"c0": 0.1, "c1": 0.9, "c2": 0.5, "c3": 0.5}, 0.5)
    assert [c.case_id for c in better] == ["c1", "c2"]
    assert [c.case_id for c in worse] == ["c0", "c3"]
    # T2 better than T1 is a parameter
    better, _ = split_by_sequence(cases, "T2", "T1")
    assert [c.case_id for c in better] == ["c1"]


def test_mean_dice():
    a = np.array([0, 2, 2, 13, 13, 0])
    b = np.array([0, 2, 0, 13, 13, 13])
    assert mean_dice(a, b, (2, 13)) == pytest.approx((2 / 3 + 0.8) / 2)
    assert np.isnan(mean_dice(a, b, (5,)))


def test_mdm_errors():
    t1 = case("t1", "T1", boxes())
    with pytest.raises(ValueError, match="both sub-domains"):
        run_mdm([t1], MDMConfig())
    with pytest.raises(ValueError, match="expected a sequence on every case"):
        run_mdm([t1, case("x", None, boxes())])
    with pytest.raises(ValueError, match="quality score for every case"):
        run_mdm([t1], scores={"other": 1.0})
    with pytest.raises(ValueError, match="must differ"):
        MDMConfig(better="T2", worse="T2")
    with pytest.raises(KeyError, match="Did you mean 'sitk'"):
        MDMConfig(registrar="sitkk")
    with pytest.raises(ValueError, match="features must be one of"):
        MDMConfig(registrar={"name": "torch", "options": {"features": "intensity"}})
    with pytest.raises(TypeError, match=r"registrar.options.lr must be a number, got '0.1'"):
        MDMConfig(registrar={"name": "torch", "options": {"lr": "0.1"}})
    with pytest.raises(KeyError, match="Did you mean 'volume'"):
        MDMConfig(matcher="volumes")
    with pytest.raises(ValueError, match="no pseudo-label"):
        run_mdm([t1, case("t2", "T2", boxes()).with_label(None)])
