""":class:`EnsembleSegmenter`: several trained segmenters seen as one, by mean probability.

Networks trained alike from different seeds disagree most where each is unsure;
averaging their probabilities (not their labels) keeps what they agree on and
lets a confident member outvote an unsure one. The ensemble's "logits" are the
log of the mean softmax (or the logit of the mean sigmoid), so any inferer's
output head (:func:`~flare_uda.inference.heads.logits_to_labels`) turns them into
the labels of the mean probability: argmax for a softmax head, the threshold
on the mean for a sigmoid head.

Written here rather than taken from MONAI: MONAI's ``MeanEnsemble`` averages
finished prediction volumes after inference; this averages inside the window
loop, so the members share one preprocessing, one set of windows and one
resampling of the label map, and the inferer sees a single segmenter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from flare_uda.inference.segmenter import Segmenter

# The mean probability is clamped away from 0 and 1 before log/logit, so that a
# class every member rules out stays finite (argmax and thresholds are unchanged).
_EPS = 1e-6


class EnsembleSegmenter(Segmenter):
    """Mean probability of ``members``, segmenters with one plan.

    Built in memory from trained segmenters (it is not a YAML plug-in: its
    members are models, not options). Members run one after the other on each
    batch, so memory is that of the largest member, time the sum of theirs.

    Parameters
    ----------
    members : sequence of Segmenter
        At least one; every member's :class:`SegmentationPlan` must be equal
        (same patch, spacing, classes, normalisation, head), since the inferer
        prepares a batch once for all of them.

    Raises
    ------
    TypeError
        If ``members`` is not a sequence of segmenters.
    ValueError
        If it is empty or the plans differ (the message names the fields).
    """

    def __init__(self, members: Sequence[Segmenter]) -> None:
        super().__init__()
        if isinstance(members, Segmenter) or not isinstance(members, Sequence):
            raise TypeError(
                f"members must be a sequence of segmenters, got {type(members).__name__}"
            )
        bad = [type(m).__name__ for m in members if not isinstance(m, Segmenter)]
        if bad:
            raise TypeError(f"members must be segmenters, got {bad}")
        if not members:
            raise ValueError("an ensemble needs at least one member segmenter, got none")
        plan = members[0].plan
        for i, member in enumerate(members[1:], start=1):
            differ = [
                f.name
                for f in dataclasses.fields(plan)
                if getattr(plan, f.name) != getattr(member.plan, f.name)
            ]
            if differ:
                raise ValueError(
                    f"ensemble members must share one plan; member {i} differs from member 0 "
                    f"in {differ}"
                )
        self.members, self.plan = list(members), plan

    @property
    def device(self) -> torch.device:
        """The first member's device (batches are moved to each member's own)."""
        return self.members[0].device

    def predict_logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Log mean probability ``"b k z y x"`` (softmax head) or logit of the mean sigmoid.

        Parameters
        ----------
        batch : torch.Tensor, "b c z y x"
            As for any member: ``c == plan.in_channels``, normalised, at ``plan.spacing``.

        Returns
        -------
        torch.Tensor, "b k z y x"
            float32, on the first member's device.
        """
        self.check_batch(batch)
        total = None
        for member in self.members:
            logits = member.predict_logits(batch).float().to(self.device)
            if self.plan.head == "softmax":
                prob = torch.softmax(logits, dim=1)
            else:
                prob = torch.sigmoid(logits)
            total = prob if total is None else total + prob
        mean = (total / len(self.members)).clamp(_EPS, 1.0 - _EPS)
        if self.plan.head == "softmax":
            return mean.log()
        return torch.logit(mean)
