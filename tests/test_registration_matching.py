"""Volume matching (eq. 5): argmin, ties, physical units, errors."""

from __future__ import annotations

import numpy as np
import pytest

from flare_uda.registration import (
    MATCHERS,
    VolumeMatcher,
    get_matcher,
    label_volumes_mm3,
    match_by_volume,
)
from flare_uda.volume import Case, Volume


def _case(cid: str, n_voxels: int, spacing=(1.0, 1.0, 1.0), organ: int = 1) -> Case:
    lab = np.zeros((4, 10, 10), np.uint8)
    lab.ravel()[:n_voxels] = organ
    return Case(
        cid, Volume(np.zeros(lab.shape, np.float32), spacing), Volume(lab, spacing), "MR", "T2"
    )


def test_match_by_volume_picks_argmin():
    idx = match_by_volume([10.0, 55.0, 100.0], [50.0, 9.0, 120.0, 98.0])
    np.testing.assert_array_equal(idx, [1, 0, 3])


def test_ties_go_to_lowest_pool_index():
    # 10 is 5 away from both 5 and 15: the lower index (1) wins.
    assert match_by_volume([10.0], [100.0, 15.0, 5.0])[0] == 1


def test_per_organ_vectors_l1_vs_l2():
    query = [[0.0, 0.0]]
    pool = [[3.0, 3.0], [0.0, 5.0]]  # L1: 6 vs 5 -> 1 ; L2: 4.24 vs 5 -> 0
    assert match_by_volume(query, pool, "l1")[0] == 1
    assert match_by_volume(query, pool, "l2")[0] == 0


def test_volumes_are_physical():
    # 100 voxels of 8 mm^3 = 800 mm^3 is closer to 700 voxels of 1 mm^3 than to 100 voxels.
    q = _case("q", 100, spacing=(2.0, 2.0, 2.0))
    pool = [_case("a", 100), _case("b", 700)]
    assert label_volumes_mm3(q.label)[0] == pytest.approx(800.0)
    assert VolumeMatcher().match([q], pool) == [("q", "b")]


def test_per_organ_matcher_and_registry():
    lab = np.zeros((4, 10, 10), np.uint8)
    lab[0, :5] = 1
    lab[1, :3] = 2
    vol = Volume(lab, (1.0, 2.0, 1.0))
    np.testing.assert_allclose(label_volumes_mm3(vol, (1, 2, 3)), [100.0, 60.0, 0.0])
    assert "volume" in MATCHERS
    m = get_matcher("volume", organs=(1,), metric="l2")
    assert m.match([_case("q", 40)], [_case("a", 10), _case("b", 39, organ=2)]) == [("q", "a")]


@pytest.mark.parametrize(
    ("query", "pool", "match"),
    [
        ([], [1.0], "non-empty"),
        ([1.0], [], "non-empty"),
        ([[1.0, 2.0]], [[1.0]], "expected volume arrays"),
        ([np.nan], [1.0], "finite"),
    ],
)
def test_match_by_volume_errors(query, pool, match):
    with pytest.raises(ValueError, match=match):
        match_by_volume(np.asarray(query, float), np.asarray(pool, float))


def test_matcher_errors():
    with pytest.raises(ValueError, match="metric must be one of"):
        match_by_volume([1.0], [1.0], metric="cosine")
    with pytest.raises(ValueError, match="at least one query and one pool"):
        VolumeMatcher().match([_case("q", 1)], [])
    unlabelled = _case("u", 1).with_label(None)
    with pytest.raises(ValueError, match="no pseudo-label"):
        VolumeMatcher().match([unlabelled], [_case("a", 1)])
    with pytest.raises(KeyError, match="Did you mean 'volume'"):
        get_matcher("volumes")
