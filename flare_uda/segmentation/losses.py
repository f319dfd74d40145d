"""Dice + cross-entropy for partially labelled cases (the marginal loss).

A case whose source map does not annotate organ ``u`` has label 0 there that
means "background *or* ``u``", not background. Following the marginal loss of
Shi et al. (MedIA 2021; Fang & Yan's target-adaptive loss, TMI 2020):

* **softmax head**: the cross-entropy of a voxel labelled 0 is the negative log
  of the *merged* probability ``p_0 + sum_{u unannotated} p_u`` (the likelihood
  of what was actually observed); organ voxels keep the ordinary CE. Soft Dice
  (nnU-Net's, background excluded, batch Dice, smooth 1e-5) runs over the
  annotated organ channels only. The loss therefore depends on ``p_0`` and the
  ``p_u`` only through their sum: moving probability between background and
  an unannotated organ at a background voxel costs nothing (zero gradient along
  that direction), while annotated organs are still pushed down there.
* **sigmoid head** (the paper's per-organ sigmoid): BCE + soft Dice per
  channel, channel 0 being "background"; unannotated organ channels are masked
  out entirely (exactly zero gradient), and channel 0 is masked at label-0
  voxels of partial cases.

nnunetv2's ``DC_and_CE_loss``/``MemoryEfficientSoftDiceLoss`` cannot express a
per-sample set of merged channels, so the terms are written here with the same
formulas (Dice: ``(2 tp + s) / (2 tp + fp + fn + s)``, averaged over classes).
Voxels with a negative target are ignored everywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from flare_uda.segmentation.rank_sums import across_ranks

SMOOTH = 1e-5


def annotated_mask(annotated: list[tuple[int, ...]], num_classes: int) -> torch.Tensor:
    """Bool ``"b k"``: channel ``c`` of sample ``b`` is annotated (channel 0 always)."""
    mask = torch.zeros(len(annotated), num_classes, dtype=torch.bool)
    mask[:, 0] = True
    for b, organs in enumerate(annotated):
        for c in organs:
            if not 1 <= c < num_classes:
                raise ValueError(f"annotated organs must be in 1..{num_classes - 1}, got {c}")
            mask[b, c] = True
    return mask


def _check(logits: torch.Tensor, target: torch.Tensor, annotated: torch.Tensor) -> None:
    if logits.ndim != 5:
        raise ValueError(f"expected logits 'b k z y x', got shape {tuple(logits.shape)}")
    b, k = logits.shape[:2]
    if target.shape != (b, 1, *logits.shape[2:]):
        raise ValueError(
            f"expected target 'b 1 z y x' = {(b, 1, *logits.shape[2:])}, got {tuple(target.shape)}"
        )
    if annotated.shape != (b, k):
        raise ValueError(f"expected annotated mask 'b k' = {(b, k)}, got {tuple(annotated.shape)}")
    if int(target.max()) >= k:
        raise ValueError(f"target holds class {int(target.max())} but logits have {k} channels")


def _soft_dice(
    probs: torch.Tensor, onehot: torch.Tensor, valid: torch.Tensor, channel_mask: torch.Tensor
) -> torch.Tensor:
    """Batch soft Dice loss over channels where ``channel_mask`` ("b k") holds."""
    axes = (2, 3, 4)
    tp = (probs * onehot * valid).sum(axes)
    sum_pred = (probs * valid).sum(axes)
    sum_gt = (onehot * valid).sum(axes)
    return _batch_dice(tp, sum_pred, sum_gt, channel_mask)


def _class_sums(
    probs: torch.Tensor, t0: torch.Tensor, valid: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample ``tp``, predicted and reference sums ("b k") without a one-hot.

    ``tp[b, c]`` is the sum of ``probs[b, c]`` over voxels labelled ``c``: the
    probability of each voxel's own class, gathered and scatter-added by class
    (a 14-channel one-hot and three full-size products cost ~37 % of a CPU
    step of the slice-wise net). Identical to the one-hot formula.
    """
    b, k = probs.shape[:2]
    flat_t = t0.reshape(b, -1)
    p_own = probs.reshape(b, k, -1).gather(1, flat_t[:, None])[:, 0]
    if valid is None:
        counts = torch.ones_like(p_own)
        sum_pred = probs.sum((2, 3, 4))
    else:
        counts = valid.reshape(b, -1).to(probs.dtype)
        p_own = p_own * counts
        sum_pred = (probs * valid[:, None]).sum((2, 3, 4))
    tp = probs.new_zeros(b, k).scatter_add(1, flat_t, p_own)
    sum_gt = probs.new_zeros(b, k).scatter_add(1, flat_t, counts)
    return tp, sum_pred, sum_gt


def _batch_dice(tp, sum_pred, sum_gt, channel_mask: torch.Tensor) -> torch.Tensor:
    """nnU-Net's batch soft Dice loss from per-sample sums, over masked channels."""
    m = channel_mask.to(tp.dtype)
    # across_ranks: the global batch's sums under torchrun, else the sums themselves
    tp, sum_pred, sum_gt = (across_ranks((x * m).sum(0)) for x in (tp, sum_pred, sum_gt))
    dc = (2 * tp + SMOOTH) / (sum_gt + sum_pred + SMOOTH).clamp_min(1e-8)
    used = across_ranks(channel_mask.any(0).long()) > 0
    if not used.any():
        return tp.sum() * 0.0
    return -dc[used].mean()


def marginal_dc_ce_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    annotated: torch.Tensor,
    weight_ce: float = 1.0,
    weight_dice: float = 1.0,
) -> torch.Tensor:
    """Marginal cross-entropy + soft Dice for a softmax head.

    Parameters
    ----------
    logits : torch.Tensor, "b k z y x"
    target : torch.Tensor, "b 1 z y x"
        Integer classes; negative values are ignored.
    annotated : torch.Tensor, bool "b k"
        From :func:`annotated_mask`.
    """
    _check(logits, target, annotated)
    t = target[:, 0].long()
    valid = t >= 0
    all_valid = bool(valid.all())
    t0 = t if all_valid else t.clamp_min(0)
    logp = F.log_softmax(logits.float(), dim=1)
    nll = -logp.gather(1, t0[:, None])[:, 0]
    partial = (~annotated.all(1)).nonzero()[:, 0]  # samples with unannotated organs
    if partial.numel():
        # at their label-0 voxels: background merged with their unannotated organs
        # (computed on those samples only: the masked logsumexp is the costly part)
        merged = ~annotated[partial]
        merged[:, 0] = True  # channel 0 and unannotated organs
        neg_inf = torch.finfo(logp.dtype).min
        masked = logp[partial].masked_fill(~merged[..., None, None, None], neg_inf)
        logp_bg = torch.logsumexp(masked, dim=1)
        nll = nll.index_put((partial,), torch.where(t0[partial] == 0, -logp_bg, nll[partial]))
    n_valid = across_ranks(valid.sum())  # the global batch's under torchrun (rank_sums)
    nll_sum = nll.sum() if all_valid else (nll * valid).sum()
    ce = across_ranks(nll_sum) / n_valid.clamp_min(1)
    probs = logp.exp()
    sums = _class_sums(probs, t0, None if all_valid else valid)
    organ_mask = annotated.clone()
    organ_mask[:, 0] = False  # nnU-Net: Dice without background
    return weight_ce * ce + weight_dice * _batch_dice(*sums, organ_mask)


def masked_bce_dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    annotated: torch.Tensor,
    weight_ce: float = 1.0,
    weight_dice: float = 1.0,
) -> torch.Tensor:
    """Per-channel BCE + soft Dice for a sigmoid head, unannotated channels masked.

    Parameters as :func:`marginal_dc_ce_loss`; channel ``c`` is the indicator
    of class ``c`` (channel 0: background).
    """
    _check(logits, target, annotated)
    k = logits.shape[1]
    t = target[:, 0].long()
    valid = (t >= 0)[:, None]
    onehot = F.one_hot(t.clamp_min(0), k).permute(0, 4, 1, 2, 3).to(torch.float32)
    partial = ~annotated.all(1)  # "b": some organ unannotated
    mask = annotated[..., None, None, None].expand_as(onehot).clone() & valid
    # background channel is unknown at label-0 voxels of partial cases
    mask[:, 0] &= ~(partial[:, None, None, None] & (t == 0))
    m = mask.to(torch.float32)
    bce = F.binary_cross_entropy_with_logits(logits.float(), onehot, reduction="none")
    bce = across_ranks((bce * m).sum()) / across_ranks(m.sum()).clamp_min(1)  # see rank_sums
    organ_mask = annotated.clone()
    organ_mask[:, 0] = False
    dice = _soft_dice(torch.sigmoid(logits.float()), onehot, m, organ_mask)
    return weight_ce * bce + weight_dice * dice


LOSSES = {"softmax": marginal_dc_ce_loss, "sigmoid": masked_bce_dice_loss}


def deep_supervision_loss(
    outputs: list[torch.Tensor] | torch.Tensor,
    target: torch.Tensor,
    annotated: torch.Tensor,
    weights: list[float] | None,
    head: str = "softmax",
) -> torch.Tensor:
    """Weighted sum of the head's loss over deep-supervision outputs.

    Parameters
    ----------
    outputs : list of torch.Tensor "b k z y x" (full resolution first), or one tensor
    target : torch.Tensor, "b 1 z y x" at full resolution
        Downsampled with nearest neighbour to each output's size (as nnU-Net).
    weights : list of float or None
        One per output (zero weights are skipped); ``None`` for a single output.
    """
    if head not in LOSSES:
        raise ValueError(f"head must be one of {list(LOSSES)}, got {head!r}")
    loss_fn = LOSSES[head]
    if isinstance(outputs, torch.Tensor):
        return loss_fn(outputs, target, annotated)
    if weights is None or len(weights) != len(outputs):
        raise ValueError(
            f"expected one weight per output ({len(outputs)}), got "
            f"{None if weights is None else len(weights)}"
        )
    total = outputs[0].new_zeros(())
    for out, w in zip(outputs, weights, strict=True):
        if w == 0:
            continue
        t = target
        if tuple(out.shape[2:]) != tuple(target.shape[2:]):
            t = F.interpolate(target.float(), size=out.shape[2:], mode="nearest-exact").long()
        total = total + w * loss_fn(out, t, annotated)
    return total
