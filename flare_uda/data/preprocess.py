"""nnU-Net default preprocessing: fingerprint, normalisation, resampling, and back.

The pure functions live in :mod:`~flare_uda.data.fingerprint`,
:mod:`~flare_uda.data.normalization` and :mod:`~flare_uda.data.resampling` and
are re-exported here; :class:`Preprocessor` is the thin configured class that
chains them in nnU-Net's order (normalise on the original grid, then resample).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flare_uda._validation import as_triplet, require_choice
from flare_uda.data.fingerprint import compute_fingerprint, intensity_statistics
from flare_uda.data.normalization import SCHEMES, normalize
from flare_uda.data.orientation import to_canonical
from flare_uda.data.resampling import (
    resample_to_reference,
    resample_volume,
    separate_z_axis,
    target_shape,
)
from flare_uda.executor import Executor
from flare_uda.volume import Case, Volume

__all__ = [
    "PAPER_SPACING",
    "PreprocessConfig",
    "Preprocessor",
    "compute_fingerprint",
    "intensity_statistics",
    "normalize",
    "resample_to_reference",
    "resample_volume",
    "separate_z_axis",
    "target_shape",
]

PAPER_SPACING = (2.5, 0.81, 0.81)
"""The paper's target spacing, (z, y, x) mm."""


@dataclass(frozen=True)
class PreprocessConfig:
    """Configuration of :class:`Preprocessor`.

    Parameters
    ----------
    target_spacing : tuple of 3 float, or None
        Spacing (z, y, x) mm to resample to; ``None`` keeps each case's grid.
    scheme : {"auto", "ct", "zscore", "none"}
        ``"auto"``: ``"ct"`` for CT, ``"zscore"`` for MR (nnU-Net's choice
        from the channel name).
    clip_percentiles : (float, float) or None
        Foreground percentile clip before the z-score (the paper uses
        ``(0.5, 99.5)`` for MRI); applies to the z-score scheme only.
    num_samples, seed : int
        Foreground voxels sampled per case for the fingerprint, and its seed.
    canonical : bool
        Permute and flip every volume's axes into the canonical layout
        (:mod:`flare_uda.data.orientation`) before resampling, so scans stored in
        different layouts reach a network alike (the trainer sets it; off by default).
    """

    target_spacing: tuple[float, float, float] | None = PAPER_SPACING
    scheme: str = "auto"
    clip_percentiles: tuple[float, float] | None = None
    num_samples: int = 10000
    seed: int = 1234
    canonical: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.canonical, bool):
            raise TypeError(f"canonical must be true or false, got {self.canonical!r}")
        if self.target_spacing is not None:
            spacing = as_triplet(self.target_spacing, "target_spacing", positive=True)
            object.__setattr__(self, "target_spacing", spacing)
        require_choice(self.scheme, ("auto", *SCHEMES), "scheme")
        if self.clip_percentiles is not None:
            if self.scheme in ("ct", "none"):
                raise ValueError(
                    f"clip_percentiles applies to the z-score scheme, got scheme {self.scheme!r}"
                )
            lo, hi = (float(p) for p in self.clip_percentiles)
            if not 0.0 <= lo < hi <= 100.0:
                raise ValueError(
                    f"clip_percentiles must satisfy 0 <= low < high <= 100, got {(lo, hi)}"
                )
            object.__setattr__(self, "clip_percentiles", (lo, hi))
        if int(self.num_samples) < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.num_samples}")


class Preprocessor:
    """Normalise and resample cases with nnU-Net's defaults.

    Parameters
    ----------
    config : PreprocessConfig, optional

    Attributes
    ----------
    fingerprint_ : dict
        :func:`compute_fingerprint` of the cases given to :meth:`fit`.
    stats_ : dict or None
        Its foreground intensity properties (used by the ``"ct"`` scheme).
    modality_ : str or None
        The fitted dataset's modality when it has exactly one.

    Examples
    --------
    >>> from flare_uda.data.phantom import generate_cohort
    >>> ct_cases, _ = generate_cohort("tiny", n_ct=1, n_mr=0)
    >>> pre = Preprocessor(PreprocessConfig(target_spacing=(10.0, 7.0, 7.0)))
    >>> from flare_uda.executor import SerialExecutor
    >>> pre = pre.fit(ct_cases, executor=SerialExecutor(progress=False))
    >>> image = pre(ct_cases[0])                 # normalised, resampled Volume
    >>> ct_cases[0].image.shape, image.shape     # (z, y, x): y and x at 7 mm
    ((16, 48, 48), (16, 44, 44))
    >>> case = pre.preprocess_case(ct_cases[0])  # image and label both
    >>> case.label.shape == image.shape
    True
    """

    def __init__(self, config: PreprocessConfig | None = None) -> None:
        if config is not None and not isinstance(config, PreprocessConfig):
            raise TypeError(f"config must be a PreprocessConfig, got {type(config).__name__}")
        self.config = config if config is not None else PreprocessConfig()

    def fit(self, cases: Sequence[Case], executor: str | Executor | None = None) -> Preprocessor:
        """Compute the dataset fingerprint (foreground intensity statistics).

        ``executor`` runs the per-case sampling (see :func:`compute_fingerprint`).
        """
        self.fingerprint_ = compute_fingerprint(
            cases, num_samples=self.config.num_samples, seed=self.config.seed, executor=executor
        )
        self.stats_ = self.fingerprint_["foreground_intensity_properties"]
        modalities = self.fingerprint_["modalities"]
        self.modality_ = modalities[0] if len(modalities) == 1 else None
        if self.stats_ is None and "ct" in (self.scheme_for(m) for m in modalities):
            raise ValueError(
                "scheme 'ct' needs labelled cases to measure foreground intensities, got none "
                "with a label"
            )
        return self

    def scheme_for(self, modality: str | None) -> str:
        """The normalisation scheme used for ``modality`` ("CT" or "MR")."""
        if self.config.scheme != "auto":
            return self.config.scheme
        modality = modality or getattr(self, "modality_", None)
        if modality is None:
            raise ValueError(
                "scheme 'auto' needs a modality: pass a Case, or fit on one modality first"
            )
        return "ct" if modality == "CT" else "zscore"

    def normalize(self, image: Volume, modality: str | None = None) -> Volume:
        """Normalise ``image`` (same grid, float32)."""
        scheme = self.scheme_for(modality)
        stats = None
        if scheme == "ct":
            stats = getattr(self, "stats_", None)
            if stats is None:
                raise ValueError("scheme 'ct' needs dataset statistics: call fit(cases) first")
        clip = self.config.clip_percentiles if scheme == "zscore" else None
        return image.with_array(normalize(image.array, scheme, stats, clip_percentiles=clip))

    def resample(self, volume: Volume, is_label: bool = False) -> Volume:
        """Resample to the target spacing (no-op when it is ``None``), in the canonical
        layout first when ``config.canonical``."""
        if self.config.canonical:
            volume = to_canonical(volume)
        if self.config.target_spacing is None:
            return volume
        return resample_volume(volume, self.config.target_spacing, is_label=is_label)

    def __call__(self, case_or_volume: Case | Volume) -> Volume:
        """The preprocessed image (normalised, then resampled) of a Case or Volume."""
        if isinstance(case_or_volume, Case):
            image, modality = case_or_volume.image, case_or_volume.modality
        elif isinstance(case_or_volume, Volume):
            image, modality = case_or_volume, None
        else:
            raise TypeError(f"expected a Case or a Volume, got {type(case_or_volume).__name__}")
        return self.resample(self.normalize(image, modality))

    def preprocess_case(self, case: Case) -> Case:
        """A copy of ``case`` with its image preprocessed and its label resampled alike."""
        if not isinstance(case, Case):
            raise TypeError(f"expected a Case, got {type(case).__name__}")
        image = self(case)
        label = None if case.label is None else self.resample(case.label, is_label=True)
        if label is not None:  # same shape rule as the image: share its geometry exactly
            label = Volume(label.array, image.spacing, image.origin, image.direction)
        return Case(case.case_id, image, label, case.modality, case.sequence, case.annotated)
