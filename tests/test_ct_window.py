"""The CT soft-tissue window before the anatomy-space Sobel map."""

from __future__ import annotations

import numpy as np
import pytest

from flare_uda.data.anatomy import (
    CT_SOFT_TISSUE_WINDOW,
    check_window,
    sobel_magnitude,
    to_anatomy_space,
)
from flare_uda.translation import ASIT
from flare_uda.translation.asit import ASITConfig
from flare_uda.volume import Volume


def _abdomen() -> Volume:
    """Air around a fat body holding two soft-tissue organs 20 HU apart (x < 12 / x >= 12)."""
    arr = np.full((6, 32, 32), -1000.0, np.float32)
    arr[:, 4:28, 4:28] = -100.0  # fat
    arr[:, 8:24, 8:12] = 60.0  # organ a
    arr[:, 8:24, 12:24] = 40.0  # organ b
    return Volume(arr, spacing=(2.0, 1.0, 1.0))


def test_window_equals_the_sobel_map_of_the_clipped_image():
    ct = _abdomen()
    got = to_anatomy_space(ct, window=(-150.0, 250.0)).array
    want = sobel_magnitude(np.clip(ct.array, -150.0, 250.0), ct.spacing)
    np.testing.assert_allclose(got, want, atol=1e-7)


def test_window_strengthens_the_organ_boundary_against_the_air_edge():
    # Unclipped, the 900-HU air/fat edge sets the scale and the 20-HU organ
    # boundary is tiny; the window caps the air edge at 50 HU (fat -100 vs -150).
    ct = _abdomen()
    boundary = (3, 16, 12)  # between organ a (x=11) and organ b (x=12)
    raw = to_anatomy_space(ct).array[boundary]
    windowed = to_anatomy_space(ct, window=CT_SOFT_TISSUE_WINDOW).array[boundary]
    assert windowed > 3 * raw > 0


def test_window_warns_when_the_ct_has_no_air():
    ct = _abdomen()
    not_hu = ct.with_array(ct.array + 1024.0)  # stored without the rescale intercept
    with pytest.warns(UserWarning, match="is it in HU"):
        to_anatomy_space(not_hu, window=CT_SOFT_TISSUE_WINDOW)


@pytest.mark.parametrize("bad", [(250.0, -150.0), (0.0, 0.0), (1.0,), "soft", (0.0, np.inf)])
def test_bad_window_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="window"):
        check_window(bad)
    with pytest.raises(ValueError, match="source_window"):
        ASITConfig(source_window=bad)


def test_asit_clips_the_source_only_and_round_trips_its_window():
    ct = _abdomen()
    asit = ASIT(ASITConfig(iterations=1))
    source = asit.network_input(ct, "source")
    target = asit.network_input(ct, "target")
    np.testing.assert_allclose(
        source, to_anatomy_space(ct, window=CT_SOFT_TISSUE_WINDOW).array * 2 - 1, atol=1e-6
    )
    np.testing.assert_allclose(target, to_anatomy_space(ct).array * 2 - 1, atol=1e-6)
    for window in (None, (-200.0, 300.0)):
        config = ASITConfig(source_window=window)
        assert ASITConfig.from_dict(config.to_dict()) == config
