"""Partial-label losses: agreement with nnU-Net, gradient masking, deep supervision."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from flare_uda.segmentation.losses import (
    annotated_mask,
    deep_supervision_loss,
    marginal_dc_ce_loss,
    masked_bce_dice_loss,
)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 3, 5, 5, generator=g)
    target = torch.randint(0, 4, (2, 1, 3, 5, 5), generator=g)
    return logits, target


def test_fully_annotated_equals_nnunet_dc_and_ce(batch):
    from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
    from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

    logits, target = batch
    ref = DC_and_CE_loss(
        {"batch_dice": True, "smooth": 1e-5, "do_bg": False, "ddp": False},
        {},
        dice_class=MemoryEfficientSoftDiceLoss,
    )
    ours = marginal_dc_ce_loss(logits, target, annotated_mask([(1, 2, 3)] * 2, 4))
    torch.testing.assert_close(ours, ref(logits, target))


def _bg_voxel_grads(loss_fn, unannotated=3):
    """Gradient w.r.t. the class probabilities of one voxel labelled background."""
    g = torch.Generator().manual_seed(1)
    probs = torch.softmax(torch.randn(1, 4, 1, 1, 1, generator=g), 1).requires_grad_(True)
    target = torch.zeros(1, 1, 1, 1, 1, dtype=torch.long)
    organs = tuple(c for c in (1, 2, 3) if c != unannotated)
    loss = loss_fn(torch.log(probs), target, annotated_mask([organs], 4))
    (grad,) = torch.autograd.grad(loss, probs)
    return grad[0, :, 0, 0, 0]


def test_unannotated_organ_gets_zero_gradient_from_background_voxel():
    # Logits = log(p), so the loss is a function of the probabilities; moving
    # probability from background (0) to the unannotated organ (3) at a voxel
    # labelled 0 is the direction e3 - e0: its derivative must be exactly zero
    # (the voxel says nothing about "background or organ 3").
    g = _bg_voxel_grads(marginal_dc_ce_loss)
    assert abs(float(g[3] - g[0])) < 1e-6
    # annotated organs are still pushed down relative to background there
    assert float(g[1] - g[0]) > 1e-3 and float(g[2] - g[0]) > 1e-3
    # the naive loss (organ 3 annotated, i.e. label 0 = background) penalises it
    naive = _bg_voxel_grads(marginal_dc_ce_loss, unannotated=None)
    assert float(naive[3] - naive[0]) > 1e-3


def test_sigmoid_head_unannotated_channel_gets_exactly_zero_gradient(batch):
    logits, target = batch
    target = target.clamp(max=2)  # organ 3 never in the label
    logits = logits.clone().requires_grad_(True)
    loss = masked_bce_dice_loss(logits, target, annotated_mask([(1, 2), (1, 2, 3)], 4))
    (grad,) = torch.autograd.grad(loss, logits)
    assert torch.all(grad[0, 3] == 0)  # unannotated in sample 0
    assert torch.all(grad[0, 0][target[0, 0] == 0] == 0)  # background unknown at label 0
    assert grad[1, 3].abs().sum() > 0  # annotated in sample 1


def test_negative_targets_are_ignored(batch):
    logits, target = batch
    ann = annotated_mask([(1, 2, 3)] * 2, 4)
    t2 = target.clone()
    t2[:, :, 0] = -1
    logits = logits.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(marginal_dc_ce_loss(logits, t2, ann), logits)
    assert torch.all(grad[:, :, 0] == 0)


def test_deep_supervision_loss_weights_downsampled_targets(batch):
    logits, target = batch
    ann = annotated_mask([(1, 2, 3)] * 2, 4)
    low = F.interpolate(logits, scale_factor=(1, 0.4, 0.4))
    t_low = F.interpolate(target.float(), size=low.shape[2:], mode="nearest-exact").long()
    total = deep_supervision_loss([logits, low], target, ann, [0.75, 0.25])
    expected = 0.75 * marginal_dc_ce_loss(logits, target, ann) + 0.25 * marginal_dc_ce_loss(
        low, t_low, ann
    )
    torch.testing.assert_close(total, expected)


def test_loss_error_paths(batch):
    logits, target = batch
    ann = annotated_mask([(1, 2, 3)] * 2, 4)
    with pytest.raises(ValueError, match="expected target 'b 1 z y x'"):
        marginal_dc_ce_loss(logits, target[:, 0], ann)
    with pytest.raises(ValueError, match="holds class 5 but logits have 4 channels"):
        marginal_dc_ce_loss(logits, target.clamp(max=0) + 5, ann)
    with pytest.raises(ValueError, match="annotated mask 'b k'"):
        marginal_dc_ce_loss(logits, target, ann[:1])
    with pytest.raises(ValueError, match=r"annotated organs must be in 1\.\.3"):
        annotated_mask([(4,)], 4)
    with pytest.raises(ValueError, match="one weight per output"):
        deep_supervision_loss([logits, logits], target, ann, [1.0])
    with pytest.raises(ValueError, match="head must be one of"):
        deep_supervision_loss(logits, target, ann, None, head="argmax")


def _one_hot_reference(logits, target, annotated):
    """The marginal loss written with a one-hot and full-size products (the textbook form)."""
    t = target[:, 0]
    valid = (t >= 0).float()
    t0 = t.clamp_min(0)
    logp = F.log_softmax(logits, 1)
    merged = ~annotated.clone()
    merged[:, 0] = True
    p = logp.exp()
    p_bg = (p * merged[..., None, None, None]).sum(1)
    nll = -torch.where(t0 == 0, torch.log(p_bg), logp.gather(1, t0[:, None])[:, 0])
    ce = (nll * valid).sum() / valid.sum()
    onehot = F.one_hot(t0, logits.shape[1]).permute(0, 4, 1, 2, 3).float() * valid[:, None]
    organs = annotated.clone()
    organs[:, 0] = False
    m = organs[..., None, None, None].float()
    tp = (p * onehot * m).sum((0, 2, 3, 4))
    fp_fn = ((p * valid[:, None] + onehot) * m).sum((0, 2, 3, 4))
    dc = (2 * tp + 1e-5) / (fp_fn + 1e-5)
    return ce - dc[organs.any(0)].mean()


@pytest.mark.parametrize("case", ["full", "partial", "ignored_voxels"])
def test_gathered_sums_match_the_one_hot_formula_and_its_gradient(case):
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(3, 5, 2, 6, 7, generator=g, dtype=torch.float64)
    target = torch.randint(0, 5, (3, 1, 2, 6, 7), generator=g)
    organs = [(1, 2, 3, 4)] * 3 if case != "partial" else [(1, 2, 3, 4), (2, 4), (1,)]
    if case == "ignored_voxels":
        target[0, 0, 0, :3] = -1
    ann = annotated_mask(organs, 5)
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    ours, ref = marginal_dc_ce_loss(a, target, ann), _one_hot_reference(b, target, ann)
    torch.testing.assert_close(ours.double(), ref)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(a.grad, b.grad)
