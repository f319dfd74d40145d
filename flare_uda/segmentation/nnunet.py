"""Interop with nnU-Net v2: export datasets to its raw layout, wrap its trained models.

* :func:`export_nnunet_raw` writes ``Dataset{ID}_{name}`` (imagesTr/_0000,
  labelsTr, dataset.json) with :func:`flare_uda.data.datasets.write_dataset`,
  ready for ``nnUNetv2_plan_and_preprocess`` / ``nnUNetv2_train`` on a GPU machine.
* :class:`NnUNetSegmenter` wraps a trained nnU-Net model folder (through
  ``nnUNetPredictor.initialize_from_trained_model_folder``, which rebuilds the
  network from the plans and loads the checkpoint) as a :class:`Segmenter`, so
  that flare_uda's inferers (and its fast path) run nnU-Net's networks.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from flare_uda.inference.segmenter import SEGMENTERS, SegmentationPlan, Segmenter
from flare_uda.volume import Case

NORMALIZATION_NAMES = {
    "CTNormalization": "ct",
    "ZScoreNormalization": "zscore",
    "NoNormalization": "none",
}
"""nnU-Net normalisation scheme -> flare_uda normalisation name."""


def nnunet_dataset_name(dataset_id: int, name: str) -> str:
    """``Dataset{ID:03d}_{name}``, nnU-Net's folder name; validates both parts."""
    if isinstance(dataset_id, bool) or not isinstance(dataset_id, int):
        raise TypeError(f"dataset_id must be an int, got {type(dataset_id).__name__}")
    if not 1 <= dataset_id <= 999:
        raise ValueError(f"dataset_id must be in 1..999 (nnU-Net), got {dataset_id}")
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", str(name)):
        raise ValueError(f"name must hold letters, digits, '_' or '-', got {name!r}")
    return f"Dataset{dataset_id:03d}_{name}"


def export_nnunet_raw(
    cases: Sequence[Case],
    out_dir: str | os.PathLike,
    dataset_id: int,
    name: str,
    progress: bool = True,
) -> Path:
    """Write labelled ``cases`` as ``out_dir/Dataset{ID}_{name}`` in nnU-Net raw layout.

    Parameters
    ----------
    cases : sequence of Case
        One modality; every case must carry a label (nnU-Net trains on all).
    out_dir : path-like
        The ``nnUNet_raw`` folder.
    dataset_id : int
        1..999.
    name : str

    Returns
    -------
    Path
        The dataset folder.
    """
    unlabelled = [c.case_id for c in cases if c.label is None]
    if unlabelled:
        raise ValueError(f"nnU-Net training needs labels, got cases without: {unlabelled[:5]}")
    from flare_uda.data.datasets import write_dataset

    folder = Path(out_dir) / nnunet_dataset_name(dataset_id, name)
    return write_dataset(cases, folder, split="train", progress=progress)


def plan_from_nnunet(plans_manager, configuration_manager, dataset_json: dict) -> SegmentationPlan:
    """A :class:`SegmentationPlan` (axes z, y, x) from nnU-Net's plans and configuration."""
    label_manager = plans_manager.get_label_manager(dataset_json)
    if label_manager.has_regions:
        raise ValueError("expected an nnU-Net model trained on labels, got a region-based one")
    schemes = list(configuration_manager.normalization_schemes)
    if len(schemes) != 1:
        raise ValueError(f"expected a single-channel nnU-Net model, got {len(schemes)} channels")
    if schemes[0] not in NORMALIZATION_NAMES:
        raise ValueError(
            f"expected normalisation one of {sorted(NORMALIZATION_NAMES)}, got {schemes[0]!r}"
        )
    if configuration_manager.use_mask_for_norm[0]:
        warnings.warn(
            "this nnU-Net model normalises inside the non-zero mask; flare_uda normalises over "
            "the whole image, so intensities (and labels) may differ slightly",
            stacklevel=2,
        )
    back = list(plans_manager.transpose_backward)
    stats = {}
    if schemes[0] == "CTNormalization":
        props = plans_manager.foreground_intensity_properties_per_channel["0"]
        stats = {k: float(props[k]) for k in ("percentile_00_5", "percentile_99_5", "mean", "std")}
    return SegmentationPlan(
        patch_size=tuple(configuration_manager.patch_size[i] for i in back),
        spacing=tuple(configuration_manager.spacing[i] for i in back),
        num_classes=label_manager.num_segmentation_heads,
        in_channels=1,
        normalization=NORMALIZATION_NAMES[schemes[0]],
        intensity_stats=stats,
        head="softmax",
    )


@dataclass(frozen=True)
class NnUNetOptions:
    """Options of :class:`NnUNetSegmenter`.

    Parameters
    ----------
    model_folder : str
        The training output folder ``.../{Trainer}__{Plans}__{config}`` (plans.json,
        dataset.json, fold_*).
    fold : int or "all"
    checkpoint : str
        File inside ``fold_{fold}``.
    """

    model_folder: str
    fold: int | str = 0
    checkpoint: str = "checkpoint_final.pth"

    def __post_init__(self) -> None:
        if not (isinstance(self.fold, int) and self.fold >= 0) and self.fold != "all":
            raise ValueError(f"fold must be an int >= 0 or 'all', got {self.fold!r}")


@SEGMENTERS.register("nnunet")
class NnUNetSegmenter(Segmenter):
    """A trained nnU-Net v2 model as a :class:`Segmenter`.

    Options: :class:`NnUNetOptions`; runtime keyword ``device``. The model is
    read on first use (or by :meth:`from_model_folder`, at once). The network
    sees nnU-Net's axis order (``transpose_forward``); :meth:`predict_logits`
    takes and returns flare_uda's (z, y, x) and transposes in between.

    Attributes
    ----------
    predictor : nnunetv2.inference.predict_from_raw_data.nnUNetPredictor
        Initialised predictor (network, plans, dataset.json).
    plan : SegmentationPlan
    """

    config_class = NnUNetOptions

    def __init__(self, config: Any = None, *, device: str | torch.device = "cpu", **options):
        super().__init__(config, **options)
        self._device = torch.device(device)
        self._loaded: tuple | None = None

    @property
    def plan(self) -> SegmentationPlan:
        return self._load()[1]

    @property
    def predictor(self):
        return self._load()[0]

    @property
    def network(self) -> torch.nn.Module:
        return self._load()[2]

    @classmethod
    def from_model_folder(
        cls,
        folder: str | os.PathLike,
        fold: int | str = 0,
        checkpoint: str = "checkpoint_final.pth",
        device: str | torch.device = "cpu",
    ) -> NnUNetSegmenter:
        """Load ``folder`` now (see :class:`NnUNetOptions`)."""
        segmenter = cls(model_folder=str(folder), fold=fold, checkpoint=checkpoint, device=device)
        segmenter._load()
        return segmenter

    def _load(self) -> tuple:
        """(predictor, plan, network), read once from the model folder."""
        if self._loaded is not None:
            return self._loaded
        folder, fold, checkpoint = (
            Path(self.config.model_folder),
            self.config.fold,
            self.config.checkpoint,
        )
        for required in ("plans.json", "dataset.json"):
            if not (folder / required).is_file():
                raise FileNotFoundError(
                    f"expected an nnU-Net model folder with {required}, got {folder}"
                )
        ckpt = folder / f"fold_{fold}" / checkpoint
        if not ckpt.is_file():
            raise FileNotFoundError(f"expected checkpoint {ckpt}, found none")
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

        predictor = nnUNetPredictor(
            tile_step_size=0.5,
            use_gaussian=True,
            use_mirroring=False,
            perform_everything_on_device=self._device.type == "cuda",
            device=self._device,
            verbose=False,
            allow_tqdm=False,
        )
        try:
            predictor.initialize_from_trained_model_folder(str(folder), (fold,), checkpoint)
            plan = plan_from_nnunet(
                predictor.plans_manager, predictor.configuration_manager, predictor.dataset_json
            )
        except Exception as err:  # json, pickle, zip, KeyError of a damaged or foreign folder
            reason = " ".join(f"{type(err).__name__}: {err}".split())[:300]
            raise ValueError(
                f"could not load the nnU-Net model folder {folder} (fold {fold}, {checkpoint}): "
                f"expected plans.json, dataset.json and a checkpoint written by nnU-Net v2, "
                f"got '{reason}'"
            ) from err
        forward = list(predictor.plans_manager.transpose_forward)
        self._forward = [0, 1] + [2 + i for i in forward]
        self._backward = [0, 1] + [2 + i for i in predictor.plans_manager.transpose_backward]
        self._identity = forward == [0, 1, 2]
        self._loaded = (predictor, plan, predictor.network.to(predictor.device).eval())
        return self._loaded

    @property
    def device(self) -> torch.device:
        return self._device

    @torch.inference_mode()
    def predict_logits(self, batch: torch.Tensor) -> torch.Tensor:
        self._load()
        self.check_batch(batch)
        if self._identity:
            return self.network(batch)
        out = self.network(batch.permute(*self._forward).contiguous())
        return out.permute(*self._backward).contiguous()


def is_nnunet_model_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` looks like an nnU-Net training output folder."""
    folder = Path(folder)
    return (
        (folder / "plans.json").is_file()
        and (folder / "dataset.json").is_file()
        and any(p.is_dir() for p in folder.glob("fold_*"))
    )
