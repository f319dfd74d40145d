"""The CycleGAN objective as pure functions (paper eq. 1-4).

Notation: ``T_t`` translates source -> target, ``T_s`` target -> source;
``D_t`` tells real from fake target images, ``D_s`` the same for the source.

- eq. 1, adversarial: ``E[log D(y)] + E[log(1 - D(T(x)))]``; implemented on
  discriminator logits as a binary cross-entropy (``gan_mode="log"``) or, as in
  the reference implementation's default, a least-squares loss (``"lsgan"``).
- eq. 2, cycle consistency: ``E|T_s(T_t(x)) - x|_1 + E|T_t(T_s(y)) - y|_1``.
- eq. 3, identity: ``E|T_t(y) - y|_1 + E|T_s(x) - x|_1``.
- eq. 4, full objective: ``L_adv(T_t, D_t) + L_adv(T_s, D_s) + lambda1 L_cyc + lambda2 L_idt``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from flare_uda._validation import require_choice
from flare_uda.translation.config import GAN_MODES


def adversarial_loss(logits: torch.Tensor, target_is_real: bool, gan_mode: str = "lsgan"):
    """Distance of discriminator ``logits`` (any shape) from the real (1) or fake (0) label.

    ``"log"``: mean binary cross-entropy of ``sigmoid(logits)`` (eq. 1);
    ``"lsgan"``: mean squared error of the raw logits.
    """
    require_choice(gan_mode, GAN_MODES, "gan_mode")
    target = torch.full_like(logits, 1.0 if target_is_real else 0.0)
    if gan_mode == "log":
        return F.binary_cross_entropy_with_logits(logits, target)
    return F.mse_loss(logits, target)


def generator_adversarial_loss(fake_logits: torch.Tensor, gan_mode: str = "lsgan"):
    """The generator's side of eq. 1: make ``D`` call its fakes real."""
    return adversarial_loss(fake_logits, True, gan_mode)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, gan_mode="lsgan"):
    """The discriminator's side of eq. 1, halved as in the reference (slows D relative to G)."""
    return 0.5 * (
        adversarial_loss(real_logits, True, gan_mode)
        + adversarial_loss(fake_logits, False, gan_mode)
    )


def cycle_loss(real: torch.Tensor, reconstructed: torch.Tensor) -> torch.Tensor:
    """One term of eq. 2: mean L1 between an image and its round trip."""
    _same_shape(real, reconstructed, "cycle_loss")
    return F.l1_loss(reconstructed, real)


def identity_loss(real: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """One term of eq. 3: mean L1 between a target image and the target generator's output on it."""
    _same_shape(real, same, "identity_loss")
    return F.l1_loss(same, real)


def full_objective(
    adv_t: torch.Tensor,
    adv_s: torch.Tensor,
    cycle: torch.Tensor,
    identity: torch.Tensor,
    lambda_cycle: float = 10.0,
    lambda_identity: float = 5.0,
) -> torch.Tensor:
    """eq. 4: ``adv_t + adv_s + lambda1 * cycle + lambda2 * identity`` (the generators' loss)."""
    return adv_t + adv_s + lambda_cycle * cycle + lambda_identity * identity


def _same_shape(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what} expects equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
