"""The body around the organs: outline, subcutaneous fat, muscle wall, spine, ribs, lungs.

Canonical body frame (mm, ``(Z, Y, X)``, LPS): X towards the patient's left,
Y towards the back, Z towards the head; Z = 0 at the level of the first lumbar
vertebra. The nominal abdomen is 300 mm wide and 220 mm deep; per-subject
variation is drawn in :func:`sample_body`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flare_uda.data.phantom.intensity import T
from flare_uda.data.phantom.shapes import (
    Capsule,
    Ellipsoid,
    EllipticCylinder,
    Intersection,
    Layer,
    Structure,
    rotation,
    tube,
)

BIG = 1e4


@dataclass(frozen=True, eq=False)
class Outline:
    """The body cross-section: two half-ellipses, deeper at the back than in front."""

    a: float  # half width (X)
    b_ant: float  # half depth in front (Y < 0)
    b_post: float  # half depth at the back (Y > 0)

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([-BIG, -self.b_ant, -self.a]), np.array([BIG, self.b_post, self.a])

    def field(self, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        b = np.where(y < 0, np.float32(self.b_ant), np.float32(self.b_post))
        q = np.sqrt((x * np.float32(1.0 / self.a)) ** 2 + (y / b) ** 2)
        return (q - 1.0) * np.float32(min(self.a, self.b_ant))

    def shrunk(self, lateral: float, front: float, back: float) -> Outline:
        """The outline moved inwards by the given thicknesses (mm); negative grows it."""
        return Outline(self.a - lateral, self.b_ant - front, self.b_post - back)

    def point(self, phi: np.ndarray, side: float) -> tuple[np.ndarray, np.ndarray]:
        """(Y, X) on the outline at angle ``phi`` from the back mid-line, on ``side`` (+-1)."""
        b = np.where(np.cos(phi) > 0, self.b_post, self.b_ant)
        return b * np.cos(phi), side * self.a * np.sin(phi)


@dataclass(frozen=True, eq=False)
class Dome:
    """The diaphragm: inside is *above* a dome surface Z = h(X, Y), higher on the right."""

    right: float = 112.0
    left: float = 104.0

    def height(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Dome height: peaks at X = +-65 mm, lower centrally and much lower at the back."""
        right = 1.0 / (1.0 + np.exp(np.clip(x / 25.0, -30.0, 30.0)))  # smooth step at X = 0
        top = self.left + (self.right - self.left) * right
        back = np.maximum(y + 10.0, 0.0) / 100.0
        front = np.maximum(-y - 40.0, 0.0) / 60.0
        lateral = np.sqrt(x * x + 400.0)  # a smooth |x|: no crease on the mid-line
        return top - 55.0 * ((lateral - 65.0) / 85.0) ** 2 - 75.0 * back**2 - 20.0 * front**2

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([min(self.right, self.left) - 160.0, -BIG, -BIG]), np.array([BIG] * 3)

    def field(self, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return self.height(y, x) - z


@dataclass(frozen=True, eq=False)
class Couch:
    """The CT table under the patient's back: a shallow shell rising towards the sides."""

    y0: float  # Y (mm) of the shell's inner surface on the mid-line
    half_width: float = 220.0
    curvature: float = 1.0 / 2500.0  # the inner surface is Y = y0 - curvature * X^2
    thickness: float = 6.0

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        rise = self.curvature * self.half_width**2
        return np.array([-BIG, self.y0 - rise, -self.half_width]), np.array(
            [BIG, self.y0 + self.thickness, self.half_width]
        )

    def field(self, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        centre = self.y0 - self.curvature * x**2 + self.thickness / 2
        d = np.abs(y - centre) - self.thickness / 2
        return np.maximum(d, np.abs(x) - self.half_width)


def ribs(
    wall: Outline,
    z_back: tuple[float, ...] = (0.0, 30.0, 58.0, 86.0, 114.0, 142.0),
    phi_end: tuple[float, ...] = (1.6, 2.1, 2.5, 2.8, 2.9, 2.9),
    drop: float = 110.0,
    radius: float = 4.0,
) -> tuple[Capsule, ...]:
    """Ribs as oblique hoops along the middle of the body wall, high at the back.

    Rib ``i`` lies at Z = ``z_back[i]`` beside the spine and drops by ``drop``
    mm towards the front; it spans the angle from the back mid-line from 0.35
    rad to ``phi_end[i]`` (lower ribs are shorter: floating ribs).
    """
    out: list[Capsule] = []
    for z0, end in zip(z_back, phi_end, strict=True):
        phi = np.linspace(0.35, end, 12)
        zc = z0 - drop * (1.0 - np.cos(phi)) / 2.0
        for side in (-1.0, 1.0):
            y, x = wall.point(phi, side)
            out += tube(np.stack([zc, y, x], 1), radius, samples=1)
    return tuple(out)


@dataclass(frozen=True)
class BodyShape:
    """Sampled body geometry; :meth:`structures` turns it into paintable structures.

    The abdominal cavity (inside the muscle wall) has a nearly fixed canonical
    size, so organs keep their relations to it; the muscle wall and the
    subcutaneous fat grow outwards from it.
    """

    cavity: Outline
    fat: tuple[float, float, float]  # subcutaneous fat: lateral, front, back (mm)
    wall: float  # muscle wall thickness (mm)
    dome: Dome
    spine_y: float
    arms: bool = False  # arms down beside the body (common in MR, rare in CT)

    @property
    def muscle_outline(self) -> Outline:
        return self.cavity.shrunk(-self.wall, -self.wall, -self.wall)

    @property
    def outline(self) -> Outline:
        return self.muscle_outline.shrunk(*(-f for f in self.fat))

    def structures(self) -> list[Structure]:
        """Body structures in painting order (later ones overwrite earlier ones)."""
        sy = self.spine_y
        mid_wall = self.muscle_outline.shrunk(self.wall / 2, self.wall / 2, self.wall / 2)
        verts, arch = [], []
        for zc in np.arange(-200.0, 200.0, 36.0):  # vertebral bodies with discs between
            verts.append(EllipticCylinder((sy, 0.0), (17.0, 23.0), (zc + 4.5, zc + 31.5)))
            arch += [  # lamina ring, spinous and transverse processes
                EllipticCylinder((sy + 30.0, 0.0), (15.0, 14.0), (zc + 8.0, zc + 28.0)),
                EllipticCylinder((sy + 52.0, 0.0), (14.0, 5.0), (zc + 4.0, zc + 24.0)),
                EllipticCylinder((sy + 24.0, -28.0), (5.0, 14.0), (zc + 13.0, zc + 21.0)),
                EllipticCylinder((sy + 24.0, 28.0), (5.0, 14.0), (zc + 13.0, zc + 21.0)),
            ]
        psoas = tube(
            np.array([[30.0, sy - 4, 28.0], [-40.0, sy - 6, 40.0], [-200.0, sy - 14, 52.0]]),
            np.array([4.0, 17.0, 26.0]),
        )
        psoas_l = tuple(psoas)
        psoas_r = tuple(Capsule(c.a * [1, 1, -1], c.b * [1, 1, -1], c.ra, c.rb) for c in psoas)
        return [
            Structure(
                "couch",
                (Couch(self.outline.b_post + 3.0),),
                (Layer(T["couch"], 0, only_tissues=(T["air"],)),),
            ),
            Structure("body", (self.outline,), (Layer(T["fat"], 0),)),
            Structure("muscle_wall", (self.muscle_outline,), (Layer(T["muscle"], 0),)),
            Structure("cavity", (self.cavity,), (Layer(T["fat"], 0),)),
            Structure(
                "paraspinal",
                tuple(
                    Intersection(
                        (EllipticCylinder((sy + 44.0, s * 33.0), (24.0, 28.0)), self.muscle_outline)
                    )
                    for s in (-1.0, 1.0)
                ),
                (Layer(T["muscle"], 0, only_tissues=(T["fat"], T["muscle"])),),
            ),
            Structure("psoas", psoas_l + psoas_r, (Layer(T["muscle"], 0),)),
            Structure(
                "spine",
                (EllipticCylinder((sy, 0.0), (18.0, 24.0)),),
                (Layer(T["disc"], 0),),
            ),
            Structure(
                "vertebrae", tuple(verts), (Layer(T["bone"], 0), Layer(T["marrow"], 0, -2.0))
            ),
            Structure("posterior_arch", tuple(arch), (Layer(T["bone"], 0),)),
            Structure(
                "canal", (EllipticCylinder((sy + 29.0, 0.0), (8.0, 9.0)),), (Layer(T["csf"], 0),)
            ),
            Structure(
                "ribs",
                ribs(mid_wall),
                (Layer(T["bone"], 0),),
            ),
        ]

    def arm_structures(self) -> list[Structure]:
        """Upper arms beside the body (fat, muscle, humerus), only where there is air."""
        if not self.arms:
            return []
        x = self.outline.a + 12.0 + 40.0
        limbs = tuple(EllipticCylinder((-10.0, s * x), (42.0, 40.0)) for s in (-1.0, 1.0))
        bones = tuple(EllipticCylinder((-10.0, s * x), (11.0, 11.0)) for s in (-1.0, 1.0))
        return [
            Structure(
                "arms",
                limbs,
                (
                    Layer(T["fat"], 0, only_tissues=(T["air"],)),
                    Layer(T["muscle"], 0, depth=-9.0, only_tissues=(T["fat"],)),
                ),
            ),
            Structure(
                "humerus",
                bones,
                (
                    Layer(T["bone"], 0, only_tissues=(T["muscle"],)),
                    Layer(T["marrow"], 0, depth=-3.0, only_tissues=(T["bone"],)),
                ),
            ),
        ]

    def thorax(self) -> list[Structure]:
        """Diaphragm, lungs and heart above the dome; painted after the organs to clip them.

        The diaphragm is a 5 mm muscle sheet under the dome; the heart sits on
        its central part, the lungs everywhere else above it.
        """
        cavity = self.cavity.shrunk(3.0, 3.0, 3.0)
        soft = (T["fat"], T["liver"], T["spleen"], T["gi_wall"], T["fluid"], T["gas"], T["bowel"])
        heart = Ellipsoid((118.0, -30.0, -8.0), (65.0, 52.0, 62.0), rotation(yaw=-25.0))
        sheet = Dome(self.dome.right - 5.0, self.dome.left - 5.0)
        organs = (0, 1, 3, 11)  # background, liver, spleen and stomach give way
        return [
            Structure(
                "diaphragm",
                (Intersection((sheet, cavity)),),
                (Layer(T["diaphragm"], 0, only_labels=organs, only_tissues=soft),),
            ),
            Structure(
                "lung",
                (Intersection((self.dome, cavity)),),
                (Layer(T["lung"], 0, only_tissues=(T["diaphragm"],)),),
            ),
            Structure(
                "heart",
                (Intersection((self.dome, heart, cavity)),),
                (Layer(T["heart"], 0, only_tissues=(T["lung"],)),),
            ),
        ]


def sample_body(rng: np.random.Generator, arms_probability: float = 0.0) -> BodyShape:
    """Draw one subject's body: cavity jitter, wall and fat, diaphragm height, arm position."""
    cavity = Outline(
        122.0 * rng.uniform(0.97, 1.03),
        80.0 * rng.uniform(0.95, 1.05),
        92.0 * rng.uniform(0.97, 1.03),
    )
    fat = float(rng.uniform(0.4, 2.2))
    return BodyShape(
        cavity=cavity,
        fat=(14.0 * fat, 20.0 * fat, 10.0 * fat),
        wall=float(rng.uniform(8.0, 13.0)),
        dome=Dome(112.0 + rng.normal(0, 6), 104.0 + rng.normal(0, 6)),
        spine_y=38.0,
        arms=bool(rng.random() < arms_probability),
    )
