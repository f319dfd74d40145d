"""The CT atlas: only missing or distrusted organs are filled, trusted ones never change; gates."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from test_pseudolabel_organs import ORGANS, SHAPE, SPACING, anatomy, body_image, ct_cases

from flare_uda.registration.ct_atlas import (
    CTAtlasConfig,
    _gate,
    fill_case,
    rank_atlases,
    run_ct_atlas,
)
from flare_uda.registration.mdm import mean_dice
from flare_uda.volume import Case, Volume

AFFINE = {"name": "torch", "options": {"features": "labels", "shrink_factors": [4, 2, 1]}}
PRIOR_ONLY = {"name": "organ_wise", "options": {"threshold": None}}


def mr_case(label: np.ndarray, cid: str = "mr") -> Case:
    return Case(cid, body_image(), Volume(label, SPACING), "MR", "T2")


def test_only_missing_and_distrusted_organs_are_filled():
    own = anatomy(without=(13,))  # the left kidney is missing
    own[own == 3] = 0
    own[4:12, 10:24, 24:34] = 3  # a liver-sized "spleen": the prior distrusts it
    cfg = CTAtlasConfig(registrar=AFFINE, filter=PRIOR_ONLY, fusion={"atlases": 1})
    (res,) = run_ct_atlas([mr_case(own)], ct_cases(), cfg)
    truth = anatomy()
    assert res.trusted == (1, 2) and res.filled == (3, 13) and res.annotated == (1, 2, 3, 13)
    trusted = np.isin(own, (1, 2))
    np.testing.assert_array_equal(res.label.array[trusted], own[trusted])  # never overwritten
    assert mean_dice(res.label.array, truth, (3, 13)) > 0.85
    # every CT case holds the same organ volumes: eq. 5 ties go to the first
    assert res.atlases == ("ct-1",) == res.kept and res.gate == {"ct-1": "ok"}


def test_organs_no_atlas_has_stay_unknown():
    ct = [
        c.with_label(c.label.with_array(np.where(c.label.array == 13, 0, c.label.array)))
        for c in ct_cases()
    ]
    ct = [c.with_label(c.label, annotated=(1, 2, 3)) for c in ct]
    (res,) = run_ct_atlas(
        [mr_case(anatomy(without=(13,)))], ct, CTAtlasConfig(registrar=AFFINE, filter=None)
    )
    assert res.trusted == (1, 2, 3) and res.filled == () and 13 not in res.annotated


def test_a_failing_gate_fills_nothing():
    own = anatomy(without=(13,))
    top = own[4:6]
    top[top == 1] = 0  # the MR liver lacks two slices: no atlas agrees perfectly
    cfg = CTAtlasConfig(registrar=AFFINE, filter=None, gate_dice=0.999, fusion={"atlases": 2})
    (res,) = run_ct_atlas([mr_case(own)], ct_cases(), cfg)
    assert res.filled == () and res.kept == () and res.annotated == (1, 2, 3)
    assert all("on the trusted organs < 0.999" in why for why in res.gate.values())
    np.testing.assert_array_equal(res.label.array, own)


def test_the_gate_checks_scale_shear_and_folding():
    own = Volume(anatomy(), SPACING)
    cfg = CTAtlasConfig(gate_dice=None)
    stretched = SimpleNamespace(matrix_=np.diag([1.0, 1.0, 1.8, 1.0]), displacement_=None)
    assert "implausible affine: scale 1.80" in _gate(stretched, own, own, (1,), cfg)
    sheared = np.eye(4)
    sheared[1, 2] = 0.8
    skew = SimpleNamespace(matrix_=sheared, displacement_=None)
    assert "shear" in _gate(skew, own, own, (1,), CTAtlasConfig(gate_dice=None, max_scale=3.0))
    fold = np.zeros((3, *SHAPE), np.float32)
    fold[2, :, :, 20:] = -30.0  # a 30 mm jump backwards along x: the map folds there
    folding = SimpleNamespace(matrix_=np.eye(4), displacement_=fold)
    assert "folding field" in _gate(folding, own, own, (1,), cfg)
    fine = SimpleNamespace(matrix_=np.eye(4), displacement_=np.zeros_like(fold))
    assert _gate(fine, own, own, (1,), CTAtlasConfig(gate_dice=0.9)) == "ok"
    assert "Dice nan" in _gate(fine, own, own, (), CTAtlasConfig(gate_dice=0.1))


def test_atlases_ranked_by_eq5():
    small = Case("small", body_image(), Volume(anatomy(without=(1,)), SPACING), "CT")
    ct = [small, *ct_cases()]
    mr = mr_case(anatomy())
    assert rank_atlases(mr, (1, 2, 3, 13), ct, "label")[0] != 0  # no liver: far on volume
    assert (
        rank_atlases(mr, (2, 3), ct, "label")[0] == 0
    )  # the same kidneys and spleen: a tie, first
    assert sorted(rank_atlases(mr, (), ct, "body")) == [0, 1, 2, 3]


def test_no_trusted_organ_means_nothing_to_register_on_labels():
    res = fill_case(mr_case(anatomy()), ct_cases(), (), CTAtlasConfig(registrar=AFFINE))
    assert res.filled == () and set(res.gate.values()) == {"no trusted organ to register on"}
    assert not res.label.array.any() and res.annotated == ()


def test_ct_atlas_errors():
    with pytest.raises(ValueError, match="expected MR and labelled CT cases, got 0 and 3"):
        run_ct_atlas([], ct_cases())
    with pytest.raises(ValueError, match="CT atlases need labels"):
        run_ct_atlas([mr_case(anatomy())], [ct_cases()[0].with_label(None)])
    with pytest.raises(ValueError, match="MR cases need a pseudo-label"):
        run_ct_atlas([mr_case(anatomy()).with_label(None)], ct_cases())
    with pytest.raises(ValueError, match="needs a pseudo-label for the CT atlas"):
        fill_case(mr_case(anatomy()).with_label(None), ct_cases(), (1,), CTAtlasConfig())
    with pytest.raises(ValueError, match="measure must be one of"):
        CTAtlasConfig(measure="organs")
    with pytest.raises(ValueError, match=r"gate_dice must be in \[0, 1\] or None"):
        CTAtlasConfig(gate_dice=1.5)
    with pytest.raises(ValueError, match="max_scale must be >= 1"):
        CTAtlasConfig(max_scale=0.5)
    with pytest.raises(ValueError, match="max_shear must be >= 0"):
        CTAtlasConfig(max_shear=-0.1)
    assert set(ORGANS) == {1, 2, 3, 13}
