"""Phantom cases and cohorts: :func:`generate_case`, :func:`generate_cohort`, :func:`write_cohort`.

A case is fully determined by ``(preset, modality, sequence, seed, lesion)``.
The subject (anatomy) is drawn from ``(seed, modality)``, so a CT and an MR
case never show the same person; a T1 and a T2 case with the same seed are
the same MR subject scanned twice. Cohorts give every case its own seed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from flare_uda._atomic import replace_dir
from flare_uda.data.datasets import write_dataset
from flare_uda.data.labels import NUM_ORGANS
from flare_uda.data.phantom.acquisition import ct_image, mr_image, sample_acquisition
from flare_uda.data.phantom.body import sample_body
from flare_uda.data.phantom.config import get_preset
from flare_uda.data.phantom.intensity import (
    MR_SEQUENCES,
    intensity_table,
    jitter_table,
    texture_table,
)
from flare_uda.data.phantom.organs import bowel_structures, organ_structures
from flare_uda.data.phantom.render import Warp, rasterize
from flare_uda.executor import Executor, get_executor
from flare_uda.volume import Case, Volume

_MODALITY_CODE = {"CT": 0, "MR": 1}
ARMS_DOWN = {"CT": 0.1, "MR": 0.6}
"""Probability that a subject lies with the arms beside the body (in the field of view)."""


def _check_request(modality: str, sequence: str | None, seed: int) -> None:
    if modality not in _MODALITY_CODE:
        raise ValueError(f"modality must be 'CT' or 'MR', got {modality!r}")
    if modality == "CT" and sequence is not None:
        raise ValueError(f"CT cases take no sequence: expected None, got {sequence!r}")
    if modality == "MR" and sequence not in MR_SEQUENCES:
        raise ValueError(
            f"MR cases need a sequence: expected one of {MR_SEQUENCES}, got {sequence!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


def generate_case(
    preset: str = "tiny",
    modality: str = "CT",
    sequence: str | None = None,
    seed: int = 0,
    lesion: bool = False,
    case_id: str | None = None,
) -> Case:
    """One synthetic abdominal scan with exact labels of all 13 FLARE organs.

    Parameters
    ----------
    preset : str
        A key of :data:`PHANTOM_PRESETS` (``"tiny"``, ``"quick"``, ``"paper"``).
    modality : {"CT", "MR"}
    sequence : {None, "T1", "T2"}
        ``None`` for CT (the contrast phase is drawn from the seed); required for MR.
    seed : int
        Non-negative; the same arguments give identical arrays.
    lesion : bool
        Put one round lesion inside the liver or a kidney (it keeps the organ's label).
    case_id : str, optional
        Defaults to ``ct_{seed:03d}`` or ``mr_{t1|t2}_{seed:03d}``.

    Returns
    -------
    Case
        ``image`` (CT: int16 HU; MR: float32) and ``label`` (uint8, FLARE order)
        on one grid, arrays "z y x"; MR labels are for evaluation only.
    """
    cfg = get_preset(preset)
    _check_request(modality, sequence, seed)
    code = _MODALITY_CODE[modality]
    # independent streams: subject anatomy, scan (grid, contrast, noise), lesion
    subject = np.random.default_rng(np.random.SeedSequence([int(seed), code, 0]))
    seq_index = 0 if sequence is None else 1 + MR_SEQUENCES.index(sequence)
    scan = np.random.default_rng(np.random.SeedSequence([int(seed), code, 1, seq_index]))
    lesion_rng = np.random.default_rng(np.random.SeedSequence([int(seed), code, 2]))
    body = sample_body(subject, arms_probability=ARMS_DOWN[modality])
    warp = Warp.random(subject)
    structures = (
        body.structures()
        + organ_structures(body, subject, lesion_rng=lesion_rng if lesion else None)
        + body.thorax()
        + body.arm_structures()
        + bowel_structures(subject)
    )
    acq = sample_acquisition(cfg, modality, sequence, scan)
    table = intensity_table(modality, acq.phase if modality == "CT" else sequence)
    table = jitter_table(table, modality, scan)
    values, labels = rasterize(
        structures, warp, acq.start, acq.spacing, acq.shape, cfg.supersample,
        np.stack([table, texture_table()]),
    )  # fmt: skip
    make = ct_image if modality == "CT" else mr_image
    image = make(values[0], values[1], acq, scan)
    if case_id is None:
        case_id = f"ct_{seed:03d}" if modality == "CT" else f"mr_{sequence.lower()}_{seed:03d}"
    geometry = {"spacing": acq.spacing, "origin": acq.origin}
    return Case(
        case_id=case_id,
        image=Volume(image, **geometry),
        label=Volume(labels, **geometry),
        modality=modality,
        sequence=sequence,
        annotated=tuple(range(1, NUM_ORGANS + 1)),
    )


def _case_seed(seed: int, stream: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), stream, index]).generate_state(1)[0] % 10**8)


def cohort_plan(n_ct: int, n_mr: int, seed: int) -> list[tuple[str, str | None, int, str]]:
    """``(modality, sequence, case_seed, case_id)`` of every case of a cohort.

    MR cases are split across T1 (the first ``ceil(n_mr / 2)``) and T2.
    """
    for what, n in (("n_ct", n_ct), ("n_mr", n_mr)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"{what} must be a non-negative int, got {n!r}")
    plan = [("CT", None, _case_seed(seed, 0, i), f"ct_{i:03d}") for i in range(n_ct)]
    n_t1 = (n_mr + 1) // 2
    plan += [("MR", "T1", _case_seed(seed, 1, i), f"mr_t1_{i:03d}") for i in range(n_t1)]
    plan += [("MR", "T2", _case_seed(seed, 2, i), f"mr_t2_{i:03d}") for i in range(n_mr - n_t1)]
    return plan


def _make(args: tuple) -> Case:
    preset, modality, sequence, seed, lesion, case_id = args
    return generate_case(preset, modality, sequence, seed, lesion, case_id)


def generate_cohort(
    preset: str = "quick",
    n_ct: int = 8,
    n_mr: int = 8,
    seed: int = 0,
    lesion: bool = False,
    executor: str | Executor | None = None,
    progress: bool = False,
) -> tuple[list[Case], list[Case]]:
    """Unpaired CT and MR cohorts (different subjects); MR split across T1 and T2.

    Returns
    -------
    (ct_cases, mr_cases)
        Case ids ``ct_000, ...`` and ``mr_t1_000, ..., mr_t2_000, ...``.
    """
    get_preset(preset)
    plan = cohort_plan(n_ct, n_mr, seed)
    jobs = [(preset, m, s, cs, lesion, cid) for m, s, cs, cid in plan]
    cases = get_executor(executor, progress=progress).map(_make, jobs, desc="phantom cases")
    return cases[:n_ct], cases[n_ct:]


def write_cohort(
    out_dir: str | os.PathLike,
    preset: str = "quick",
    n_ct: int = 8,
    n_mr: int = 8,
    seed: int = 0,
    progress: bool = True,
    lesion: bool = False,
    executor: str | Executor | None = None,
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Write the cohort as two nnU-Net raw datasets, ``out_dir/ct`` and ``out_dir/mr``.

    Each dataset gets ``dataset.json`` and ``manifest.json`` (modality,
    sequence, annotated organs per case). Both are written into new folders
    beside the targets, then renamed into place (:func:`~flare_uda._atomic.replace_dir`),
    so a killed run leaves the old datasets or the new ones, never a half-written
    or a deleted one. Existing ``ct``/``mr`` folders are replaced only with ``overwrite``.

    Returns
    -------
    (ct_dir, mr_dir) : tuple of Path
    """
    if n_ct < 1 or n_mr < 1:
        raise ValueError(f"write_cohort needs n_ct >= 1 and n_mr >= 1, got {n_ct} and {n_mr}")
    out = Path(out_dir)
    targets = (out / "ct", out / "mr")
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise ValueError(
            f"expected no existing dataset folders in {out}, got {[str(t) for t in existing]}; "
            "pass overwrite=True to replace them"
        )
    ct_cases, mr_cases = generate_cohort(
        preset, n_ct, n_mr, seed, lesion=lesion, executor=executor, progress=progress
    )
    with replace_dir(targets[0]) as ct_dir, replace_dir(targets[1]) as mr_dir:
        write_dataset(ct_cases, ct_dir, progress=progress)
        write_dataset(mr_cases, mr_dir, progress=progress)
    return targets
