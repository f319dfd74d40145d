"""Rasterise structures on a fine grid, warp them, and average into output voxels.

The output grid of ``shape`` voxels (z, y, x) is super-sampled ``factor`` times
per axis. Each fine voxel is mapped into the canonical body frame through the
subject's global scale and a smooth random elastic displacement, and every
structure is evaluated there (only inside its bounding box). Image values are
the mean of the fine voxels' tissue intensities (partial volume); the label of
an output voxel is the most frequent label among its fine voxels (ties go to
the smaller label), so image and label come from one and the same fine map.
Work proceeds in slabs of output slices to bound memory for the paper preset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from flare_uda.data.labels import NUM_ORGANS
from flare_uda.data.phantom.shapes import Structure


@dataclass(frozen=True, eq=False)
class Warp:
    """Global scale and a smooth displacement, body frame (mm) -> canonical frame.

    The displacement is a sum of separable Gaussian bumps on a regular lattice
    (spacing ``step`` mm, width ``sigma`` mm) with random coefficients, so it
    can be evaluated on a tensor grid with three small matrix products instead
    of an interpolation over every voxel.
    """

    scale: tuple[float, float, float]
    coef: np.ndarray  # (3, n, n, n) displacement coefficients, mm
    step: float = 50.0
    sigma: float = 45.0

    @classmethod
    def random(cls, rng: np.random.Generator, amplitude: float = 4.0) -> Warp:
        """A random warp whose displacement has about ``amplitude`` mm standard deviation."""
        s_xy = rng.uniform(0.92, 1.08)
        scale = (rng.uniform(0.92, 1.08), s_xy * rng.uniform(0.97, 1.03), s_xy)
        n = 13
        norm = (np.sqrt(np.pi) * 45.0 / 50.0) ** 1.5
        return cls(tuple(scale), rng.normal(0.0, amplitude / norm, (3, n, n, n)))

    def canonical(
        self, z: np.ndarray, y: np.ndarray, x: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Canonical coordinates of the tensor grid ``z x y x x`` (1D axes, mm)."""
        out = []
        for c, (axis, s) in enumerate(zip((z, y, x), self.scale, strict=True)):
            d = separable_field(self.coef[c], (z, y, x), self.step, self.sigma)
            shape = [1, 1, 1]
            shape[c] = -1
            d += axis.reshape(shape).astype(np.float32)
            out.append(d / np.float32(s))
        return out[0], out[1], out[2]


def separable_field(
    coef: np.ndarray, axes: Sequence[np.ndarray], step: float, sigma: float
) -> np.ndarray:
    """Sum of Gaussian bumps on a centred lattice, evaluated on the tensor grid of ``axes``.

    Parameters
    ----------
    coef : np.ndarray, shape (n, n, n)
        Bump heights on a lattice of spacing ``step`` mm centred at 0.
    axes : 3 arrays
        1D coordinates (mm) of the output grid, (z, y, x).

    Returns
    -------
    np.ndarray, shape "z y x", float32
    """
    bases = []
    for a, n in zip(axes, coef.shape, strict=True):
        centres = (np.arange(n) - (n - 1) / 2) * step
        b = np.exp(-0.5 * ((np.asarray(a)[:, None] - centres[None, :]) / sigma) ** 2)
        bases.append(b.astype(np.float32))
    (n0, n1, n2), (nz, ny, nx) = coef.shape, (len(b) for b in bases)
    d = (bases[0] @ coef.reshape(n0, n1 * n2).astype(np.float32)).reshape(nz, n1, n2)
    d = (d.transpose(0, 2, 1).reshape(nz * n2, n1) @ bases[1].T).reshape(nz, n2, ny)
    d = d.transpose(0, 2, 1).reshape(nz * ny, n2) @ bases[2].T
    return d.reshape(nz, ny, nx)


def _lut(values: Sequence[int] | None) -> np.ndarray | None:
    if values is None:
        return None
    lut = np.zeros(256, dtype=bool)
    lut[list(values)] = True
    return lut


class _Canvas:
    """Tissue and label maps of one fine slab, with its canonical coordinates."""

    def __init__(self, z: np.ndarray, y: np.ndarray, x: np.ndarray, warp: Warp) -> None:
        self.z, self.y, self.x = warp.canonical(z, y, x)
        shape = self.z.shape
        self.tissue = np.zeros(shape, dtype=np.uint8)
        self.label = np.zeros(shape, dtype=np.uint8)
        # per output axis: the canonical range each index slab covers, for bbox culling
        self._ranges = [
            (self.z.min(axis=(1, 2)), self.z.max(axis=(1, 2))),
            (self.y.min(axis=(0, 2)), self.y.max(axis=(0, 2))),
            (self.x.min(axis=(0, 1)), self.x.max(axis=(0, 1))),
        ]

    def block(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, ...] | None:
        out = []
        for (amin, amax), a, b in zip(self._ranges, lo, hi, strict=True):
            idx = np.flatnonzero((amax >= a) & (amin <= b))
            if idx.size == 0:
                return None
            out.append(slice(int(idx[0]), int(idx[-1]) + 1))
        return tuple(out)

    def paint(self, structure: Structure) -> None:
        fields = []
        for piece in structure.pieces:
            sl = self.block(*piece.bbox())
            if sl is None:
                continue
            z, y, x = self.z[sl], self.y[sl], self.x[sl]
            f = piece.field(z, y, x)
            for cut in structure.cuts:
                lo, hi = cut.bbox()
                if self.block(lo, hi) is not None:
                    f = np.where(cut.field(z, y, x) < 0, np.float32(1e4), f)
            fields.append((sl, f))
        for layer in structure.layers:
            labels, tissues = _lut(layer.only_labels), _lut(layer.only_tissues)
            for sl, f in fields:
                m = f < layer.depth
                if labels is not None:
                    m &= labels[self.label[sl]]
                if tissues is not None:
                    m &= tissues[self.tissue[sl]]
                if layer.below_y is not None:
                    m &= self.y[sl] < layer.below_y
                self.tissue[sl][m] = layer.tissue
                if layer.label is not None:
                    self.label[sl][m] = layer.label


def _block_mean(a: np.ndarray, f: tuple[int, int, int]) -> np.ndarray:
    nz, ny, nx = (s // k for s, k in zip(a.shape, f, strict=True))
    return a.reshape(nz, f[0], ny, f[1], nx, f[2]).mean(axis=(1, 3, 5), dtype=np.float32)


def _block_mode(labels: np.ndarray, f: tuple[int, int, int]) -> np.ndarray:
    nz, ny, nx = (s // k for s, k in zip(labels.shape, f, strict=True))
    n_cls = NUM_ORGANS + 1
    blocks = labels.reshape(nz, f[0], ny, f[1], nx, f[2]).transpose(0, 2, 4, 1, 3, 5)
    blocks = blocks.reshape(nz * ny * nx, -1)
    out = blocks[:, 0].copy()
    mixed = np.flatnonzero(blocks.min(1) != blocks.max(1))  # most blocks hold one label
    if mixed.size:
        sub = blocks[mixed].astype(np.int64) + n_cls * np.arange(mixed.size)[:, None]
        counts = np.bincount(sub.ravel(), minlength=mixed.size * n_cls)
        out[mixed] = counts.reshape(mixed.size, n_cls).argmax(-1)
    return out.reshape(nz, ny, nx).astype(np.uint8)


def keep_largest_components(labels: np.ndarray) -> np.ndarray:
    """Set to background the stray pieces of each organ: keep its largest connected piece
    and any piece that touches the border of the volume.

    Cut-outs and the crescent of the spleen can leave slivers of a few voxels
    after downsampling; a real annotation has one piece per organ, except where
    the field of view cuts an organ (a duodenal C-loop whose bottom lies below
    the last slice shows as two pieces), which is why border pieces stay.

    Parameters
    ----------
    labels : np.ndarray, shape "z y x", integer
        Label map (FLARE order).

    Returns
    -------
    np.ndarray, same shape and dtype
    """
    out = labels.copy()
    full = np.ones((3, 3, 3), dtype=bool)
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        comp, n = ndimage.label(labels[box] == label, structure=full)
        if n < 2:
            continue
        keep = np.zeros(n + 1, dtype=bool)
        sizes = np.bincount(comp.ravel())
        sizes[0] = 0
        keep[sizes.argmax()] = True
        for axis, sl in enumerate(box):
            if sl.start == 0:
                keep[np.unique(comp.take(0, axis=axis))] = True
            if sl.stop == labels.shape[axis]:
                keep[np.unique(comp.take(-1, axis=axis))] = True
        keep[0] = False
        out[box][(comp > 0) & ~keep[comp]] = 0
    return out


def rasterize(
    structures: Sequence[Structure],
    warp: Warp,
    start: tuple[float, float, float],
    spacing: tuple[float, float, float],
    shape: tuple[int, int, int],
    factor: tuple[int, int, int],
    tables: np.ndarray,
    slab_voxels: int = 8_000_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Partial-volume images and exact labels of ``structures`` on an output grid.

    Parameters
    ----------
    structures : sequence of Structure
        In painting order.
    warp : Warp
        Subject scale and elastic displacement.
    start : tuple of 3 float
        Body-frame position (mm, z y x) of output voxel (0, 0, 0)'s centre.
    spacing, shape : tuple of 3
        Output grid, (z, y, x).
    factor : tuple of 3 int
        Super-sampling per axis.
    tables : np.ndarray, shape (c, n_tissues)
        Per-tissue values to average (e.g. intensity and texture amplitude).

    Returns
    -------
    values : np.ndarray, shape "c z y x", float32
        Block means of ``tables[:, tissue]``.
    labels : np.ndarray, shape "z y x", uint8
        Block plurality of the fine labels, largest connected piece per organ.
    """
    axes = []
    for s0, sp, n, k in zip(start, spacing, shape, factor, strict=True):
        sub = (np.arange(n * k) + 0.5) / k - 0.5
        axes.append(s0 + sp * sub)
    tables = np.asarray(tables, dtype=np.float32)
    values = np.zeros((len(tables), *shape), dtype=np.float32)
    labels = np.zeros(shape, dtype=np.uint8)
    per_slice = shape[1] * shape[2] * int(np.prod(factor))
    step = max(1, slab_voxels // per_slice)
    for z0 in range(0, shape[0], step):
        z1 = min(shape[0], z0 + step)
        canvas = _Canvas(axes[0][z0 * factor[0] : z1 * factor[0]], axes[1], axes[2], warp)
        for s in structures:
            canvas.paint(s)
        for c, table in enumerate(tables):
            values[c, z0:z1] = _block_mean(table[canvas.tissue], factor)
        labels[z0:z1] = _block_mode(canvas.label, factor)
    return values, keep_largest_components(labels)
