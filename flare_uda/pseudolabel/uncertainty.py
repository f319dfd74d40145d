"""Pseudo-label uncertainty across self-training rounds (the paper's eq. 7).

``u = 1 / (K - 1) * sum_{i=2..K} |y_i != y_{i-1}| / |y_i > 0|``: the mean,
over consecutive rounds, of the number of voxels whose label changed divided
by the foreground size of the later round.

Empty foreground (``|y_i > 0| = 0``): the term is 0 when nothing changed
(both rounds empty: they agree perfectly) and ``inf`` otherwise (the later
round lost every organ, which is maximally unreliable). Hence ``u = inf``
for any case whose pseudo-label vanished in some round.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from flare_uda.pseudolabel.base import History, LabelLike, label_arrays


def pseudo_label_uncertainty(labels: Sequence[LabelLike]) -> float:
    """Eq. 7 for ``K >= 2`` label maps of one case, oldest round first.

    Parameters
    ----------
    labels : sequence of K arrays or Volumes, each "z y x" (any equal shape)
        The case's pseudo-labels of successive rounds.

    Returns
    -------
    float
        ``>= 0``; ``inf`` when some later round has an empty foreground but
        differs from its predecessor (see the module docstring).

    Raises
    ------
    ValueError
        With fewer than two label maps or maps of different shapes.
    """
    arrays = label_arrays(labels, min_count=2)
    total = 0.0
    for prev, cur in zip(arrays[:-1], arrays[1:], strict=True):
        changed = int(np.count_nonzero(prev != cur))
        fg = int(np.count_nonzero(cur))
        if fg == 0:
            total += 0.0 if changed == 0 else float("inf")
        else:
            total += changed / fg
    return total / (len(arrays) - 1)


def uncertainties(history: History) -> dict[str, float]:
    """Eq. 7 for every case of a history, ``{case_id: u}``."""
    return {cid: pseudo_label_uncertainty(labels) for cid, labels in history.items()}


def organ_uncertainty(labels: Sequence[LabelLike], organ: int) -> float:
    """Eq. 7 for one organ: the same mean over consecutive rounds, of the voxels whose
    membership in ``organ`` changed divided by the organ's size in the later round.

    ``inf`` when the organ vanished in a later round after having been there; 0
    when it is absent in every round (:func:`organ_uncertainties` leaves those out).
    """
    arrays = label_arrays(labels, min_count=2)
    return pseudo_label_uncertainty([(a == organ).astype(np.uint8) for a in arrays])


def organ_uncertainties(labels: Sequence[LabelLike]) -> dict[int, float]:
    """Eq. 7 per organ present in the latest round, ``{organ: u}``."""
    arrays = label_arrays(labels, min_count=2)
    present = [int(o) for o in np.unique(arrays[-1]) if o > 0]
    return {o: organ_uncertainty(arrays, o) for o in present}
