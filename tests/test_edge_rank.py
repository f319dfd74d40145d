"""The rank-scaled anatomy space (``edge_scale="rank"``): analytic ranks, invariance to
monotone intensity maps, the body mask, the translators' option and its cache key."""

from __future__ import annotations

import numpy as np
import pytest

from flare_uda.data.anatomy import rank_in_body, to_anatomy_space
from flare_uda.volume import Volume


def test_rank_in_body_gives_the_share_of_smaller_values():
    magnitude = np.array([[[0.0, 4.0, 1.0, 9.0, 1.0, 7.0]]], dtype=np.float32)
    body = np.array([[[True, True, True, True, True, False]]])
    out = rank_in_body(magnitude, body)
    # body values 0, 4, 1, 9, 1: strictly smaller ones 0, 3, 1, 4, 1 of 5; outside -> 0
    np.testing.assert_allclose(out, [[[0.0, 0.6, 0.2, 0.8, 0.2, 0.0]]])
    assert out.dtype == np.float32


def test_rank_in_body_is_uniform_over_distinct_values():
    rng = np.random.default_rng(0)
    magnitude = rng.random((4, 10, 10)).astype(np.float32)
    out = rank_in_body(magnitude, np.ones(magnitude.shape, bool))
    np.testing.assert_allclose(np.sort(out.ravel()), np.arange(400) / 400, atol=1e-7)


@pytest.mark.parametrize(
    ("body", "match"),
    [(np.ones((1, 1, 5), bool), "shape"), (np.ones((1, 1, 6), np.uint8), "bool mask")],
)
def test_rank_in_body_checks_its_mask(body, match):
    with pytest.raises(ValueError, match=match):
        rank_in_body(np.zeros((1, 1, 6), np.float32), body)


def _ball_scan(rng: np.random.Generator) -> np.ndarray:
    """A body (a slab of soft tissue in air) holding a brighter ball, with noise."""
    zyx = np.indices((12, 32, 32)) - np.array([6, 16, 16])[:, None, None, None]
    image = np.full((12, 32, 32), -1000.0)
    image[:, 4:28, 4:28] = 40.0
    image[(zyx**2).sum(0) < 36] = 120.0
    return image + rng.normal(0, 3, image.shape)


def test_rank_scale_is_invariant_to_monotone_intensity_maps_and_zero_outside_the_body():
    rng = np.random.default_rng(1)
    ct = _ball_scan(rng)
    spacing = (3.0, 1.0, 1.0)
    a = to_anatomy_space(Volume(ct, spacing), scale="rank")
    # an MR-like scan: a different affine scale; the rank depends on order only
    b = to_anatomy_space(Volume(0.3 * ct + 900.0, spacing), scale="rank")
    # equal up to float32 rounding of near-equal edges (a rank step is 1 / 2880 here)
    np.testing.assert_allclose(a.array, b.array, atol=1e-3)
    assert np.mean(np.abs(a.array - b.array) > 1e-6) < 0.05
    assert a.array[:, :2, :].max() == 0.0  # air around the body
    assert 0.0 <= a.array.min() and a.array.max() < 1.0
    # the ball's boundary ranks high among body voxels, its inside low
    zyx = np.indices(ct.shape) - np.array([6, 16, 16])[:, None, None, None]
    r2 = (zyx**2).sum(0)
    assert np.median(a.array[(r2 > 30) & (r2 < 42)]) > 0.75
    assert np.median(a.array[r2 < 9]) < 0.5


def test_unknown_edge_scale_is_refused():
    with pytest.raises(ValueError, match="edge scale must be one of"):
        to_anatomy_space(Volume(np.zeros((2, 4, 4)), (1.0, 1.0, 1.0)), scale="max")


@pytest.mark.parametrize("name", ["asit", "anatomy"])
def test_translators_take_the_edge_scale_and_check_it(name):
    from flare_uda.plugin import spec

    rng = np.random.default_rng(2)
    volume = Volume(_ball_scan(rng), (3.0, 1.0, 1.0))
    translator = spec("translator", name, edge_scale="rank").build()
    mapped = translator.to_space(volume).array if name == "anatomy" else None
    if name == "asit":  # the network's view of a target image, mapped back to [0, 1]
        mapped = translator.network_output(translator.network_input(volume))
    expected = to_anatomy_space(volume, scale="rank").array
    np.testing.assert_allclose(mapped, expected, atol=1e-6)
    with pytest.raises(ValueError, match="edge_scale must be one of"):
        spec("translator", name, edge_scale="max")


def test_translate_stage_key_leaves_the_default_edge_scale_out():
    """Run folders made before the option keep their cache keys; 'rank' gets its own."""
    from flare_uda.pipeline.stages import Cases, Translate
    from flare_uda.plugin import spec

    cases = Cases("ct", [])
    default = Translate(spec("translator", "asit"), cases, cases).config()
    rank = Translate(spec("translator", "asit", edge_scale="rank"), cases, cases).config()
    assert "edge_scale" not in default["translator"]["options"]
    assert rank["translator"]["options"]["edge_scale"] == "rank"
