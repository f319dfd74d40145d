"""Label-conditioned random contrasts (SynthSeg-style domain randomisation).

Written here because neither batchgeneratorsv2 (nnU-Net's augmentations) nor
MONAI draws a new image from a sample's *label map*: their intensity
transforms change an image's curve as a whole (gamma, contrast), which keeps
the source modality's order of tissues. SynthSeg (Billot et al., 2023) trains
on images in which every label gets a random mean and spread, then blur, a
bias field and a gamma, so that a network cannot lean on any modality's
contrast and has to read shape and context; it then segments scans of any
sequence it never saw. Here, per training sample:

1. generation classes: each organ label is a class; the rest (background,
   unlabelled tissue, padding) is split into 2-6 classes by random quantiles
   of the sample's own intensities (fat, muscle, bone and air of a CT fall
   into different ones, without naming them); with ``organ_classes`` above
   ``(1, 1)`` each organ is split the same way (on the image blurred by one
   voxel), so a vessel or a patch inside an organ gets a contrast of its own;
2. each class gets a mean uniform in [0, 1] and a spread uniform in
   [0, ``max_spread``]; a trace of the original image's within-class
   variation is added (its deviations from the class mean, in units of the
   image's standard deviation, times :data:`TEXTURE_SCALE` and a weight
   uniform in [0, ``max_texture``]: at most 0.05 by default, faint beside
   the classes' spread of means);
3. Gaussian blur (sigma up to ``max_blur`` voxels on every axis longer than
   one voxel), a smooth multiplicative bias field (log-amplitude up to
   ``max_bias``), a random gamma, and a z-score.

The labels are unchanged. Apply it after the spatial transform (whose
padding, label -1, joins the background) and before nnU-Net's intensity
transforms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform

from flare_uda._validation import class_range

TEXTURE_SCALE = 0.1
"""The original within-class deviations (over the image's std) at texture weight 1."""


class LabelContrastTransform(BasicTransform):
    """Replace each image channel by a random-contrast image drawn from the label map.

    Parameters
    ----------
    max_spread : float
        Largest within-class standard deviation (image range is [0, 1]).
    max_texture : float
        Largest weight of the original within-class variation (times
        :data:`TEXTURE_SCALE`, in units of the image's standard deviation).
    max_blur : float
        Largest Gaussian sigma, in voxels.
    max_bias : float
        Largest standard deviation of the log bias field.
    background_classes : (int, int)
        Smallest and largest number of classes the unlabelled voxels are split into.
    organ_classes : (int, int)
        Smallest and largest number of classes each organ is split into (``(1, 1)``:
        one class per organ, uniform inside).
    """

    def __init__(
        self,
        max_spread: float = 0.08,
        max_texture: float = 0.5,
        max_blur: float = 1.0,
        max_bias: float = 0.3,
        background_classes: tuple[int, int] = (2, 6),
        organ_classes: tuple[int, int] = (1, 1),
    ) -> None:
        super().__init__()
        for name, value in (
            ("max_spread", max_spread),
            ("max_texture", max_texture),
            ("max_blur", max_blur),
            ("max_bias", max_bias),
        ):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        self.background_classes = class_range("background_classes", background_classes)
        self.organ_classes = class_range("organ_classes", organ_classes)
        self.max_spread, self.max_texture = float(max_spread), float(max_texture)
        self.max_blur, self.max_bias = float(max_blur), float(max_bias)

    def apply(self, data_dict: dict, **params) -> dict:
        """``image`` ``(c, *spatial)`` replaced channel by channel; ``segmentation``
        ``(s, *spatial)`` read, not changed: channel ``i`` is drawn from label ``i % s``
        (``s`` is 1, or the slices batchgeneratorsv2's 3D-to-2D folding put in channels)."""
        img, seg = data_dict["image"], data_dict["segmentation"]
        out = torch.empty_like(img, dtype=torch.float32)
        for c in range(img.shape[0]):
            out[c] = self.synthesize(img[c].float(), seg[c % seg.shape[0]])
        data_dict["image"] = out.to(img.dtype)
        return data_dict

    def synthesize(self, image: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """One random-contrast image, shape of ``image``, from ``label`` (same shape)."""
        classes = generation_classes(image, label, self.background_classes, self.organ_classes)
        n = int(classes.max()) + 1
        means, spreads = torch.rand(n), torch.rand(n) * self.max_spread
        out = means[classes] + spreads[classes] * torch.randn_like(image)
        texture = float(torch.rand(())) * self.max_texture
        if texture > 0 and image.std() > 0:
            class_mean = _class_means(image, classes, n)[classes]
            out = out + texture * TEXTURE_SCALE * (image - class_mean) / image.std()
        out = _blur(out, float(torch.rand(())) * self.max_blur)
        out = out * torch.exp(_bias_field(out.shape, float(torch.rand(())) * self.max_bias))
        lo, hi = out.min(), out.max()
        if hi > lo:
            gamma = float(torch.exp(torch.randn(()) * 0.25))
            out = ((out - lo) / (hi - lo)).clamp_min(0) ** gamma
        std = out.std()
        return (out - out.mean()) / std if std > 0 else out - out.mean()


def generation_classes(
    image: torch.Tensor,
    label: torch.Tensor,
    background_classes: tuple[int, int],
    organ_classes: tuple[int, int] = (1, 1),
) -> torch.Tensor:
    """Class of each voxel: organ ``k`` -> ``k``; unlabelled voxels (label <= 0) -> one of
    ``n_org + 1 .. n_org + m`` by ``m - 1`` random quantiles of their intensities, ``m``
    drawn from ``background_classes``. Each organ present is then split the same way into
    ``m_k`` classes, ``m_k`` drawn from ``organ_classes``, by quantiles of the image
    blurred with a 1-voxel Gaussian (so that the cuts follow structures such as an
    enhanced vessel inside the liver, not voxel noise): its darkest part keeps ``k``, the
    parts above each cut get new numbers after the background's. int64, shape of
    ``image``."""
    label = label.long()
    n_org = int(label.max().clamp_min(0))
    classes = label.clamp_min(0).clone()
    background = label <= 0
    if background.any():
        bins = _quantile_bins(image[background], _draw(background_classes))
        classes[background] = n_org + 1 + bins
    if organ_classes[1] > 1 and n_org > 0:
        smooth = _blur(image.float(), 1.0)
        next_class = int(classes.max()) + 1
        for k in range(1, n_org + 1):
            m = _draw(organ_classes)
            inside = label == k
            if m < 2 or not inside.any():
                continue
            bins = _quantile_bins(smooth[inside], m)
            classes[inside] = torch.where(bins == 0, k, next_class + bins - 1)
            next_class += m - 1
    return classes


def _draw(bounds: tuple[int, int]) -> int:
    """A number of classes uniform in ``bounds`` (inclusive)."""
    lo, hi = bounds
    return int(torch.randint(lo, hi + 1, ()))


def _quantile_bins(values: torch.Tensor, m: int) -> torch.Tensor:
    """Bin ``0 .. m - 1`` of each of ``values`` ``(n,)``, cut at ``m - 1`` random quantiles."""
    if m < 2:
        return torch.zeros_like(values, dtype=torch.long)
    cuts = torch.quantile(_subsample(values.float()), torch.sort(torch.rand(m - 1)).values)
    return torch.bucketize(values, cuts)


def _subsample(values: torch.Tensor, limit: int = 100_000) -> torch.Tensor:
    """At most ``limit`` of ``values`` (``torch.quantile`` refuses very large inputs)."""
    if values.numel() <= limit:
        return values
    return values[torch.randint(values.numel(), (limit,))]


def _class_means(image: torch.Tensor, classes: torch.Tensor, n: int) -> torch.Tensor:
    """``(n,)`` mean of ``image`` over each class (0 where a class is empty)."""
    flat = classes.reshape(-1)
    sums = torch.zeros(n).index_add_(0, flat, image.reshape(-1))
    counts = torch.zeros(n).index_add_(0, flat, torch.ones_like(image.reshape(-1)))
    return sums / counts.clamp_min(1)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``x`` along each axis longer than one voxel.

    Not batchgeneratorsv2's ``blur_dimension``: it pads by reflection, which fails on an
    axis shorter than the kernel's radius (a thin 3D patch); edge replication does not.
    """
    if sigma < 0.1:
        return x
    radius = max(1, int(round(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    for axis in range(x.ndim):
        if x.shape[axis] == 1:
            continue
        moved = x.movedim(axis, -1)
        shape = moved.shape
        line = moved.reshape(-1, 1, shape[-1])
        line = F.conv1d(F.pad(line, (radius, radius), mode="replicate"), kernel.view(1, 1, -1))
        x = line.reshape(shape).movedim(-1, axis)
    return x


def _bias_field(shape: tuple[int, ...], amplitude: float) -> torch.Tensor:
    """A smooth random log-field of ``shape``: a 4-point-per-axis normal grid, upsampled."""
    if amplitude <= 0:
        return torch.zeros(shape)
    coarse = [4 if s > 1 else 1 for s in shape]
    grid = torch.randn(1, 1, *coarse) * amplitude
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(shape)]
    return F.interpolate(grid, size=tuple(shape), mode=mode, align_corners=True)[0, 0]
