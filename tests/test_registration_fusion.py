"""Multi-atlas fusion: the weighted vote, local agreement, k best matches, k = 1 is plain MDM."""

from __future__ import annotations

import numpy as np
import pytest
from test_registration_mdm import SPACING, boxes, case

from flare_uda.registration import get_matcher, get_registrar
from flare_uda.registration.fusion import (
    EPS,
    FusionConfig,
    fuse_moved,
    local_agreement,
    weighted_vote,
)
from flare_uda.registration.matching import rank_by_volume
from flare_uda.registration.mdm import MDMConfig, mean_dice, run_mdm, transfer_label
from flare_uda.volume import Volume

LABELS = {"name": "torch", "options": {"features": "labels", "shrink_factors": [8, 4, 2]}}


def test_weighted_vote_counts_weights_not_heads():
    a = np.array([[[1, 1, 2, 0]]], np.uint8)
    b = np.array([[[1, 2, 2, 0]]], np.uint8)
    c = np.array([[[3, 2, 0, 0]]], np.uint8)
    assert weighted_vote([a, b, c], None).tolist() == [[[1, 2, 2, 0]]]
    w_c = np.array([[[5.0, 0.1, 5.0, 0.1]]])  # atlas c is trusted locally at voxels 0 and 2
    ones = np.ones((1, 1, 4))
    assert weighted_vote([a, b, c], [ones, ones, w_c]).tolist() == [[[3, 2, 0, 0]]]
    assert weighted_vote([a, b], None).tolist() == [[[1, 1, 2, 0]]]  # ties: the lower class
    single = weighted_vote([c], [np.full((1, 1, 4), 1e-9)])
    np.testing.assert_array_equal(single, c)
    assert single.dtype == np.uint8 and single is not c


def test_local_agreement_is_local():
    target = np.zeros((1, 9, 9, 9), np.float32)
    moved = target.copy()
    moved[0, 4, 4, 4] = 1.0
    w = local_agreement(moved, target, (1.0, 1.0, 1.0), sigma_mm=1.0, power=1.0)
    assert w[0, 0, 0] == pytest.approx(1 / EPS, rel=1e-3)  # far away: a perfect match
    assert w[4, 4, 4] < 0.2 * w[0, 0, 0]
    flat = local_agreement(moved, target, (1.0, 1.0, 1.0), sigma_mm=1.0, power=0.0)
    np.testing.assert_allclose(flat, 1.0)


def test_rank_by_volume_and_matcher_best():
    order = rank_by_volume(np.array([10.0, 30.0]), np.array([31.0, 9.0, 20.0, 12.0]))
    assert order.tolist() == [[1, 3, 2, 0], [0, 2, 3, 1]]
    query = [case("q", "T2", boxes())]
    pool = []
    for i, missing in enumerate([(), (13,), (1,), (2, 13)]):  # liver >> a kidney
        pool.append(case(f"p{i}", "T1", np.where(np.isin(boxes(), missing), 0, boxes())))
    matcher = get_matcher("volume")
    assert matcher.best(query, pool, 1).tolist() == [[0]]
    assert matcher.best(query, pool, 3).tolist() == [[0, 1, 3]]


def test_fusion_with_one_atlas_is_the_papers_mdm():
    better = [case("t1_a", "T1", boxes(shift=2)), case("t1_b", "T1", boxes(scale=0.7))]
    worse = case("t2", "T2", boxes(), origin=(0.0, 4.0, 0.0))
    cfg = MDMConfig(registrar=LABELS)  # fusion.atlases = 1 by default
    (res,) = run_mdm(better + [worse], cfg)
    reg = get_registrar("torch", **LABELS["options"], organs=(1, 2, 13))
    reg.fit(better[0].label, worse.label)
    plain = reg.transform(better[0].label, is_label=True)
    np.testing.assert_array_equal(res.label.array, plain.array)
    assert res.matched_ids == ("t1_a",) == res.kept_ids
    np.testing.assert_allclose(res.matrix, reg.matrix_)
    one = transfer_label((worse, better[0]), cfg)  # a single case, as before
    np.testing.assert_array_equal(one.label.array, plain.array)


def test_several_atlases_outvote_a_wrong_one():
    """Two atlases agree with the truth; a third has its spleen... on the other side."""
    wrong = boxes()
    wrong[wrong == 13] = 0
    wrong[5:11, 4:10, 20:25] = 13  # a left kidney where the liver's tip should be empty
    truth = boxes()
    atlases = [case("a", "T1", wrong), case("b", "T1", truth), case("c", "T1", truth)]
    own = truth.copy()
    own[own == 1] = 0  # the worse case's own pseudo-label misses the liver
    worse = case("t2", "T2", own)
    identity = {"name": "torch", "options": {"iterations": [0, 0, 0], "init": "identity"}}
    fused = transfer_label((worse, atlases), MDMConfig(registrar=identity))
    assert fused.matched_ids == ("a", "b", "c") and fused.label is not None
    assert mean_dice(fused.label.array, truth, (1, 2, 13)) == pytest.approx(1.0)
    alone = transfer_label((worse, atlases[0]), MDMConfig(registrar=identity))
    assert mean_dice(alone.label.array, truth, (13,)) < 0.5


def test_local_weights_pick_the_atlas_that_matches_there():
    """Images: where atlas b's image differs from the target, its vote weighs less."""
    target_img = (boxes() > 0).astype(np.float32)
    shape = target_img.shape
    vol = lambda a: Volume(a, SPACING)  # noqa: E731
    left = np.zeros(shape, bool)
    left[..., :10] = True  # through the liver (x 4..15)
    img_a = np.where(left, target_img, 0.0).astype(np.float32)  # a matches on the left only
    img_b = np.where(~left, target_img, 0.0).astype(np.float32)  # b on the right only
    lab_a, lab_b = np.full(shape, 1, np.uint8), np.full(shape, 2, np.uint8)

    class Identity:  # a fitted registrar that moves nothing
        def transform(self, volume, is_label=False):
            return volume

    out = fuse_moved(
        [vol(lab_a), vol(lab_b)],
        [Identity(), Identity()],
        [vol(img_a), vol(img_b)],
        vol(target_img),
        FusionConfig(atlases=2, sigma_mm=2.0),
    )
    liver_left = (boxes() == 1) & left
    liver_right = (boxes() == 1) & ~left
    assert (out[liver_left] == 1).mean() > 0.9 and (out[liver_right] == 2).mean() > 0.9


def test_fusion_errors():
    a = np.zeros((2, 2, 2), np.uint8)
    with pytest.raises(ValueError, match="expected at least one label map to fuse"):
        weighted_vote([], None)
    with pytest.raises(ValueError, match="one weight map per label map, got 1 and 2"):
        weighted_vote([a, a], [np.ones((2, 2, 2))])
    with pytest.raises(ValueError, match="must hold integers"):
        weighted_vote([a * 1.0, a], None)
    with pytest.raises(ValueError, match="must share one shape"):
        weighted_vote([a, np.zeros((2, 2, 3), np.uint8)], None)
    with pytest.raises(ValueError, match="'c z y x' of one shape"):
        local_agreement(np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2, 3)), (1, 1, 1), 1.0, 1.0)
    with pytest.raises(ValueError, match="atlases must be"):
        FusionConfig(atlases=0)
    with pytest.raises(ValueError, match="sigma_mm must be > 0"):
        FusionConfig(sigma_mm=0.0)
    with pytest.raises(ValueError, match="power must be >= 0"):
        FusionConfig(power=-1.0)
    pool = [case("p", "T1", boxes())]
    with pytest.raises(ValueError, match=r"expected 1 <= k <= 1 \(the pool's size\), got k=2"):
        get_matcher("volume").best(pool, pool, 2)


def test_a_matcher_without_ranking_says_so():
    from flare_uda.registration import Matcher

    class FirstOnly(Matcher):
        def match_indices(self, query, pool):
            return np.zeros(len(query), int)

    pool = [case("p0", "T1", boxes()), case("p1", "T1", boxes())]
    assert FirstOnly().best(pool, pool, 1).tolist() == [[0], [0]]
    with pytest.raises(NotImplementedError, match="FirstOnly gives only its best match"):
        FirstOnly().best(pool, pool, 2)
