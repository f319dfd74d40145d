"""Fusing one case's pseudo-labels of several rounds: union and majority vote.

Both are a vote over rounds with one tie rule, so they share
:func:`_vote`: for each voxel, every candidate label gets its number of
votes; the most voted wins; a tie goes to the candidate voted by the LATEST
round among the tied ones (the most trained model), which is always unique.

- :func:`union_ensemble`: candidates are the organs only. A voxel is
  foreground when any round calls it foreground (per-organ union); where
  several organs claim it, the organ voted by more rounds wins, ties to the
  latest round's organ.
- :func:`majority_vote`: candidates include background; the most voted label
  wins (background too), ties to the latest round's label.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from flare_uda.pseudolabel.base import ENSEMBLERS, Ensembler, LabelLike, label_arrays


def _vote(arrays: list[np.ndarray], include_background: bool) -> np.ndarray:
    stack = np.stack([a.astype(np.int64) for a in arrays])  # "k z y x"
    k = stack.shape[0]
    n_labels = int(stack.max(initial=0)) + 1
    best_score = np.full(stack.shape[1:], -1, dtype=np.int64)
    out = np.zeros(stack.shape[1:], dtype=arrays[0].dtype if arrays[0].dtype != bool else np.uint8)
    for lab in range(0 if include_background else 1, n_labels):
        hits = stack == lab
        count = hits.sum(0)
        # latest round (1..k) voting this label, 0 if none: breaks count ties.
        last = np.where(hits.any(0), k - np.argmax(hits[::-1], axis=0), 0)
        score = np.where(count > 0, count * (k + 1) + last, -1)
        better = score > best_score
        out[better] = lab
        best_score = np.maximum(best_score, score)
    return out


def union_ensemble(labels: Sequence[LabelLike]) -> np.ndarray:
    """Per-organ union of label maps (oldest round first); see the module docstring.

    Parameters
    ----------
    labels : sequence of arrays or Volumes, each "z y x"

    Returns
    -------
    np.ndarray, "z y x", dtype of the first input
    """
    return _vote(label_arrays(labels), include_background=False)


def majority_vote(labels: Sequence[LabelLike]) -> np.ndarray:
    """Per-voxel most voted label, background included; ties to the latest round."""
    return _vote(label_arrays(labels), include_background=True)


@ENSEMBLERS.register("union")
class UnionEnsembler(Ensembler):
    """:func:`union_ensemble` behind the :class:`Ensembler` interface."""

    def fuse(self, arrays: list[np.ndarray]) -> np.ndarray:
        return _vote(arrays, include_background=False)


@ENSEMBLERS.register("majority")
class MajorityEnsembler(Ensembler):
    """:func:`majority_vote` behind the :class:`Ensembler` interface."""

    def fuse(self, arrays: list[np.ndarray]) -> np.ndarray:
        return _vote(arrays, include_background=True)
