"""Union and majority ensembling: semantics and the documented tie rules."""

from __future__ import annotations

import numpy as np
import pytest

from flare_uda.pseudolabel import (
    ENSEMBLERS,
    MajorityEnsembler,
    UnionEnsembler,
    get_ensembler,
    majority_vote,
    union_ensemble,
)
from flare_uda.volume import Volume

R1 = np.array([1, 0, 1, 2, 0, 3], np.uint8)
R2 = np.array([1, 2, 2, 2, 0, 0], np.uint8)
R3 = np.array([0, 0, 2, 1, 0, 0], np.uint8)


def test_union_is_per_organ_union_with_most_voted_organ():
    out = union_ensemble([R1, R2, R3])
    np.testing.assert_array_equal(out, [1, 2, 2, 2, 0, 3])
    assert out.dtype == np.uint8
    # every voxel foreground in some round stays foreground
    assert ((out > 0) == ((R1 > 0) | (R2 > 0) | (R3 > 0))).all()


def test_union_ties_go_to_latest_round():
    np.testing.assert_array_equal(union_ensemble([np.array([1]), np.array([2])]), [2])
    np.testing.assert_array_equal(union_ensemble([np.array([2]), np.array([1])]), [1])
    # latest round voting one of the tied organs: round 2 (organ 1), round 3 is background
    tied = [np.array([2]), np.array([1]), np.array([0])]
    np.testing.assert_array_equal(union_ensemble(tied), [1])


def test_majority_includes_background():
    np.testing.assert_array_equal(majority_vote([R1, R2, R3]), [1, 0, 2, 2, 0, 0])
    np.testing.assert_array_equal(majority_vote([np.array([1]), np.array([0])]), [0])
    np.testing.assert_array_equal(majority_vote([np.array([0]), np.array([1])]), [1])


@pytest.mark.parametrize("name", sorted(ENSEMBLERS.names()))
def test_ensembler_conformance(name):
    ens = get_ensembler(name)
    vols = [Volume(r.reshape(1, 2, 3), (2.0, 1.0, 1.0), (1.0, 2.0, 3.0)) for r in (R1, R2, R3)]
    out = ens(vols)
    assert isinstance(out, Volume) and out.same_geometry(vols[0])
    np.testing.assert_array_equal(ens([R1, R1]), R1)  # agreeing rounds are a fixed point
    with pytest.raises(ValueError, match="share one shape"):
        ens([R1, R1[:3]])
    with pytest.raises(ValueError, match="at least 1 label maps, got 0"):
        ens([])


def test_classes_and_registry():
    assert isinstance(get_ensembler("union"), UnionEnsembler)
    assert isinstance(get_ensembler("majority"), MajorityEnsembler)
    with pytest.raises(KeyError, match="Did you mean 'union'"):
        get_ensembler("unoin")
