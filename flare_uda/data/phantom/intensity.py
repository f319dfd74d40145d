"""Tissue intensity model of the phantom: CT (HU, three contrast phases), MR T1 and T2.

The renderer paints *tissues* (this module's codes) on a fine grid; an image
is the per-tissue intensity, averaged into the output voxels (partial volume),
plus per-tissue texture and the modality's noise and artefacts
(:mod:`flare_uda.data.phantom.render`).

Values follow textbook abdominal imaging: CT HU per phase (e.g. liver 55 /
70 / 110 HU non-contrast / arterial / portal-venous); MR relative signal, T1
in-phase gradient echo (fat bright, liver brighter than spleen, pancreas
brightest parenchyma, fluid dark) and T2 fast spin echo without fat
suppression (fluid brightest, spleen brighter than liver, flowing blood dark).
T2 is given less parenchymal contrast than T1 and, in the renderer, more noise.
"""

from __future__ import annotations

import numpy as np

TISSUES: tuple[str, ...] = (
    "air",
    "couch",
    "fat",
    "muscle",
    "diaphragm",
    "bone",
    "marrow",
    "disc",
    "csf",
    "lung",
    "heart",
    "liver",
    "spleen",
    "kidney_cortex",
    "kidney_medulla",
    "pancreas",
    "adrenal",
    "artery",
    "vein",
    "portal_vein",
    "bile",
    "gi_wall",
    "fluid",
    "gas",
    "bowel",
    "stool",
    "lesion",
)
"""Tissue names; a tissue's code is its index."""

T = {name: i for i, name in enumerate(TISSUES)}

CT_PHASES = ("noncontrast", "arterial", "venous")
MR_SEQUENCES = ("T1", "T2")

# tissue: (CT non-contrast, CT arterial, CT venous HU, MR T1, MR T2 relative signal)
_TABLE: dict[str, tuple[float, float, float, float, float]] = {
    "air": (-1000, -1000, -1000, 0.00, 0.00),
    "couch": (200, 200, 200, 0.00, 0.00),
    "fat": (-100, -100, -100, 0.95, 0.70),
    "muscle": (50, 55, 60, 0.32, 0.16),
    "diaphragm": (50, 55, 60, 0.32, 0.16),
    "bone": (700, 700, 700, 0.05, 0.05),
    "marrow": (220, 230, 240, 0.62, 0.45),
    "disc": (80, 85, 90, 0.30, 0.40),
    "csf": (8, 8, 8, 0.10, 0.95),
    "lung": (-850, -850, -850, 0.02, 0.02),
    "heart": (45, 200, 130, 0.30, 0.08),
    "liver": (58, 75, 110, 0.56, 0.26),
    "spleen": (48, 120, 115, 0.40, 0.37),
    "kidney_cortex": (32, 190, 165, 0.45, 0.44),
    "kidney_medulla": (30, 85, 150, 0.30, 0.58),
    "pancreas": (42, 115, 95, 0.62, 0.30),
    "adrenal": (28, 60, 70, 0.38, 0.32),
    "artery": (42, 320, 160, 0.25, 0.06),
    "vein": (42, 75, 145, 0.22, 0.14),
    "portal_vein": (42, 90, 170, 0.22, 0.12),
    "bile": (8, 8, 10, 0.12, 0.90),
    "gi_wall": (40, 85, 95, 0.35, 0.28),
    "fluid": (8, 8, 10, 0.10, 0.85),
    "gas": (-950, -950, -950, 0.01, 0.01),
    "bowel": (30, 50, 60, 0.34, 0.50),
    "stool": (-20, -20, -20, 0.40, 0.35),
    "lesion": (30, 45, 60, 0.24, 0.72),
}

# relative texture amplitude per tissue (fraction of the local contrast scale)
_TEXTURE = {
    "air": 0.0,
    "couch": 0.0,
    "liver": 0.5,
    "spleen": 0.6,
    "pancreas": 1.0,
    "bowel": 1.5,
    "stool": 3.0,
    "lung": 2.0,
}


def intensity_table(modality: str, phase_or_sequence: str) -> np.ndarray:
    """Mean intensity per tissue code: HU for CT phases, relative signal for MR.

    Parameters
    ----------
    modality : {"CT", "MR"}
    phase_or_sequence : str
        A CT phase (:data:`CT_PHASES`) or an MR sequence (:data:`MR_SEQUENCES`).

    Returns
    -------
    np.ndarray, shape (n_tissues,), float32
    """
    if modality == "CT":
        if phase_or_sequence not in CT_PHASES:
            raise ValueError(f"CT phase must be one of {CT_PHASES}, got {phase_or_sequence!r}")
        col = CT_PHASES.index(phase_or_sequence)
    elif modality == "MR":
        if phase_or_sequence not in MR_SEQUENCES:
            raise ValueError(
                f"MR sequence must be one of {MR_SEQUENCES}, got {phase_or_sequence!r}"
            )
        col = 3 + MR_SEQUENCES.index(phase_or_sequence)
    else:
        raise ValueError(f"modality must be 'CT' or 'MR', got {modality!r}")
    return np.array([_TABLE[name][col] for name in TISSUES], dtype=np.float32)


def texture_table() -> np.ndarray:
    """Relative texture amplitude per tissue code, shape (n_tissues,)."""
    return np.array([_TEXTURE.get(name, 0.25) for name in TISSUES], dtype=np.float32)


def jitter_table(table: np.ndarray, modality: str, rng: np.random.Generator) -> np.ndarray:
    """Per-subject variation of tissue means (enhancement, relaxation times).

    CT: +-6 HU for soft tissue (air, fat and bone barely move). MR: a relative
    +-5 % per tissue. The order of liver and spleen is kept per sequence.
    """
    out = table.copy()
    if modality == "CT":
        soft = (table > -200) & (table < 400)
        out[soft] += rng.normal(0.0, 6.0, soft.sum()).astype(np.float32)
    else:
        out *= (1.0 + rng.normal(0.0, 0.05, out.shape)).astype(np.float32)
    return out
