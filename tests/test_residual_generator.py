"""The residual (identity-at-start) CycleGAN generator."""

from __future__ import annotations

import pytest
import torch

from flare_uda.translation import CycleGANConfig
from flare_uda.translation.networks import ResnetGenerator, build_networks


@pytest.mark.parametrize("dims", [2, 3])
def test_untrained_residual_generator_is_the_identity(dims):
    torch.manual_seed(0)
    gen = ResnetGenerator(dims, width=4, n_blocks=1, n_downsampling=1, residual=True)
    x = torch.rand((2, 1) + (8,) * dims) * 2 - 1
    x[0, 0].view(-1)[0] = 1.0  # the range's ends come back too (within 1e-4)
    x[0, 0].view(-1)[1] = -1.0
    torch.testing.assert_close(gen(x), x, atol=1.1e-4, rtol=0)


def test_residual_generator_learns_a_change():
    torch.manual_seed(0)
    gen = ResnetGenerator(2, width=4, n_blocks=1, n_downsampling=1, residual=True)
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    opt = torch.optim.Adam(gen.parameters(), lr=1e-2)
    for _ in range(30):  # learn to darken the image by 0.3
        loss = (gen(x) - (x - 0.3).clamp(-1, 1)).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (gen(x) - x).mean() < -0.1


def test_reference_generator_is_not_the_identity():
    torch.manual_seed(0)
    gen = ResnetGenerator(2, width=4, n_blocks=1, n_downsampling=1)
    x = torch.rand(1, 1, 8, 8) * 2 - 1
    assert (gen(x) - x).abs().max() > 0.1


def test_config_builds_residual_generators_and_rejects_bad_values():
    nets = build_networks(CycleGANConfig(residual=True))
    assert nets["G_t"].residual and nets["G_s"].residual
    assert not build_networks(CycleGANConfig())["G_t"].residual
    assert CycleGANConfig.from_dict(CycleGANConfig(residual=True).to_dict()).residual
    with pytest.raises(TypeError, match="residual must be True or False, got 'yes'"):
        CycleGANConfig(residual="yes")
    with pytest.raises(ValueError, match="in_channels == out_channels, got 1 and 2"):
        ResnetGenerator(2, 1, 2, residual=True)
