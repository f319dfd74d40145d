"""EnsembleSegmenter: mean probability of its members, checked against analytic answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from flare_uda.inference import SlidingWindowInferer
from flare_uda.inference.ensemble_segmenter import EnsembleSegmenter
from flare_uda.inference.heads import logits_to_labels
from tests.inference_support import (
    ModuleSegmenter,
    blob_volume,
    plan,
    threshold_labels,
    threshold_net,
)


class ConstantSegmenter(ModuleSegmenter):
    """Logits ``log(probs)`` at every voxel (a member that is sure or unsure everywhere)."""

    def __init__(self, probs: tuple[float, ...], head: str = "softmax") -> None:
        super().__init__(plan(k=len(probs), head=head), torch.nn.Identity())
        self.probs = torch.tensor(probs, dtype=torch.float32)

    def predict_logits(self, batch: torch.Tensor) -> torch.Tensor:
        self.check_batch(batch)
        b, _, z, y, x = batch.shape
        values = self.probs.log() if self.plan.head == "softmax" else torch.logit(self.probs)
        return values.view(1, -1, 1, 1, 1).expand(b, -1, z, y, x).clone()


def _batch(k_plan) -> torch.Tensor:
    return torch.zeros((1, k_plan.in_channels, *k_plan.patch_size))


def test_mean_probability_not_mean_logits():
    # one sure member for class 0 and two unsure for class 1: the mean probability is
    # (0.999 + 0.2 + 0.2) / 3 = 0.466 for class 0, so class 1 wins; the mean of the
    # logits would pick class 0 (log 999 outweighs twice log 4).
    members = [ConstantSegmenter((0.999, 0.001)), *[ConstantSegmenter((0.2, 0.8))] * 2]
    out = EnsembleSegmenter(members).predict_logits(_batch(members[0].plan))
    expected = math.log((0.999 + 0.2 + 0.2) / 3)
    assert out[0, 0, 0, 0, 0].item() == pytest.approx(expected, rel=1e-5)
    assert torch.exp(out).sum(1).allclose(torch.ones(1)), "log probabilities summing to 1"
    assert (logits_to_labels(out[0]) == 1).all()
    mean_logits = sum(m.predict_logits(_batch(m.plan)) for m in members) / 3
    assert (logits_to_labels(mean_logits[0]) == 0).all()


def test_sigmoid_head_thresholds_the_mean_sigmoid():
    members = [
        ConstantSegmenter((0.5, 0.9, 0.1), "sigmoid"),
        ConstantSegmenter((0.5, 0.3, 0.6), "sigmoid"),
    ]
    out = EnsembleSegmenter(members).predict_logits(_batch(members[0].plan))
    assert torch.sigmoid(out[0, :, 0, 0, 0]).tolist() == pytest.approx([0.5, 0.6, 0.35], rel=1e-5)
    labels = logits_to_labels(out[0], head="sigmoid", threshold=0.5)
    assert (labels == 1).all()  # organ 1 at 0.6 > 0.5, organ 2 at 0.35 below


def test_a_class_every_member_rules_out_stays_finite():
    members = [ConstantSegmenter((1.0, 0.0)), ConstantSegmenter((1.0, 0.0))]
    out = EnsembleSegmenter(members).predict_logits(_batch(members[0].plan))
    assert torch.isfinite(out).all() and (logits_to_labels(out[0]) == 0).all()


def test_equal_members_through_the_sliding_window_give_the_member_labels():
    volume = blob_volume()
    member = ModuleSegmenter(plan(), threshold_net())
    inferer = SlidingWindowInferer()
    alone = inferer(volume, member)
    windows = member.calls
    ensemble = EnsembleSegmenter([member, ModuleSegmenter(plan(), threshold_net())])
    together = inferer(volume, ensemble)
    np.testing.assert_array_equal(together.array, alone.array)
    np.testing.assert_array_equal(alone.array, threshold_labels(volume.array))
    assert ensemble.members[1].calls == member.calls - windows == windows > 0  # all windows


def test_members_with_different_plans_are_refused():
    a = ModuleSegmenter(plan(), threshold_net())
    b = ModuleSegmenter(plan(spacing=(1.0, 1.0, 1.0)), threshold_net())
    with pytest.raises(ValueError, match=r"member 1 differs from member 0 in \['spacing'\]"):
        EnsembleSegmenter([a, b])


@pytest.mark.parametrize(
    ("members", "error", "match"),
    [
        ([], ValueError, "at least one member segmenter, got none"),
        ("ab", TypeError, r"members must be segmenters, got \['str', 'str'\]"),
        (7, TypeError, "members must be a sequence of segmenters, got int"),
    ],
)
def test_bad_members_are_refused(members, error, match):
    with pytest.raises(error, match=match):
        EnsembleSegmenter(members)


def test_a_segmenter_instead_of_a_list_is_refused():
    one = ModuleSegmenter(plan(), threshold_net())
    with pytest.raises(TypeError, match="sequence of segmenters, got ModuleSegmenter"):
        EnsembleSegmenter(one)


def test_a_batch_without_the_plan_channels_is_refused():
    ensemble = EnsembleSegmenter([ModuleSegmenter(plan(), threshold_net())])
    with pytest.raises(ValueError, match="expected 1 input channel"):
        ensemble.predict_logits(torch.zeros((1, 2, 8, 16, 16)))
