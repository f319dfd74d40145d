"""nnU-Net's training augmentations, built from batchgeneratorsv2.

The transforms and their probabilities are those of nnunetv2's
``nnUNetTrainer.get_training_transforms`` (rotation, scaling, optional elastic
deformation, gaussian noise, blur, brightness, contrast, low-resolution
simulation, gamma with and without inversion, mirroring); what is configurable
here is what a CPU run may want to switch off. Each transform works on one
sample: ``image`` ``"c z y x"`` float tensor, ``segmentation`` ``"1 z y x"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flare_uda._validation import class_range
from flare_uda.options import added_option


@dataclass(frozen=True)
class AugmentConfig:
    """Which nnU-Net augmentations run, with nnU-Net's default strengths.

    Parameters
    ----------
    enabled : bool
        False: patches are only cropped (no spatial or intensity changes).
    rotation_deg : float
        Rotation range +-degrees about each axis (nnU-Net 3D: 30), probability 0.2.
    scaling : (float, float)
        Zoom range, probability 0.2 (nnU-Net: 0.7, 1.4).
    p_elastic : float
        Probability of elastic deformation (nnU-Net: 0, i.e. off by default).
    intensity : bool
        Noise, blur, brightness, contrast, low-res simulation and gamma.
    mirror_axes : tuple of int
        Axes (0 z, 1 y, 2 x) mirrored with probability 0.5 each (nnU-Net: all).
    appearance : float
        Probability of a random intensity curve per sample
        (:mod:`flare_uda.segmentation.appearance`; not in nnU-Net: 0 by default).
    label_contrast : float
        Probability of replacing a sample by a random-contrast image drawn from its
        label map (:mod:`flare_uda.segmentation.label_contrast`, SynthSeg-style; not
        in nnU-Net: 0 by default).
    label_contrast_organ_classes : (int, int)
        Smallest and largest number of generation classes each organ is split into in
        those images, by random quantiles of its intensities (``(1, 1)``: every organ
        uniform; ``(1, 3)``: up to two more classes, e.g. an enhanced vessel inside the
        liver drawn with its own random contrast).
    """

    enabled: bool = True
    rotation_deg: float = 30.0
    scaling: tuple[float, float] = (0.7, 1.4)
    p_elastic: float = 0.0
    intensity: bool = True
    mirror_axes: tuple[int, ...] = (0, 1, 2)
    appearance: float = 0.0
    label_contrast: float = added_option(0.0)
    label_contrast_organ_classes: tuple[int, int] = added_option((1, 1))

    def __post_init__(self) -> None:
        for name in ("appearance", "label_contrast"):
            value = getattr(self, name)
            if isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
        if not 0.0 <= self.rotation_deg <= 180.0:
            raise ValueError(f"rotation_deg must be in [0, 180], got {self.rotation_deg}")
        lo, hi = (float(s) for s in self.scaling)
        if not 0.0 < lo <= hi:
            raise ValueError(
                f"scaling must be (low, high) with 0 < low <= high, got {self.scaling}"
            )
        object.__setattr__(self, "scaling", (lo, hi))
        if not 0.0 <= self.p_elastic <= 1.0:
            raise ValueError(f"p_elastic must be in [0, 1], got {self.p_elastic}")
        axes = tuple(int(a) for a in self.mirror_axes)
        if any(a not in (0, 1, 2) for a in axes):
            raise ValueError(f"mirror_axes must be a subset of (0, 1, 2), got {self.mirror_axes}")
        object.__setattr__(self, "mirror_axes", axes)
        organ = class_range("label_contrast_organ_classes", self.label_contrast_organ_classes)
        object.__setattr__(self, "label_contrast_organ_classes", organ)


def initial_patch_size(
    patch_size: tuple[int, int, int], config: AugmentConfig, in_plane: bool = False
) -> tuple:
    """Size (z, y, x) to crop before the spatial transform so rotated corners hold data.

    nnunetv2's ``get_patch_size`` (the same enlargement nnU-Net's loader uses);
    ``in_plane``: only y and x are enlarged (2D augmentation, z kept).
    """
    patch = tuple(int(p) for p in patch_size)
    if not config.enabled or (config.rotation_deg == 0 and config.scaling == (1.0, 1.0)):
        return patch
    from nnunetv2.training.data_augmentation.compute_initial_patch_size import get_patch_size

    rot = np.deg2rad(config.rotation_deg)
    spatial = list(patch[1:]) if in_plane else list(patch)
    size = get_patch_size(spatial, rot, rot, rot, config.scaling)
    size = (patch[0], *size) if in_plane else size
    return tuple(max(int(s), int(p)) for s, p in zip(size, patch, strict=True))


def build_transforms(
    patch_size: tuple[int, int, int], config: AugmentConfig, in_plane: bool = False
):
    """The per-sample transform pipeline (a batchgeneratorsv2 ``BasicTransform``).

    Call it as ``t(image=img, segmentation=seg)`` with tensors ``"c z y x"``
    cropped to :func:`initial_patch_size`; it returns a dict with both cropped
    to ``patch_size``. Padding written by the spatial transform is label 0.

    ``in_plane`` (slice-wise networks): every transform works on the slices as
    2D images (nnU-Net's ``2d`` augmentation; batchgeneratorsv2's
    ``Convert3DTo2DTransform`` folds z into the channels and back), so a
    patch of one slice is augmented like nnU-Net augments a 2D sample.
    Mirror axes 1 and 2 (y, x) are kept, axis 0 (z) is dropped.
    """
    if in_plane:
        from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
        from batchgeneratorsv2.transforms.utils.pseudo2d import (
            Convert2DTo3DTransform,
            Convert3DTo2DTransform,
        )

        axes = tuple(a - 1 for a in config.mirror_axes if a > 0)
        inner = _transforms(tuple(int(p) for p in patch_size[1:]), config, axes)
        return ComposeTransforms([Convert3DTo2DTransform(), inner, Convert2DTo3DTransform()])
    return _transforms(tuple(int(p) for p in patch_size), config, config.mirror_axes)


def _spatial(patch: tuple[int, ...], config: AugmentConfig):
    """nnU-Net's spatial transform: rotation, scaling, elastic deformation; pads with label -1."""
    from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform

    rot = float(np.deg2rad(config.rotation_deg))
    return SpatialTransform(
        patch,
        patch_center_dist_from_border=0,
        random_crop=False,
        p_elastic_deform=config.p_elastic,
        p_rotation=0.2 if rot > 0 else 0.0,
        rotation=(-rot, rot),
        p_scaling=0.2,
        scaling=config.scaling,
        p_synchronize_scaling_across_axes=1,
        bg_style_seg_sampling=False,
        border_mode_seg="constant",
        padding_value_seg=-1,
    )


def _intensity() -> list:
    """nnU-Net's intensity transforms with their probabilities (noise, blur, brightness,
    contrast, low resolution, gamma inverted and not)."""
    from batchgeneratorsv2.transforms.intensity.brightness import (
        MultiplicativeBrightnessTransform,
    )
    from batchgeneratorsv2.transforms.intensity.contrast import BGContrast, ContrastTransform
    from batchgeneratorsv2.transforms.intensity.gamma import GammaTransform
    from batchgeneratorsv2.transforms.intensity.gaussian_noise import GaussianNoiseTransform
    from batchgeneratorsv2.transforms.noise.gaussian_blur import GaussianBlurTransform
    from batchgeneratorsv2.transforms.spatial.low_resolution import (
        SimulateLowResolutionTransform,
    )
    from batchgeneratorsv2.transforms.utils.random import RandomTransform

    per_channel = {"synchronize_channels": False, "p_per_channel": 1}
    gamma = {"gamma": BGContrast((0.7, 1.5)), **per_channel, "p_retain_stats": 1}
    transforms = [
        (GaussianNoiseTransform((0, 0.1), p_per_channel=1, synchronize_channels=True), 0.1),
        (
            GaussianBlurTransform(
                blur_sigma=(0.5, 1.0),
                synchronize_channels=False,
                synchronize_axes=False,
                p_per_channel=0.5,
                benchmark=False,
            ),
            0.2,
        ),
        (MultiplicativeBrightnessTransform(BGContrast((0.75, 1.25)), **per_channel), 0.15),
        (ContrastTransform(BGContrast((0.75, 1.25)), preserve_range=True, **per_channel), 0.15),
        (
            SimulateLowResolutionTransform(
                scale=(0.5, 1),
                synchronize_channels=False,
                synchronize_axes=True,
                ignore_axes=None,
                allowed_channels=None,
                p_per_channel=0.5,
            ),
            0.25,
        ),
        (GammaTransform(p_invert_image=1, **gamma), 0.1),
        (GammaTransform(p_invert_image=0, **gamma), 0.3),
    ]
    return [RandomTransform(t, apply_probability=p) for t, p in transforms]


def _transforms(patch: tuple[int, ...], config: AugmentConfig, mirror_axes: tuple[int, ...]):
    """nnU-Net's transform list for a 2D or 3D ``patch`` (spatial axes of the sample)."""
    from batchgeneratorsv2.transforms.spatial.mirroring import MirrorTransform
    from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
    from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
    from batchgeneratorsv2.transforms.utils.remove_label import RemoveLabelTransform

    if not config.enabled:
        spatial = SpatialTransform(patch, 0, random_crop=False)
        return ComposeTransforms([spatial, RemoveLabelTransform(-1, 0)])
    from batchgeneratorsv2.transforms.utils.random import RandomTransform

    t = [_spatial(patch, config)]
    if config.label_contrast > 0:
        from flare_uda.segmentation.label_contrast import LabelContrastTransform

        contrast = LabelContrastTransform(organ_classes=config.label_contrast_organ_classes)
        t.append(RandomTransform(contrast, apply_probability=config.label_contrast))
    if config.appearance > 0:
        from flare_uda.segmentation.appearance import RandomCurveTransform

        t.append(RandomTransform(RandomCurveTransform(), apply_probability=config.appearance))
    if config.intensity:
        t += _intensity()
    if mirror_axes:
        t.append(MirrorTransform(allowed_axes=mirror_axes))
    t.append(RemoveLabelTransform(-1, 0))
    return ComposeTransforms(t)
