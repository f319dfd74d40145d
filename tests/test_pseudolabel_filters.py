"""Uncertainty and volume-prior filters, composition, errors."""

from __future__ import annotations

import numpy as np
import pytest

from flare_uda.pseudolabel import (
    FILTERS,
    AllOf,
    UncertaintyFilter,
    VolumePriorFilter,
    get_filter,
    source_volume_stats,
)
from flare_uda.volume import Case, Volume

BASE = np.array([0, 1, 1, 1, 1, 2, 2, 2, 2, 2])


def _changed(n: int) -> np.ndarray:
    out = BASE.copy()
    out[1 : 1 + n] = 2  # n label changes over 9 foreground voxels
    return out


HISTORY = {
    "a": [BASE, _changed(3)],  # u = 3/9
    "b": [BASE, BASE],  # u = 0
    "c": [BASE, _changed(1)],  # u = 1/9
    "d": [BASE, np.zeros_like(BASE)],  # u = inf
}


def test_uncertainty_threshold_and_fraction():
    assert UncertaintyFilter(threshold=0.2).select(HISTORY) == ["b", "c"]
    assert UncertaintyFilter(keep_fraction=0.5).select(HISTORY) == ["b", "c"]  # ceil(0.5 * 3)=2
    assert UncertaintyFilter(keep_fraction=1.0).select(HISTORY) == ["a", "b", "c"]  # inf never
    f = UncertaintyFilter(threshold=0.5, keep_fraction=0.3)
    assert f.select(HISTORY) == ["b"]
    assert f.uncertainties_["a"] == pytest.approx(1 / 3)


def _vol(n_liver: int, n_spleen: int, spacing=(2.0, 1.0, 1.0)) -> Volume:
    arr = np.zeros((1, 10, 10), np.uint8)
    arr.ravel()[:n_liver] = 1
    arr.ravel()[n_liver : n_liver + n_spleen] = 3
    return Volume(arr, spacing)


def test_volume_prior_filter_ratios_in_mm3():
    means = {1: 100.0, 3: 20.0}  # mm^3; voxels are 2 mm^3
    history = {
        "ok": [_vol(0, 0), _vol(50, 10)],  # ratios 1, 1 (only the latest round counts)
        "big": [_vol(50, 10), _vol(95, 5)],  # liver 1.9x
        "small": [_vol(50, 10), _vol(50, 1)],  # spleen 0.1x
        "edge": [_vol(90, 2)],  # 1.8x and 0.2x exactly: kept
        "no_spleen": [_vol(50, 0)],
    }
    f = VolumePriorFilter(mean_volumes=means)
    assert f.select(history) == ["ok", "edge"]
    assert VolumePriorFilter(mean_volumes=means, missing="ignore").select(history) == [
        "ok",
        "edge",
        "no_spleen",
    ]
    assert VolumePriorFilter(mean_volumes=means, round_index=0).select({"big": history["big"]}) == [
        "big"
    ]
    bare = {"x": [_vol(50, 10).array]}
    assert VolumePriorFilter(mean_volumes=means, spacing=(2.0, 1.0, 1.0)).select(bare) == ["x"]
    with pytest.raises(ValueError, match="got bare arrays and spacing=None"):
        f.select(bare)


def test_source_volume_stats_counts_only_annotated():
    img = Volume(np.zeros((1, 10, 10), np.float32), (2.0, 1.0, 1.0))
    full = Case("s1", img, _vol(30, 10), "CT")
    liver_only = Case("s2", img, _vol(50, 0), "CT", annotated=(1,))
    stats = source_volume_stats([full, liver_only])
    assert stats[1] == pytest.approx((60 + 100) / 2)
    assert stats[3] == pytest.approx(20.0)  # s2 does not annotate the spleen
    assert stats[2] == 0.0


def test_all_of_composes_in_order():
    means = {1: 8.0, 2: 10.0}  # BASE on 1 mm^3 voxels: liver 4, kidney 5 -> ratios 0.5
    history = {k: [Volume(v.reshape(1, 1, -1)) for v in h] for k, h in HISTORY.items()}
    history["e"] = [
        Volume(BASE.reshape(1, 1, -1)),
        Volume(np.where(BASE == 2, 2, 0).reshape(1, 1, -1)),
    ]
    combo = AllOf(
        filters=[VolumePriorFilter(mean_volumes=means), UncertaintyFilter(keep_fraction=0.5)]
    )
    # the volume prior drops a (liver 1 voxel: 0.125x), d (empty), e (no liver);
    # then the more certain half of the survivors b, c: ceil(0.5 * 2) = 1
    assert combo.select(history) == ["b"]
    assert "all_of" in FILTERS and "uncertainty" in FILTERS and "volume_prior" in FILTERS


def test_filter_errors():
    with pytest.raises(ValueError, match="threshold and/or keep_fraction, got neither"):
        UncertaintyFilter()
    with pytest.raises(ValueError, match=r"keep_fraction must be in \(0, 1\]"):
        UncertaintyFilter(keep_fraction=0.0)
    with pytest.raises(ValueError, match="non-empty history"):
        UncertaintyFilter(threshold=1.0).select({})
    with pytest.raises(ValueError, match="at least 2 label maps"):
        UncertaintyFilter(threshold=1.0).select({"a": [BASE]})
    with pytest.raises(ValueError, match="low < high"):
        VolumePriorFilter(mean_volumes={1: 1.0}, low=2.0, high=1.0)
    with pytest.raises(ValueError, match="at least one filter"):
        AllOf(filters=[])
    with pytest.raises(KeyError, match="Did you mean 'uncertainty'"):
        get_filter("uncertainy")
    with pytest.raises(TypeError, match="needs the options \\['mean_volumes'\\]"):
        VolumePriorFilter()
    with pytest.raises(TypeError, match="keep_fraction must be a number or null, got True"):
        UncertaintyFilter(keep_fraction=True)
    with pytest.raises(TypeError, match="takes a UncertaintyOptions config or keywords, got float"):
        UncertaintyFilter(0.5)


def test_all_of_keeps_its_filters_as_specs():
    combo = AllOf(filters=[UncertaintyFilter(keep_fraction=0.5)])
    config = combo.to_config()
    assert config == {
        "name": "all_of",
        "options": {
            "filters": [
                {"name": "uncertainty", "options": {"threshold": None, "keep_fraction": 0.5}}
            ]
        },
    }
    again = get_filter("all_of", **config["options"])
    assert again.to_config() == config and isinstance(again.filters_[0], UncertaintyFilter)
