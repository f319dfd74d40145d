"""Geometric primitives of the phantom and the structures built from them.

All coordinates are in the phantom's *canonical body frame*: millimetres,
components ``(Z, Y, X)`` in the LPS convention (X towards the patient's Left,
Y towards Posterior, Z towards Superior), origin at the front of the first
lumbar vertebra's level on the body's mid-line.

Every primitive exposes ``field(z, y, x)``, an approximate signed distance in
mm (negative inside), and ``bbox()``, its axis-aligned bounds, so the renderer
only evaluates a primitive inside its own box. A :class:`Structure` paints
nested layers (e.g. wall and lumen) with thresholds on that field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def rotation(yaw: float = 0.0, tilt_cor: float = 0.0, tilt_sag: float = 0.0) -> np.ndarray:
    """A 3x3 rotation (acting on ``(Z, Y, X)`` vectors) from angles in degrees.

    ``yaw`` turns about Z (in the axial plane, X towards Y), ``tilt_cor`` about
    Y (coronal plane, Z towards X) and ``tilt_sag`` about X (sagittal plane,
    Z towards Y). Columns are the rotated local axes.
    """
    a, b, c = np.deg2rad([yaw, tilt_cor, tilt_sag])
    rz = np.array([[1, 0, 0], [0, np.cos(a), np.sin(a)], [0, -np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rx = np.array([[np.cos(c), np.sin(c), 0], [-np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass(frozen=True, eq=False)
class Ellipsoid:
    """An ellipsoid with centre, semi-axes (mm) and rotation, all ``(Z, Y, X)``.

    ``field`` is ``(q - 1) * min(semi)`` with ``q`` the normalised radius: exact
    distance for a sphere, a smooth approximation otherwise.
    """

    center: tuple[float, float, float]
    semi: tuple[float, float, float]
    rot: np.ndarray = field(default_factory=lambda: np.eye(3))

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        half = np.sqrt(((np.asarray(self.rot) * np.asarray(self.semi)[None, :]) ** 2).sum(1))
        c = np.asarray(self.center, dtype=float)
        return c - half, c + half

    def field(self, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        r = np.asarray(self.rot, dtype=np.float32)
        dz, dy, dx = z - self.center[0], y - self.center[1], x - self.center[2]
        q = np.zeros(np.broadcast_shapes(z.shape, y.shape, x.shape), dtype=np.float32)
        for j in range(3):
            u = dz * r[0, j] + dy * r[1, j] + dx * r[2, j]
            q += (u / self.semi[j]) ** 2
        return (np.sqrt(q) - 1.0) * min(self.semi)


@dataclass(frozen=True, eq=False)
class Capsule:
    """A cone-capsule: the segment ``a -> b`` swept by a radius varying ``ra -> rb``."""

    a: np.ndarray
    b: np.ndarray
    ra: float
    rb: float

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        r = max(self.ra, self.rb)
        return np.minimum(self.a, self.b) - r, np.maximum(self.a, self.b) + r

    def field(self, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        d = np.asarray(self.b, dtype=np.float32) - np.asarray(self.a, dtype=np.float32)
        pz, py, px = z - self.a[0], y - self.a[1], x - self.a[2]
        t = np.clip((pz * d[0] + py * d[1] + px * d[2]) / max(float(d @ d), 1e-6), 0.0, 1.0)
        dist = np.sqrt((pz - t * d[0]) ** 2 + (py - t * d[1]) ** 2 + (px - t * d[2]) ** 2)
        return dist - (self.ra + t * (self.rb - self.ra))


@dataclass(frozen=True, eq=False)
class EllipticCylinder:
    """An elliptic cylinder parallel to Z, optionally limited to ``z_range``."""

    center_yx: tuple[float, float]
    semi_yx: tuple[float, float]
    z_range: tuple[float, float] = (-1e4, 1e4)

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        (cy, cx), (sy, sx) = self.center_yx, self.semi_yx
        return np.array([self.z_range[0], cy - sy, cx - sx]), np.array(
            [self.z_range[1], cy + sy, cx + sx]
        )

    def field(self, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        (cy, cx), (sy, sx) = self.center_yx, self.semi_yx
        q = np.sqrt(((y - cy) / sy) ** 2 + ((x - cx) / sx) ** 2)
        out = (q - 1.0) * min(sy, sx)
        zlo, zhi = self.z_range
        return np.maximum(out, np.maximum(zlo - z, z - zhi))


def tube(points: np.ndarray, radii: np.ndarray | float, samples: int = 4) -> list[Capsule]:
    """Capsules along a smooth (Catmull-Rom) curve through ``points`` (n, 3) in (Z, Y, X)."""
    pts = np.asarray(points, dtype=float)
    rad = np.broadcast_to(np.asarray(radii, dtype=float), (len(pts),))
    if len(pts) < 2:
        raise ValueError(f"a tube needs at least 2 points, got {len(pts)}")
    ext = np.vstack([2 * pts[0] - pts[1], pts, 2 * pts[-1] - pts[-2]])
    curve, rcurve = [], []
    for i in range(len(pts) - 1):
        p0, p1, p2, p3 = ext[i : i + 4]
        for s in np.arange(samples) / samples:
            curve.append(
                0.5
                * (
                    2 * p1
                    + (p2 - p0) * s
                    + (2 * p0 - 5 * p1 + 4 * p2 - p3) * s**2
                    + (3 * p1 - p0 - 3 * p2 + p3) * s**3
                )
            )
            rcurve.append(rad[i] + (rad[i + 1] - rad[i]) * s)
    curve.append(pts[-1])
    rcurve.append(rad[-1])
    return [
        Capsule(curve[i], curve[i + 1], rcurve[i], rcurve[i + 1]) for i in range(len(curve) - 1)
    ]


@dataclass(frozen=True)
class Layer:
    """Paint ``tissue`` (and ``label``, unless ``None``) where the field is below ``depth``.

    ``depth`` is in mm (``0`` the surface, ``-3`` three mm inside). ``only_labels``
    restricts painting to voxels currently holding one of those labels;
    ``below_y`` to voxels anterior of that Y (gas floats anteriorly in a supine patient).
    """

    tissue: int
    label: int | None
    depth: float = 0.0
    only_labels: tuple[int, ...] | None = None
    only_tissues: tuple[int, ...] | None = None
    below_y: float | None = None


@dataclass(frozen=True, eq=False)
class Structure:
    """Pieces (their union is the shape), layers painted in order, and cut-outs."""

    name: str
    pieces: tuple
    layers: tuple[Layer, ...]
    cuts: tuple = ()


@dataclass(frozen=True, eq=False)
class Intersection:
    """The intersection of pieces: field is the maximum of their fields."""

    pieces: tuple

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        boxes = [p.bbox() for p in self.pieces]
        return np.max([b[0] for b in boxes], 0), np.min([b[1] for b in boxes], 0)

    def field(self, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        out = self.pieces[0].field(z, y, x)
        for p in self.pieces[1:]:
            out = np.maximum(out, p.field(z, y, x))
        return out
