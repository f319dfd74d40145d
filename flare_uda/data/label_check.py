"""Which label map a label file is in: a plausibility check, so that maps are never mixed.

The values of a label file alone rarely say which public map it uses (value 1
is the liver in FLARE and CHAOS, the spleen in AMOS and TotalSegmentator).
Anatomy does: the liver is the largest abdominal organ and lies on the
patient's right. So when a label's largest organ lies on the right (its
centroid at a smaller LPS physical x than the grid centre), the maps in
which that value is the liver are the plausible ones; otherwise (a slab
below the liver, a spleen-heavy slice) every map whose value range fits is.
A folder holds one map: :func:`resolve_label_map` refuses a declared map
that some file does not fit and a folder whose files fit no common map.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from flare_uda.data.labels import LABEL_MAPS, get_label_map
from flare_uda.volume import Volume

DEFAULT_MAP = "flare"


@dataclass(frozen=True)
class LabelSignature:
    """What a raw label file says about its map.

    ``largest``: the non-zero value with most voxels (``None`` for an empty label);
    ``right``: whether that organ's centroid lies on the patient's right;
    ``fits``: maps whose value range holds every value of the file;
    ``plausible``: the maps that fit and agree with the anatomy (see the module doc).
    """

    largest: int | None
    right: bool
    fits: tuple[str, ...]
    plausible: tuple[str, ...]

    def describe(self) -> str:
        if self.largest is not None and self.right and self.plausible != self.fits:
            return (
                f"its largest organ, value {self.largest}, lies on the patient's right like a "
                f"liver, which is value {self.largest} in {'/'.join(self.plausible)}"
            )
        return f"its values fit {'/'.join(self.plausible) or 'no known map'}"


def liver_value(label_map: str) -> int | None:
    """The source value of the liver in ``label_map`` (``None`` if it does not annotate it)."""
    return get_label_map(label_map).source_values[0]


def signature(raw: Volume) -> LabelSignature:
    """The :class:`LabelSignature` of a label volume holding its file's own (unmapped) values."""
    counts = np.bincount(np.asarray(raw.array, dtype=np.int64).ravel())
    fits = tuple(name for name, m in LABEL_MAPS.items() if len(counts) - 1 <= m.max_value)
    if counts[1:].sum() == 0:
        return LabelSignature(None, False, fits, fits)
    largest = 1 + int(np.argmax(counts[1:]))
    centroid = np.argwhere(raw.array == largest).mean(axis=0)
    centre = (np.asarray(raw.shape) - 1) / 2.0
    x_organ, x_grid = (raw.index_to_physical(p)[2] for p in (centroid, centre))
    right = bool(x_organ < x_grid)
    livers = tuple(n for n in fits if right and liver_value(n) == largest)
    return LabelSignature(largest, right, fits, livers or fits)


def resolve_label_map(
    signatures: Mapping[str, LabelSignature], declared: str | None, where: str
) -> str:
    """The one label map of a folder's labels, checked against every file.

    Parameters
    ----------
    signatures : dict case_id -> LabelSignature
        One per label file of the folder.
    declared : str or None
        The map the user named (``--source DIR:MAP``); ``None``: FLARE, when
        FLARE alone explains every file (else an error asks for the map).
    where : str
        The folder, for messages.

    Raises
    ------
    ValueError
        If a file does not fit the declared map, the files fit no common map
        ("mixed label maps"), or no map was declared and FLARE is not the only
        one that fits; the message names the files and what they look like.
    """
    common = set(LABEL_MAPS)
    for sig in signatures.values():
        common &= set(sig.plausible)
    if not common and len(signatures) > 1:
        groups: dict[tuple[str, ...], list[str]] = {}
        for case_id, sig in signatures.items():
            groups.setdefault(sig.plausible, []).append(case_id)
        looks = "; ".join(
            f"{', '.join(ids[:4])}{' ...' if len(ids) > 4 else ''} look like {'/'.join(maps)}"
            for maps, ids in groups.items()
        )
        raise ValueError(
            f"labels in {where} mix label maps ({looks}); expected one label map per folder: "
            "put each map's cases in a folder of its own and pass each as --source DIR:MAP"
        )
    if declared is None:
        return _default_map(common, where)
    get_label_map(declared)  # an unknown name raises with a did-you-mean
    for case_id, sig in signatures.items():
        if declared not in sig.plausible:
            raise ValueError(
                f"label of case {case_id!r} in {where} does not look like the declared "
                f"{declared!r} map: {sig.describe()} (the liver is value "
                f"{liver_value(declared)} in {declared!r}); expected every label of the folder "
                "in the declared map"
            )
    return declared


def _default_map(common: set[str], where: str) -> str:
    """FLARE when it alone explains the labels; an error asking for the map otherwise."""
    if common == {DEFAULT_MAP}:
        return DEFAULT_MAP
    if not common:
        reason = "their values fit no known map"
    elif DEFAULT_MAP in common:
        reason = f"they could be in any of {sorted(common)}"
    else:
        reason = f"they are not FLARE labels (they look like {'/'.join(sorted(common))})"
    example = sorted(common - {DEFAULT_MAP}) or ["MAP"]
    raise ValueError(
        f"no label map given for {where} and {reason}; expected the map after the folder, "
        f"e.g. {where}:{example[0]} (known maps: {sorted(LABEL_MAPS)})"
    )
