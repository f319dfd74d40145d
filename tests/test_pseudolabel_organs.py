"""The organ-wise filter: eq. 7 per organ, the per-organ prior, composition, errors."""

from __future__ import annotations

import numpy as np
import pytest

from flare_uda.pseudolabel import (
    AllOf,
    OrganWiseFilter,
    UncertaintyFilter,
    learn_organ_prior,
    organ_uncertainties,
    organ_uncertainty,
)
from flare_uda.pseudolabel.prior import body_frame
from flare_uda.volume import Case, Volume

SHAPE, SPACING = (16, 40, 40), (3.0, 2.0, 2.0)
ORGANS = {  # label: (z, y, x) slices
    1: (slice(4, 12), slice(10, 24), slice(6, 18)),  # liver
    3: (slice(5, 11), slice(12, 20), slice(26, 33)),  # spleen, on the other side
    2: (slice(6, 10), slice(26, 31), slice(10, 14)),  # right kidney
    13: (slice(6, 10), slice(26, 31), slice(26, 30)),  # left kidney
}


def body_image(shift: int = 0) -> Volume:
    """An elliptic body (intensity 1) with brighter organs, its centre shifted along x."""
    z, y, x = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    img = (((y - 19.5) / 17) ** 2 + ((x - 19.5 - shift) / 18) ** 2 <= 1).astype(np.float32)
    img[anatomy(shift) > 0] = 2.0
    return Volume(img, SPACING)


def anatomy(shift: int = 0, without=(), moves=None) -> np.ndarray:
    lab = np.zeros(SHAPE, np.uint8)
    for organ, (sz, sy, sx) in ORGANS.items():
        if organ in without:
            continue
        dx = shift + (moves or {}).get(organ, 0)
        lab[sz, sy, slice(sx.start + dx, sx.stop + dx)] = organ
    return lab


def ct_cases() -> list[Case]:
    return [Case(f"ct{s}", body_image(s), Volume(anatomy(s), SPACING), "CT") for s in (-1, 0, 1)]


def test_organ_uncertainty_is_eq7_per_organ():
    a = anatomy()
    b = a.copy()
    b[6:10, 26:31, 10:12] = 0  # right kidney loses 2 of its 4 columns: 40 of 80 voxels
    assert organ_uncertainty([a, b], 2) == pytest.approx(40 / 40)  # changed / later size
    assert organ_uncertainty([a, b], 1) == 0.0
    assert organ_uncertainties([a, b]) == {1: 0.0, 2: pytest.approx(1.0), 3: 0.0, 13: 0.0}
    assert organ_uncertainty([a, np.where(a == 3, 0, a)], 3) == float("inf")


def test_the_filter_drops_exactly_the_organ_made_unstable():
    stable = anatomy()
    wobbly = anatomy(moves={13: 2})  # case b's left kidney moves 2 voxels between rounds
    history = {"a": [stable, stable], "b": [stable, wobbly], "c": [stable, stable]}
    f = OrganWiseFilter(threshold=0.2, prior=False)
    assert f.select_organs(history) == {"a": (1, 2, 3, 13), "b": (1, 2, 3), "c": (1, 2, 3, 13)}
    assert f.select(history) == ["a", "b", "c"]  # every case keeps organs
    assert "eq. 7" in f.failures_["b"][13] and not f.failures_["a"]
    case_wise = UncertaintyFilter(threshold=0.2).select_organs(history)
    assert list(case_wise) == ["a", "b", "c"] and case_wise["b"] == tuple(range(1, 14))


def test_keep_fraction_is_per_organ_and_min_organs_drops_cases():
    a = anatomy()
    history = {
        "a": [a, anatomy(moves={1: 1})],  # liver unstable
        "b": [a, anatomy(moves={3: 1})],  # spleen unstable
        "c": [a, a],
    }
    f = OrganWiseFilter(threshold=None, keep_fraction=0.5, prior=False)
    # per organ, ceil(0.5 * 3) = 2 of 3 cases: the two most certain, ties in history order
    # (the kidneys are equally certain everywhere, so c loses them, as a case-wise fraction would)
    assert f.select_organs(history) == {"a": (2, 3, 13), "b": (1, 2, 13), "c": (1, 3)}
    strict = OrganWiseFilter(threshold=0.0, prior=False, min_organs=4)
    assert list(strict.select_organs(history)) == ["c"]


def test_the_prior_rejects_misplaced_and_oversized_organs():
    f = OrganWiseFilter(threshold=None).fit(ct_cases())
    assert set(f.prior_) == {1, 2, 3, 13} and f.prior_[1].cases == 3
    wrong = anatomy(without=(1, 3))
    wrong[4:12, 10:24, 22:34] = 1  # a liver-sized "liver" on the spleen's side
    big_kidney = anatomy()
    big_kidney[4:12, 24:36, 8:16] = 2  # the right kidney about 5x its size
    history = {"ok": [anatomy(shift=1)], "wrong": [wrong], "big": [big_kidney]}
    images = {cid: body_image(1 if cid == "ok" else 0) for cid in history}
    organs = f.select_organs(history, images)
    assert organs == {"ok": (1, 2, 3, 13), "wrong": (2, 13), "big": (1, 3, 13)}  # absent: unknown
    assert "body spreads" in f.failures_["wrong"][1] and "volume" in f.failures_["big"][2]


def test_filters_compose_organ_by_organ():
    stable, wobbly = anatomy(), anatomy(moves={13: 2})
    history = {"a": [stable, wobbly], "b": [stable, stable], "c": [stable, anatomy(moves={1: 2})]}
    combo = AllOf(
        filters=[UncertaintyFilter(keep_fraction=0.7), OrganWiseFilter(threshold=0.2, prior=False)]
    )
    # the case-wise filter keeps ceil(0.7 * 3) = 3 cases; the organ-wise one drops a's left
    # kidney and c's liver
    assert combo.select_organs(history) == {"a": (1, 2, 3), "b": (1, 2, 3, 13), "c": (2, 3, 13)}
    prior = AllOf(filters=[OrganWiseFilter(threshold=None)])
    assert prior.learns_from_source and prior.fit(ct_cases()) is prior
    assert not AllOf(filters=[UncertaintyFilter(threshold=1.0)]).learns_from_source


def test_organ_filter_errors():
    history = {"a": [anatomy()]}
    with pytest.raises(ValueError, match="expected something to check"):
        OrganWiseFilter(threshold=None, prior=False)
    with pytest.raises(ValueError, match=r"keep_fraction must be in \(0, 1\]"):
        OrganWiseFilter(keep_fraction=1.5)
    with pytest.raises(ValueError, match="threshold must be >= 0"):
        OrganWiseFilter(threshold=-0.1)
    with pytest.raises(ValueError, match="0 <= low < high"):
        OrganWiseFilter(volume_range=(2.0, 1.0))
    with pytest.raises(ValueError, match="position_tolerance must be > 0"):
        OrganWiseFilter(position_tolerance=0.0)
    with pytest.raises(ValueError, match="position_axes must be axes among 0, 1, 2"):
        OrganWiseFilter(position_axes=(3,))
    with pytest.raises(ValueError, match="min_organs must be"):
        OrganWiseFilter(min_organs=0)
    with pytest.raises(RuntimeError, match=r"has not learned its prior: call fit\(source_cases\)"):
        OrganWiseFilter(threshold=None).select_organs(history, {"a": body_image()})
    fitted = OrganWiseFilter(threshold=None).fit(ct_cases())
    with pytest.raises(ValueError, match=r"needs each case's image \(its body\), got none for"):
        fitted.select_organs(history)
    with pytest.raises(ValueError, match="at least 2 label maps"):
        OrganWiseFilter(prior=False).select_organs(history)
    with pytest.raises(ValueError, match="expected labelled source cases"):
        learn_organ_prior([])
    with pytest.raises(ValueError, match="has no label"):
        learn_organ_prior([Case("ct", body_image(), None, "CT")])
    with pytest.raises(ValueError, match="expected a body in the image"):
        body_frame(
            Volume(np.where(np.arange(4)[:, None, None] == 2, 1.0, 0.0) * np.ones((4, 4, 4)))
        )
    with pytest.raises(ValueError, match="non-empty history"):
        fitted.select_organs({})
