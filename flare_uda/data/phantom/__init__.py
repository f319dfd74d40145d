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

from flare_uda.data.phantom.cohort import generate_case, generate_cohort, write_cohort
from flare_uda.data.phantom.config import PHANTOM_PRESETS, PhantomConfig, get_preset

__all__ = [
    "PHANTOM_PRESETS",
    "PhantomConfig",
    "generate_case",
    "generate_cohort",
    "get_preset",
    "preview_figure",
    "write_cohort",
]


def preview_figure(ct_case, t1_case, t2_case, path):  # noqa: D103 - documented in preview
    from flare_uda.data.phantom.preview import preview_figure as _impl

    return _impl(ct_case, t1_case, t2_case, path)
