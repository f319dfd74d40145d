"""Generator/discriminator shapes in 2D and 3D, input checks, config validation."""

from __future__ import annotations

import pytest
import torch

from flare_uda.translation.config import PRESETS, CycleGANConfig, get_preset
from flare_uda.translation.networks import PatchGANDiscriminator, ResnetGenerator, build_networks


@pytest.mark.parametrize(("dims", "shape"), [(2, (3, 1, 24, 32)), (3, (2, 1, 12, 16, 20))])
def test_generator_keeps_shape_and_range(dims, shape):
    torch.manual_seed(0)
    gen = ResnetGenerator(dims, width=4, n_blocks=1, n_downsampling=2)
    out = gen(torch.randn(shape) * 5)
    assert out.shape == shape
    assert out.abs().max() <= 1.0


@pytest.mark.parametrize(
    ("dims", "shape", "expected"),
    [
        # 2 strided layers: 48 -> 24 -> 12, then two stride-1 4-wide convs: 11, 10
        (2, (2, 1, 48, 48), (2, 1, 10, 10)),
        (3, (1, 1, 24, 24, 32), (1, 1, 4, 4, 6)),
    ],
)
def test_patchgan_output_shape(dims, shape, expected):
    disc = PatchGANDiscriminator(dims, width=4, n_layers=2)
    assert disc(torch.randn(shape)).shape == expected


def test_networks_reject_wrong_layout():
    gen = ResnetGenerator(2, width=4, n_blocks=1)
    with pytest.raises(ValueError, match=r"spatial_dims=2 expects 'b c y x' \(4D\), got shape"):
        gen(torch.randn(1, 1, 4, 16, 16))
    with pytest.raises(ValueError, match="multiples of 4"):
        gen(torch.randn(1, 1, 18, 16))
    with pytest.raises(ValueError, match="expects 1 input channel"):
        gen(torch.randn(1, 2, 16, 16))
    disc = PatchGANDiscriminator(3, width=4, n_layers=2)
    with pytest.raises(ValueError, match=r"spatial_dims=3 expects 'b c z y x' \(5D\)"):
        disc(torch.randn(1, 1, 16, 16))
    with pytest.raises(ValueError, match=r"sizes >= 12"):
        disc(torch.randn(1, 1, 8, 16, 16))
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3, got 1"):
        ResnetGenerator(1)


def test_build_networks_follow_config():
    cfg = CycleGANConfig(spatial_dims=3, width=4, n_blocks=1, disc_layers=1, crop_size=(8, 8, 8))
    nets = build_networks(cfg)
    assert set(nets) == {"G_t", "G_s", "D_t", "D_s"}
    assert nets["G_t"].spatial_dims == 3 and nets["D_s"].spatial_dims == 3


def test_config_validation_and_presets():
    assert PRESETS["quick"].spatial_dims == 2 and PRESETS["paper"].width == 64
    assert get_preset("quick", iterations=7).iterations == 7
    assert CycleGANConfig(crop_size=[32, 32]).patch_size == (1, 32, 32)
    with pytest.raises(KeyError, match="Did you mean 'quick'"):
        get_preset("quik")
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3, got 4"):
        CycleGANConfig(spatial_dims=4)
    with pytest.raises(ValueError, match=r"crop_size must be 3 ints \(z, y, x\)"):
        CycleGANConfig(spatial_dims=3, crop_size=(32, 32))
    with pytest.raises(ValueError, match="multiples of 4"):
        CycleGANConfig(crop_size=(30, 32))
    with pytest.raises(ValueError, match=r"crop_size must be >= 24"):
        CycleGANConfig(crop_size=(16, 16), disc_layers=3)
    with pytest.raises(ValueError, match="gan_mode must be one of"):
        CycleGANConfig(gan_mode="wgan")
    with pytest.raises(ValueError, match="width must be a positive int, got 0"):
        CycleGANConfig(width=0)
    with pytest.raises(ValueError, match="decay_fraction must be in"):
        CycleGANConfig(decay_fraction=1.5)
    with pytest.raises(ValueError, match="percentiles must satisfy"):
        CycleGANConfig(percentiles=(99, 1))
    with pytest.raises(ValueError, match="unknown CycleGANConfig keys"):
        CycleGANConfig.from_dict({"widht": 3})
    cfg = PRESETS["quick"]
    assert CycleGANConfig.from_dict(cfg.to_dict()) == cfg
