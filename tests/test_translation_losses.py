"""Each loss against a hand computation; the image pool; the lr schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from flare_uda.translation.losses import (
    adversarial_loss,
    cycle_loss,
    discriminator_loss,
    full_objective,
    generator_adversarial_loss,
    identity_loss,
)
from flare_uda.translation.pool import ImagePool
from flare_uda.translation.training import linear_decay

LOGITS = torch.tensor([[0.0, 2.0], [-1.0, 0.5]])


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def test_log_adversarial_loss_is_eq1_cross_entropy():
    values = [0.0, 2.0, -1.0, 0.5]
    real = -sum(math.log(_sigmoid(v)) for v in values) / 4
    fake = -sum(math.log(1 - _sigmoid(v)) for v in values) / 4
    assert adversarial_loss(LOGITS, True, "log").item() == pytest.approx(real, rel=1e-6)
    assert adversarial_loss(LOGITS, False, "log").item() == pytest.approx(fake, rel=1e-6)


def test_lsgan_adversarial_loss_is_mean_square():
    real = ((0 - 1) ** 2 + (2 - 1) ** 2 + (-1 - 1) ** 2 + (0.5 - 1) ** 2) / 4  # 1.5625
    fake = (0 + 4 + 1 + 0.25) / 4
    assert adversarial_loss(LOGITS, True).item() == pytest.approx(real)
    assert adversarial_loss(LOGITS, False, "lsgan").item() == pytest.approx(fake)
    assert generator_adversarial_loss(LOGITS).item() == pytest.approx(real)
    fake_logits = torch.tensor([1.0, -1.0])  # fake part: (1 + 1) / 2 = 1
    assert discriminator_loss(LOGITS, fake_logits).item() == pytest.approx(0.5 * (real + 1.0))
    with pytest.raises(ValueError, match="gan_mode must be one of"):
        adversarial_loss(LOGITS, True, "hinge")


def test_cycle_identity_and_full_objective():
    real = torch.tensor([[1.0, -1.0, 0.5, 0.0]])
    rec = torch.tensor([[0.5, -1.0, 1.5, -0.5]])  # |diff| = 0.5, 0, 1, 0.5 -> mean 0.5
    assert cycle_loss(real, rec).item() == pytest.approx(0.5)
    assert identity_loss(real, real).item() == 0.0
    assert identity_loss(real, rec).item() == pytest.approx(0.5)
    total = full_objective(
        torch.tensor(1.0), torch.tensor(2.0), torch.tensor(0.5), torch.tensor(0.2)
    )
    assert total.item() == pytest.approx(1 + 2 + 10 * 0.5 + 5 * 0.2)
    with pytest.raises(
        ValueError, match=r"cycle_loss expects equal shapes, got \(1, 4\) and \(4,\)"
    ):
        cycle_loss(real, rec[0])


def test_image_pool_fills_then_mixes_deterministically():
    def run(seed):
        pool = ImagePool(3, np.random.default_rng(seed))
        outs = [pool.query(torch.full((2, 1, 2, 2), float(i))) for i in range(6)]
        return torch.stack([o[:, 0, 0, 0] for o in outs])

    a = run(0)
    assert a[0].tolist() == [0.0, 0.0] and a[1].tolist() == [1.0, 1.0]  # filling: returned as is
    assert torch.equal(a, run(0))
    assert not torch.equal(a[2:], torch.arange(2, 6.0)[:, None].expand(4, 2))  # history used
    assert torch.equal(ImagePool(0, np.random.default_rng(0)).query(a), a)
    with pytest.raises(ValueError, match="pool size must be a non-negative int, got -1"):
        ImagePool(-1, np.random.default_rng(0))


def test_linear_decay_schedule():
    f = linear_decay(10, 0.5)  # constant for 5 steps, then 1 - k / 6
    assert [f(s) for s in (0, 4, 5)] == [1.0, 1.0, 1.0]
    assert f(8) == pytest.approx(1 - 3 / 6)
    assert f(10) == pytest.approx(1 / 6)
