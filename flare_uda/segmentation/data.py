"""Training data in memory: cases preprocessed once, batches cut and augmented.

Every case is normalised and resampled to the training spacing once
(:class:`flare_uda.data.preprocess.Preprocessor`, nnU-Net's order: normalise on
the original grid, then resample) and kept in memory with its per-class voxel
locations. :func:`make_batch` then draws a batch reproducibly from
``(seed, iteration)`` alone, so a resumed run sees the same batches as an
uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from flare_uda.inference.neighbour_slices import stack_neighbour_slices
from flare_uda.segmentation.sampling import (
    choose_center,
    class_locations,
    crop_padded,
    forced_foreground,
)
from flare_uda.volume import Case


@dataclass(frozen=True, eq=False)
class PreparedCase:
    """A preprocessed training case.

    Attributes
    ----------
    image : np.ndarray, "c z y x" float32
    label : np.ndarray, "z y x" int16
    annotated : tuple of int
    locations : dict
        class -> voxel indices ``"n 3"``.
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray
    annotated: tuple[int, ...]
    locations: dict


def check_training_cases(cases: Sequence[Case], num_classes: int, what: str = "cases") -> None:
    """Raise unless every case is a labelled :class:`Case` with labels < ``num_classes``."""
    if isinstance(cases, Case) or not isinstance(cases, Sequence):
        raise TypeError(f"{what} must be a list of Case, got {type(cases).__name__}")
    if len(cases) == 0:
        raise ValueError(f"{what} must hold at least one labelled Case, got an empty list")
    for c in cases:
        if not isinstance(c, Case):
            raise TypeError(f"{what} must be a list of Case, got an item {type(c).__name__}")
        if c.label is None:
            raise ValueError(f"training case {c.case_id!r} has no label; expected a labelled Case")
        top = int(c.label.array.max()) if c.label.array.size else 0
        if top >= num_classes or int(c.label.array.min()) < 0:
            raise ValueError(
                f"label of case {c.case_id!r} must hold classes 0..{num_classes - 1}, got "
                f"range {int(c.label.array.min())}..{top}"
            )


def fit_preprocessor(
    cases: Sequence[Case], spacing: tuple, normalization: str, canonical: bool = True
):
    """A :class:`Preprocessor` fitted on ``cases`` (its CT statistics come from them);
    volumes in the canonical layout when ``canonical`` (as the plan it goes with)."""
    from flare_uda.data.preprocess import PreprocessConfig, Preprocessor

    config = PreprocessConfig(target_spacing=spacing, scheme=normalization, canonical=canonical)
    return Preprocessor(config).fit(cases)


def prepare_cases(
    cases: Sequence[Case],
    preprocessor,
    seed: int = 0,
    progress: bool = True,
    neighbour_slices: int = 0,
) -> list[PreparedCase]:
    """Preprocess each case once (normalise, resample image and label); with
    ``neighbour_slices`` = k, each image ``"1 z y x"`` becomes ``"(2k+1) z y x"``
    (:func:`~flare_uda.inference.neighbour_slices.stack_neighbour_slices`)."""
    rng = np.random.default_rng(seed)
    out = []
    for case in tqdm(cases, desc="preprocessing", disable=not progress):
        pre = preprocessor.preprocess_case(case)
        label = pre.label.array.astype(np.int16)
        out.append(
            PreparedCase(
                case_id=case.case_id,
                image=stack_neighbour_slices(
                    pre.image.array.astype(np.float32)[None], neighbour_slices
                ),
                label=label,
                annotated=case.annotated,
                locations=class_locations(label, rng),
            )
        )
    return out


def batch_rng(seed: int, iteration: int, *index: int) -> np.random.Generator:
    """The generator for one iteration; also seeds numpy's and torch's global RNGs.

    batchgeneratorsv2 draws its random parameters from ``np.random`` and
    ``torch``, so those are reseeded per iteration too. ``index`` (a sample of
    the batch, as under torchrun) gives that sample a generator of its own.
    """
    seq = np.random.SeedSequence([int(seed), int(iteration), *map(int, index)])
    state = seq.generate_state(2)
    np.random.seed(int(state[0]))
    torch.manual_seed(int(state[1]))
    return np.random.default_rng(seq)


def make_sample(
    cases: Sequence[PreparedCase],
    index: int,
    rng: np.random.Generator,
    batch_size: int,
    crop_size: tuple[int, int, int],
    transform,
    oversample: float,
    class_weights: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """Sample ``index`` of a batch of ``batch_size``: image ``"c z y x"``, target
    ``"1 z y x"`` and its case's annotated organs (see :func:`make_batch`)."""
    case = cases[int(rng.integers(len(cases)))]
    fg = forced_foreground(index, batch_size, oversample)
    center = choose_center(case.label.shape, case.locations, fg, rng, class_weights)
    img, seg = crop_padded(case.image, case.label, center, crop_size)
    d = transform(image=torch.from_numpy(img), segmentation=torch.from_numpy(seg))
    return d["image"].float(), d["segmentation"].long(), case.annotated


def make_batch(
    cases: Sequence[PreparedCase],
    batch_size: int,
    crop_size: tuple[int, int, int],
    transform,
    oversample: float,
    rng: np.random.Generator,
    class_weights: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, ...]]]:
    """One augmented batch.

    ``class_weights`` (``"k"``) weights the classes that foreground centres
    are drawn from (:func:`~flare_uda.segmentation.sampling.choose_center`).

    Returns
    -------
    image : torch.Tensor, "b c z y x" float32
    target : torch.Tensor, "b 1 z y x" int64
    annotated : list of tuple
        The annotated organs of each sample's case.
    """
    samples = [
        make_sample(cases, i, rng, batch_size, crop_size, transform, oversample, class_weights)
        for i in range(batch_size)
    ]
    images, targets, annotated = zip(*samples, strict=True)
    return torch.stack(images), torch.stack(targets), list(annotated)
