"""FLARE label map, NSD tolerances, and the remap tables from public maps."""

from __future__ import annotations

import numpy as np
import pytest

from flare_uda.data.labels import (
    FLARE_ORGANS,
    LABEL_MAPS,
    NSD_TOLERANCE_MM,
    LabelMap,
    check_label_values,
    get_label_map,
    organ_name,
    remap_to_flare,
)


def test_flare_map_names_and_tolerances():
    assert len(FLARE_ORGANS) == 13
    assert organ_name(1) == "liver" and organ_name(2) == "right_kidney"
    assert organ_name(3) == "spleen" and organ_name(13) == "left_kidney"
    assert [NSD_TOLERANCE_MM[k] for k in range(1, 14)] == [5, 3, 3, 5, 2, 2, 2, 2, 2, 3, 5, 7, 3]
    with pytest.raises(ValueError, match="FLARE label must be in 1..13, got 0"):
        organ_name(0)


# Source value of each FLARE label 1..13 (from the datasets' own documentation,
# written out independently of labels.py; None: not annotated).
EXPECTED = {
    "flare": list(range(1, 14)),
    "amos": [6, 2, 1, 10, 8, 9, 11, 12, 4, 5, 7, 13, 3],
    "total": [5, 2, 1, 7, 52, 63, 8, 9, 4, 15, 6, 19, 3],
    "total_mr": [5, 2, 1, 7, 23, 24, 8, 9, 4, 12, 6, 14, 3],
    "chaos": [1, 2, 4] + [None] * 9 + [3],
    "chaos_ct": [1] + [None] * 12,
    "btcv": [6, 2, 1, 11, 8, 9, 12, 13, 4, 5, 7, None, 3],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_remap_tables(name):
    lm = get_label_map(name)
    assert list(lm.source_values) == EXPECTED[name]
    assert lm.annotated == tuple(k + 1 for k, v in enumerate(EXPECTED[name]) if v is not None)
    src = np.arange(lm.max_value + 1).reshape(1, 1, -1)
    out = remap_to_flare(src, name)
    assert out.dtype == np.uint8
    for flare, value in enumerate(EXPECTED[name], start=1):
        if value is not None:
            assert out.ravel()[value] == flare
    # every source value that is no FLARE organ becomes background
    kept = {v for v in EXPECTED[name] if v is not None}
    assert all(out.ravel()[v] == 0 for v in range(lm.max_value + 1) if v not in kept)


def test_all_maps_are_tested():
    assert set(LABEL_MAPS) == set(EXPECTED)


def test_label_value_errors():
    with pytest.raises(ValueError, match=r"outside the 'amos' map \(0..15\): \[16, 40\]"):
        check_label_values(np.array([0, 16, 40, 3]), "amos", "label x")
    with pytest.raises(ValueError, match=r"outside the 'flare' map \(0..13\): \[-1\]"):
        remap_to_flare(np.array([-1, 2]), "flare")
    with pytest.raises(ValueError, match="labels must be integers to remap, got dtype float64"):
        remap_to_flare(np.array([1.0]), "flare")
    check_label_values(np.array([], np.uint8), "chaos")  # empty is fine


def test_unknown_label_map_did_you_mean():
    with pytest.raises(ValueError, match="unknown label map 'amoss'. Did you mean 'amos'"):
        get_label_map("amoss")
    with pytest.raises(KeyError, match="Did you mean 'total_mr'"):
        remap_to_flare(np.array([1]), "total-mr")


def test_label_map_needs_13_values():
    with pytest.raises(ValueError, match="needs 13 source values, got 2"):
        LabelMap("bad", (1, 2), 2)
