"""Synthetic abdominal phantom cohort: CT (three contrast phases), MR T1 and T2, exact labels.

Public API::

    PHANTOM_PRESETS                     # name -> PhantomConfig ("tiny", "quick", "paper")
    generate_case(preset, modality, sequence, seed, lesion) -> Case
    generate_cohort(preset, n_ct, n_mr, seed) -> (ct_cases, mr_cases)
    write_cohort(out_dir, preset, n_ct, n_mr, seed, progress) -> (ct_dir, mr_dir)
    preview_figure(ct_case, t1_case, t2_case, path)

Modules: ``shapes`` (primitives), ``body`` (outline, wall, spine, ribs, lungs),
``organs`` (13 organs, vessels, bowel, lesion), ``intensity`` (tissue table),
``render`` (fine-grid rasterisation, warp, partial volume), ``acquisition``
(grids, noise, bias field), ``cohort`` and ``preview``.
"""

from __future__ import annotations

import os
from pathlib import Path

from flare_uda.data.phantom.cohort import generate_case, generate_cohort, write_cohort
from flare_uda.data.phantom.config import PHANTOM_PRESETS, PhantomConfig, get_preset
from flare_uda.volume import Case

__all__ = [
    "PHANTOM_PRESETS",
    "PhantomConfig",
    "generate_case",
    "generate_cohort",
    "get_preset",
    "preview_figure",
    "write_cohort",
]


def preview_figure(ct_case: Case, t1_case: Case, t2_case: Case, path: str | os.PathLike) -> Path:
    """CT, T1 and T2 axial and coronal slices with label overlays as one PNG.

    See :func:`flare_uda.data.phantom.preview.preview_figure` (imported lazily,
    so that generating cases never imports matplotlib).
    """
    from flare_uda.data.phantom.preview import preview_figure as _impl

    return _impl(ct_case, t1_case, t2_case, path)
