"""The 13 FLARE organs (and the vessels, bowel and lesion around them) of one subject.

Nominal positions are in the canonical body frame of
:mod:`flare_uda.data.phantom.body` (mm, ``(Z, Y, X)``, LPS: X to the patient's
left, Y to the back, Z to the head). The liver and right kidney therefore sit
at negative X, the spleen and left kidney at positive X.

Per-subject variation: every organ group (liver with gallbladder and hepatic
vessels, each kidney with its adrenal, spleen, stomach, pancreas with
duodenum) gets its own offset and scale, and the abdominal organs share a
breathing shift along Z. The smooth elastic warp is applied by the renderer.
"""

from __future__ import annotations

import numpy as np

from flare_uda.data.phantom.body import BodyShape
from flare_uda.data.phantom.intensity import T
from flare_uda.data.phantom.shapes import (
    Ellipsoid,
    Intersection,
    Layer,
    Structure,
    rotation,
    tube,
)

GROUPS = ("liver", "rkid", "lkid", "spleen", "stomach", "pancreas", "vessels", "bowel")
_BREATHING = {"liver": 1.0, "spleen": 1.0, "stomach": 0.8, "pancreas": 0.6, "rkid": 0.5,
              "lkid": 0.5, "vessels": 0.0, "bowel": 0.3}  # fmt: skip


class _Jitter:
    """Per-group offsets (mm) and scales for one subject."""

    def __init__(self, rng: np.random.Generator) -> None:
        breathing = rng.normal(0.0, 8.0)
        self.offset = {}
        self.scale = {}
        for g in GROUPS:
            sd = 2.0 if g == "vessels" else 5.0
            off = rng.normal(0.0, sd, 3)
            off[0] += _BREATHING[g] * breathing
            self.offset[g] = off
            self.scale[g] = float(
                np.clip(rng.normal(1.0, 0.02 if g == "vessels" else 0.08), 0.8, 1.2)
            )

    def pts(self, group: str, points: list) -> np.ndarray:
        return np.asarray(points, dtype=float) + self.offset[group]

    def ell(self, group: str, center, semi, yaw=0.0, cor=0.0, sag=0.0) -> Ellipsoid:
        s = self.scale[group]
        return Ellipsoid(
            tuple(self.pts(group, center)), tuple(np.asarray(semi) * s), rotation(yaw, cor, sag)
        )

    def tube(self, group: str, points: list, radii, samples: int = 4) -> tuple:
        return tuple(tube(self.pts(group, points), np.asarray(radii) * self.scale[group], samples))


def _hollow(
    name: str,
    pieces: tuple,
    label: int,
    wall: float,
    content: int,
    gas_y: float | None,
    only_tissues: tuple[int, ...] | None = None,
) -> Structure:
    """A hollow organ: wall, content, and gas floating anteriorly (``Y < gas_y``)."""
    inner = None if only_tissues is None else (T["gi_wall"],)
    layers = [
        Layer(T["gi_wall"], label, only_tissues=only_tissues),
        Layer(content, label, -wall, only_tissues=inner),
    ]
    if gas_y is not None:
        gas_inner = None if only_tissues is None else (content,)
        layers.append(Layer(T["gas"], label, -wall, only_tissues=gas_inner, below_y=gas_y))
    return Structure(name, pieces, tuple(layers))


def _kidney(j: _Jitter, side: int, center: list) -> tuple[list[Structure], Ellipsoid]:
    """Kidney: cortex, ten medullary pyramids around the sinus, hilum with renal pelvis."""
    group = "rkid" if side < 0 else "lkid"
    s = -side  # right kidney: hilum towards +X (yaw < 0), upper pole towards +X (cor < 0)
    k = j.ell(group, center, (54.0, 22.0, 27.0), yaw=-30.0 * s, cor=-15.0 * s, sag=-15.0)
    c, rot, scale = np.asarray(k.center), np.asarray(k.rot), j.scale[group]
    medial = rot[:, 2] * s  # local X points medially for the right kidney
    label = 2 if side < 0 else 13
    cut = Ellipsoid(tuple(c + 21.0 * medial), (24.0, 10.0, 13.0), k.rot)
    kidney = Structure(f"kidney_{group}", (k,), (Layer(T["kidney_cortex"], label),), cuts=(cut,))
    pyramids = []
    for t in (-0.62, -0.31, 0.0, 0.31, 0.62):
        for ap in (-1.0, 1.0):
            local = np.array([t * 50.0, ap * 8.0, -3.0 * s]) * scale
            tilt = rotation(yaw=-ap * 35.0 * s, tilt_cor=-t * 40.0)  # apex towards the sinus
            pyramids.append(Ellipsoid(tuple(c + rot @ local), (9.0, 6.5, 9.0), rot @ tilt))
    medulla = Structure(
        f"medulla_{group}",
        tuple(pyramids),
        (Layer(T["kidney_medulla"], None, only_labels=(label,)),),
    )
    pelvis = Structure(
        f"pelvis_{group}",
        (Ellipsoid(tuple(c + 17.0 * medial), (14.0, 5.0, 8.0), k.rot),),
        (Layer(T["fluid"], 0, only_labels=(0,), only_tissues=(T["fat"],)),),
    )
    return [kidney, medulla, pelvis], k


def _adrenal(j: _Jitter, group: str, center: list, label: int, spread: float) -> Structure:
    c = j.pts(group, center)
    s = j.scale[group]
    pieces = [Ellipsoid(tuple(c), (12.0 * s, 5.5 * s, 5.0 * s))]
    for theta in (-spread, spread):
        direction = np.array([0.0, np.cos(np.deg2rad(theta)), np.sin(np.deg2rad(theta))])
        pieces.append(
            Ellipsoid(
                tuple(c + 10.0 * s * direction), (16.0 * s, 12.0 * s, 3.3 * s), rotation(-theta)
            )
        )
    return Structure(f"adrenal_{label}", tuple(pieces), (Layer(T["adrenal"], label),))


def organ_structures(
    body: BodyShape, rng: np.random.Generator, lesion_rng: np.random.Generator | None = None
) -> list[Structure]:
    """All abdominal structures of one subject, in painting order (later overwrites earlier).

    ``lesion_rng`` (its own stream, so the rest of the subject does not change)
    adds one lesion when given.
    """
    j = _Jitter(rng)
    cavity = body.cavity.shrunk(1.0, 1.0, 1.0)
    out: list[Structure] = []

    # colon (label 0) first: organs painted later push it aside
    colon = j.tube("bowel", [[-110, 5, -100], [-60, 0, -98], [-25, -25, -85], [-30, -58, -45],
                             [-25, -62, 0], [-15, -55, 45], [10, -15, 90], [-40, 15, 98],
                             [-120, 20, 96]], 21.0)  # fmt: skip
    out.append(_hollow("colon", colon, 0, 3.0, T["stool"], rng.uniform(-75, -45), (T["fat"],)))

    # liver (right lobe + left lobe), clipped to the cavity, cut around the right kidney
    rk, rk_ell = _kidney(j, -1, [-28, 50, -72])
    lk, lk_ell = _kidney(j, +1, [-15, 50, 72])
    liver_pieces = (
        Intersection((j.ell("liver", [48, 5, -60], (75, 80, 70), cor=-20.0), cavity)),
        Intersection((j.ell("liver", [62, -42, 12], (38, 32, 58), yaw=10.0), cavity)),
    )
    grow = Ellipsoid(rk_ell.center, tuple(np.asarray(rk_ell.semi) + 5.0), rk_ell.rot)
    under = j.ell("liver", [-45, -10, -5], (55, 120, 60))  # free space below the liver
    bare = j.ell("rkid", [40, 52, -27], (38, 30, 17))  # fat of the right adrenal and crus
    out.append(Structure("liver", liver_pieces, (Layer(T["liver"], 1),), cuts=(grow, under, bare)))
    spleen = j.ell("spleen", [34, 42, 84], (62, 56, 27), yaw=45.0, sag=-20.0)
    spleen_cut = Ellipsoid(tuple(np.asarray(spleen.center) - 36.0 * spleen.rot[:, 2]),
                           (48.0, 38.0, 18.0), spleen.rot)  # fmt: skip
    lk_grow = Ellipsoid(lk_ell.center, tuple(np.asarray(lk_ell.semi) + 4.0), lk_ell.rot)
    out += rk + lk

    # veins inside the liver (liver label kept) and the portal system outside it (label 0)
    hv_top = [85, 14, -22]
    veins = (j.tube("liver", [hv_top, [70, 20, -60], [60, 25, -95]], [6.0, 4.5, 3.0])
             + j.tube("liver", [hv_top, [65, -10, -40], [50, -30, -55]], [5.0, 4.0, 3.0])
             + j.tube("liver", [hv_top, [70, -20, -10], [60, -40, 5]], [4.5, 3.5, 2.5])
             )  # fmt: skip
    out.append(Structure("hepatic_veins", veins, (Layer(T["vein"], None, only_labels=(1,)),)))
    portal = (j.tube("pancreas", [[-45, -22, -4], [-5, -8, -5], [25, -5, -32]], [5.5, 7.0, 7.0])
              + j.tube("liver", [[25, -5, -32], [30, 5, -75]], [5.5, 3.5])
              + j.tube("liver", [[25, -5, -32], [42, -30, -5]], [5.0, 3.0])
              + j.tube("pancreas", [[-5, -8, -5], [5, -2, 25], [15, 8, 50], [25, 20, 75],
                                    [35, 30, 85]], 4.5))  # fmt: skip
    out.append(Structure("portal", portal, (Layer(T["portal_vein"], None, only_labels=(0, 1)),)))

    # gallbladder under the liver, fundus pointing forwards and down
    gb = j.ell("liver", [0, -55, -60], (36, 15, 16), sag=-35.0)
    out.append(Structure("gallbladder", (gb,), (Layer(T["gi_wall"], 9), Layer(T["bile"], 9, -2.5))))

    # esophagus down through the hiatus into the stomach
    eso_pts = [[150, 8, -2], [110, 4, 0], [85, -2, 10]]
    eso = tube(np.vstack([eso_pts, j.pts("stomach", [[72, 4, 28], [64, 8, 42]])]), 8.0)
    out.append(Structure("esophagus", tuple(eso), (Layer(T["gi_wall"], 10),)))
    content = T["fluid"] if rng.random() < 0.6 else T["bowel"]
    stomach = j.tube("stomach", [[66, 14, 58], [52, -10, 64], [36, -36, 60], [18, -56, 44],
                                 [6, -60, 15], [5, -52, -8], [10, -40, -22]],
                     [34, 40, 36, 30, 25, 18, 12])  # fmt: skip
    stomach = tuple(Intersection((c, cavity)) for c in stomach)
    out.append(_hollow("stomach", stomach, 11, 5.0, content, rng.uniform(-80, -50)))
    # spleen after the stomach: it dents the fundus rather than the other way round
    out.append(Structure("spleen", (Intersection((spleen, cavity)),), (Layer(T["spleen"], 3),),
                         cuts=(spleen_cut, lk_grow)))  # fmt: skip

    # pancreas across the spine, duodenum as a C-loop around its head
    pancreas = j.tube("pancreas", [[-22, -18, -31], [-8, -24, -18], [-2, -32, -2], [6, -25, 22],
                                   [14, -10, 45], [22, 8, 68], [28, 20, 82]],
                      [14, 13, 10, 11, 10, 9, 8]) + j.tube(
        "pancreas", [[-22, -18, -31], [-32, -6, -20]], [11, 8])  # fmt: skip
    out.append(Structure("pancreas", pancreas, (Layer(T["pancreas"], 4),)))
    duo = j.tube("pancreas", [[10, -40, -22], [12, -30, -38], [6, -15, -50], [-15, -10, -57],
                              [-40, -10, -57], [-58, -18, -42], [-64, -25, -15], [-62, -25, 10],
                              [-48, -22, 26], [-32, -28, 32]], 12.0)  # fmt: skip
    out.append(_hollow("duodenum", duo, 12, 3.0, T["fluid"], rng.uniform(-45, -25)))

    # adrenals on top of the kidneys (inverted-Y shapes)
    out.append(_adrenal(j, "rkid", [38, 36, -35], 7, 28.0))
    out.append(_adrenal(j, "lkid", [28, 30, 38], 8, 22.0))

    # great vessels in front of the spine: aorta slightly left, IVC right
    aorta = j.tube("vessels", [[150, 30, 30], [90, 22, 26], [50, 13, 18], [0, 6, 12],
                               [-60, 4, 10], [-200, 2, 8]], [13, 12, 12, 11, 10, 9])  # fmt: skip
    out.append(Structure("aorta", aorta, (Layer(T["artery"], 5),)))
    ivc = j.tube("vessels", [[-200, 2, -24], [-60, 4, -24], [0, 8, -25], [40, 14, -28],
                             [75, 14, -22], [100, 10, -12]], [11, 11.5, 12, 12, 13, 14]
                 )  # fmt: skip
    out.append(Structure("ivc", ivc, (Layer(T["vein"], 6),)))
    branches = (j.tube("vessels", [[-5, 2, 12], [-20, -22, 10], [-45, -40, 8], [-90, -45, 5]], 4.0)
                + j.tube("vessels", [[10, 2, 12], [16, -18, 10], [20, -22, -5]], 3.5)
                + j.tube("vessels", [[-15, 12, 14], [-18, 30, 50]], 3.0)
                + j.tube("vessels", [[-18, 12, 8], [-24, 30, -52]], 3.0))  # fmt: skip
    out.append(Structure("arteries", branches, (Layer(T["artery"], 0, only_labels=(0,)),)))
    rveins = (j.tube("vessels", [[-12, 30, 52], [-10, -5, 14], [-12, 6, -24]], 5.0)
              + j.tube("vessels", [[-22, 30, -50], [-18, 8, -26]], 5.0))  # fmt: skip
    out.append(Structure("renal_veins", rveins, (Layer(T["vein"], 0, only_labels=(0,)),)))

    if lesion_rng is not None:
        out.append(_lesion(lesion_rng, j, rk_ell, lk_ell))
    return out


def _lesion(rng: np.random.Generator, j: _Jitter, rk: Ellipsoid, lk: Ellipsoid) -> Structure:
    """One round lesion inside the liver (70 %) or a kidney; the organ keeps its label."""
    u = rng.random()
    if u < 0.7:
        label, radius = 1, rng.uniform(7.0, 18.0)
        center = j.pts("liver", [45, 5, -62]) + rng.uniform(-1, 1, 3) * [25.0, 25.0, 20.0]
    else:
        k, label = (rk, 2) if u < 0.85 else (lk, 13)
        radius = rng.uniform(6.0, 12.0)
        center = np.asarray(k.center) + k.rot @ (rng.uniform(-0.4, 0.4, 3) * np.asarray(k.semi))
    ball = Ellipsoid(tuple(center), (radius,) * 3)
    return Structure("lesion", (ball,), (Layer(T["lesion"], None, only_labels=(label,)),))


def bowel_structures(rng: np.random.Generator, n_loops: int = 9) -> list[Structure]:
    """Small-bowel loops filling the free fat of the mid and lower abdomen (label 0).

    Jejunum reaches up into the left upper quadrant, ileum fills the lower abdomen.
    """
    out = []
    for i in range(n_loops):
        x0 = rng.uniform(-70, 80)
        top = 20.0 if x0 > 10 else -15.0
        start = np.array([rng.uniform(-110, top), rng.uniform(-60, 0), x0])
        pts = [start]
        for _ in range(5):
            step = rng.normal(0, 1, 3) * [12.0, 18.0, 22.0]
            nxt = pts[-1] + step
            nxt[0] = np.clip(nxt[0], -130, top)
            r = np.hypot(nxt[1] / 65.0, nxt[2] / 90.0)
            if r > 1:
                nxt[1:] /= r
            pts.append(nxt)
        content = T["fluid"] if rng.random() < 0.5 else T["bowel"]
        pieces = tuple(tube(np.array(pts), rng.uniform(10.0, 13.0)))
        layers = (
            Layer(T["gi_wall"], 0, only_labels=(0,), only_tissues=(T["fat"],)),
            Layer(content, 0, depth=-2.5, only_labels=(0,), only_tissues=(T["gi_wall"],)),
            Layer(T["gas"], 0, depth=-2.5, only_labels=(0,), only_tissues=(content,),
                  below_y=float(rng.uniform(-70, -30))),
        )  # fmt: skip
        out.append(Structure(f"small_bowel_{i}", pieces, layers))
    return out
