"""The FLARE 13-organ label map, NSD tolerances, and remaps from public label maps.

Every label array inside flare_uda is in FLARE order (0 background, 1..13
organs). Public datasets use other maps; :func:`remap_to_flare` converts them
and :func:`get_label_map` tells which organs each source can contain
(``annotated``), so partial labels stay partial rather than becoming
background.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flare_uda.registry import unknown_name_error

FLARE_ORGANS: tuple[str, ...] = (
    "liver",
    "right_kidney",
    "spleen",
    "pancreas",
    "aorta",
    "inferior_vena_cava",
    "right_adrenal_gland",
    "left_adrenal_gland",
    "gallbladder",
    "esophagus",
    "stomach",
    "duodenum",
    "left_kidney",
)
"""Organ names for FLARE labels 1..13 (index 0 is label 1)."""

NUM_ORGANS = len(FLARE_ORGANS)

NSD_TOLERANCE_MM: dict[int, float] = dict(
    zip(
        range(1, 14), (5.0, 3.0, 3.0, 5.0, 2.0, 2.0, 2.0, 2.0, 2.0, 3.0, 5.0, 7.0, 3.0), strict=True
    )
)
"""FLARE NSD tolerance in mm per FLARE label."""

TUBULAR_ORGANS: tuple[int, ...] = (5, 6, 10)
"""Aorta, IVC, esophagus: scored only within the reference's z-range."""


def organ_name(label: int) -> str:
    """Name of FLARE ``label`` (1..13)."""
    if not 1 <= int(label) <= NUM_ORGANS:
        raise ValueError(f"FLARE label must be in 1..13, got {label}")
    return FLARE_ORGANS[int(label) - 1]


@dataclass(frozen=True)
class LabelMap:
    """A source label map and its conversion into FLARE order.

    Parameters
    ----------
    name : str
        Registry name (``"amos"``, ``"total"``, ...).
    source_values : tuple of (int or None)
        For FLARE labels 1..13 in order, the source value holding that organ,
        or ``None`` when the source does not annotate it.
    max_value : int
        Largest value the source map defines; anything above is invalid.
    """

    name: str
    source_values: tuple[int | None, ...]
    max_value: int

    def __post_init__(self) -> None:
        if len(self.source_values) != NUM_ORGANS:
            raise ValueError(
                f"label map {self.name!r} needs {NUM_ORGANS} source values, "
                f"got {len(self.source_values)}"
            )

    @property
    def annotated(self) -> tuple[int, ...]:
        """FLARE labels this source can contain."""
        return tuple(i + 1 for i, v in enumerate(self.source_values) if v is not None)

    def lookup_table(self) -> np.ndarray:
        """Array ``lut`` of length ``max_value + 1`` with ``lut[source] = flare``."""
        lut = np.zeros(self.max_value + 1, dtype=np.uint8)
        for flare, src in enumerate(self.source_values, start=1):
            if src is not None:
                lut[src] = flare
        return lut


_ALL = tuple(range(1, 14))
LABEL_MAPS: dict[str, LabelMap] = {
    m.name: m
    for m in (
        LabelMap("flare", _ALL, 13),
        LabelMap("amos", (6, 2, 1, 10, 8, 9, 11, 12, 4, 5, 7, 13, 3), 15),
        LabelMap("total", (5, 2, 1, 7, 52, 63, 8, 9, 4, 15, 6, 19, 3), 117),
        LabelMap("total_mr", (5, 2, 1, 7, 23, 24, 8, 9, 4, 12, 6, 14, 3), 56),
        LabelMap("chaos", (1, 2, 4, None, None, None, None, None, None, None, None, None, 3), 4),
        LabelMap("chaos_ct", (1,) + (None,) * 12, 1),
        # BTCV: 1 spleen 2 rkid 3 lkid 4 gallbladder 5 esophagus 6 liver 7 stomach
        # 8 aorta 9 IVC 10 portal/splenic vein 11 pancreas 12 rag 13 lag; no duodenum.
        LabelMap("btcv", (6, 2, 1, 11, 8, 9, 12, 13, 4, 5, 7, None, 3), 13),
    )
}


def get_label_map(name: str) -> LabelMap:
    """The :class:`LabelMap` called ``name``; unknown names raise with the closest match."""
    try:
        return LABEL_MAPS[name]
    except KeyError:
        raise unknown_name_error("label map", str(name), list(LABEL_MAPS)) from None


def check_label_values(array: np.ndarray, label_map: str = "flare", what: str = "label") -> None:
    """Raise ``ValueError`` if ``array`` holds values the map does not define."""
    lm = get_label_map(label_map)
    arr = np.asarray(array)
    if arr.size == 0:
        return
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi > lm.max_value:
        values = np.unique(arr)
        bad = values[(values < 0) | (values > lm.max_value)]
        raise ValueError(
            f"{what} holds values outside the {label_map!r} map (0..{lm.max_value}): "
            f"{bad[:10].tolist()}"
        )


def remap_to_flare(array: np.ndarray, label_map: str) -> np.ndarray:
    """Convert a label array of ``label_map`` into FLARE order.

    Parameters
    ----------
    array : np.ndarray of int, any shape
        Source labels.
    label_map : str
        Name of the source map (see :data:`LABEL_MAPS`).

    Returns
    -------
    np.ndarray of uint8, same shape
        FLARE labels; source values with no FLARE organ become 0.
    """
    arr = np.asarray(array)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"labels must be integers to remap, got dtype {arr.dtype}")
    check_label_values(arr, label_map)
    return get_label_map(label_map).lookup_table()[arr]


def keep_organs(array: np.ndarray, organs) -> np.ndarray:
    """``array`` with every label outside ``organs`` set to 0 (same dtype, a new array)."""
    return np.where(np.isin(array, tuple(organs)), array, 0).astype(array.dtype)
