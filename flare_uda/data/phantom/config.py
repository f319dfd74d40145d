"""Phantom presets: the same anatomy sampled on coarser or finer grids.

A preset fixes the output grid of each modality (shape, ranges of spacing)
and the super-sampling used for partial volume; anatomy and intensity models
are shared by all presets, so a ``tiny`` phantom is a coarsely sampled body.
"""

from __future__ import annotations

from dataclasses import dataclass

from flare_uda.registry import unknown_name_error

Range = tuple[float, float]


def _check_range(value: Range, what: str) -> None:
    if len(value) != 2 or not 0 < value[0] <= value[1]:
        raise ValueError(f"{what} must be (low, high) with 0 < low <= high, got {value}")


@dataclass(frozen=True)
class PhantomConfig:
    """Output grids of one preset; all shapes and spacings are (z, y, x), mm.

    Parameters
    ----------
    name : str
    ct_shape, mr_shape : tuple of 3 int
        Voxels of CT and MR volumes.
    ct_inplane, mr_inplane : (low, high)
        Range of the in-plane spacing (y = x) drawn per case.
    ct_slice, t1_slice, t2_slice : (low, high)
        Range of the slice spacing (z) drawn per case.
    supersample : tuple of 3 int
        Fine grid factor per axis (partial volume).
    ct_cover : (low, high) or None
        If given, the CT z-coverage (mm) drawn per case; the number of slices
        then follows from the slice spacing (``ct_shape[0]`` is ignored), as
        in clinical series of varying slice thickness.
    """

    name: str
    ct_shape: tuple[int, int, int]
    ct_inplane: Range
    ct_slice: Range
    mr_shape: tuple[int, int, int]
    mr_inplane: Range
    t1_slice: Range
    t2_slice: Range
    supersample: tuple[int, int, int] = (3, 2, 2)
    ct_cover: Range | None = None

    def __post_init__(self) -> None:
        for what in ("ct_shape", "mr_shape", "supersample"):
            value = getattr(self, what)
            if len(value) != 3 or any(int(v) != v or v < 1 for v in value):
                raise ValueError(f"{what} must be 3 positive integers (z, y, x), got {value}")
        for what in ("ct_inplane", "ct_slice", "mr_inplane", "t1_slice", "t2_slice"):
            _check_range(getattr(self, what), what)
        if self.ct_cover is not None:
            _check_range(self.ct_cover, "ct_cover")


PHANTOM_PRESETS: dict[str, PhantomConfig] = {
    c.name: c
    for c in (
        PhantomConfig(
            "tiny",
            ct_shape=(16, 48, 48),
            ct_inplane=(6.4, 6.9),
            ct_slice=(10.0, 11.0),
            mr_shape=(14, 48, 48),
            mr_inplane=(7.4, 8.0),
            t1_slice=(10.5, 11.5),
            t2_slice=(11.5, 12.5),
            supersample=(3, 3, 3),
        ),
        PhantomConfig(
            "quick",
            ct_shape=(40, 112, 112),
            ct_inplane=(2.9, 3.2),
            ct_slice=(4.5, 5.5),
            mr_shape=(32, 112, 112),
            mr_inplane=(3.4, 3.8),
            t1_slice=(6.0, 7.0),
            t2_slice=(7.0, 8.0),
            supersample=(2, 2, 2),
        ),
        PhantomConfig(
            "paper",
            ct_shape=(100, 400, 400),
            ct_inplane=(0.75, 0.9),
            ct_slice=(2.5, 5.0),
            mr_shape=(40, 320, 320),
            mr_inplane=(1.2, 1.5),
            t1_slice=(5.5, 6.5),
            t2_slice=(6.5, 7.5),
            supersample=(2, 1, 1),
            ct_cover=(250.0, 300.0),
        ),
    )
}
"""Preset name -> :class:`PhantomConfig`."""


def get_preset(name: str) -> PhantomConfig:
    """The preset called ``name``; an unknown name raises ``KeyError`` with a did-you-mean."""
    if not isinstance(name, str):
        raise TypeError(f"preset must be a str, got {type(name).__name__}")
    try:
        return PHANTOM_PRESETS[name]
    except KeyError:
        raise unknown_name_error("phantom preset", name, list(PHANTOM_PRESETS)) from None
