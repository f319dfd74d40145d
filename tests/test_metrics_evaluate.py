"""FLARE rules per case (empties, DSC gate, z-range crop), MONAI agreement, summaries."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from flare_uda.data.labels import NSD_TOLERANCE_MM
from flare_uda.metrics.evaluate import (
    MetricRow,
    evaluate_case,
    evaluate_cases,
    evaluate_volumes,
    summarize,
)
from flare_uda.metrics.surface import surface_dice
from flare_uda.metrics.synthetic import organ_phantom, perturb
from flare_uda.volume import Volume

AORTA, LIVER = 5, 1


def monai_case(pred: np.ndarray, ref: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    from monai.metrics import compute_dice, compute_surface_dice

    def onehot(a):
        t = torch.as_tensor(a.astype(np.int64))
        return torch.nn.functional.one_hot(t, 14).permute(3, 0, 1, 2)[None].to(torch.uint8)

    tols = [NSD_TOLERANCE_MM[o] for o in range(1, 14)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = compute_dice(onehot(pred), onehot(ref), include_background=False)[0].numpy()
        n = compute_surface_dice(
            onehot(pred), onehot(ref), tols, spacing=spacing, use_subvoxels=True
        )
    return d, n[0].numpy()


@pytest.mark.parametrize(
    "spacing, seed", [((2.5, 0.8, 0.8), 0), ((5.0, 1.5, 1.5), 1), ((1.0, 2.0, 3.0), 2)]
)
def test_equals_monai_on_perturbed_13_organ_cases(spacing, seed):
    shape = (40, 80, 80)
    # field of view of a CT scan, whatever the spacing
    ref = organ_phantom(shape, (250 / 40, 410 / 80, 410 / 80), seed=seed)
    pred = perturb(ref, seed=seed + 10, drop=(3,))
    ours = evaluate_case(pred, ref, spacing, nsd_gate=None, tubular_crop="off")
    m_dsc, m_nsd = monai_case(pred, ref, spacing)
    compared = 0
    for organ, (dsc, nsd) in ours.items():
        if math.isnan(m_nsd[organ - 1]):  # MONAI: empty in both; FLARE: 1
            assert (dsc, nsd) == (1.0, 1.0)
            continue
        assert abs(dsc - m_dsc[organ - 1]) < 1e-4, organ
        assert abs(nsd - m_nsd[organ - 1]) < 1e-4, organ
        compared += 1
    assert compared >= 10
    assert ours[3] == (0.0, 0.0)  # the dropped spleen


def test_empty_in_both_scores_one_and_in_one_scores_zero():
    ref = np.zeros((8, 16, 16), np.uint8)
    ref[2:6, 4:10, 4:10] = LIVER
    pred = np.zeros_like(ref)
    pred[2:6, 4:10, 4:10] = 2  # right kidney where the reference has liver
    out = evaluate_case(pred, ref, (2.0, 1.0, 1.0))
    assert out[LIVER] == (0.0, 0.0)  # only in the reference
    assert out[2] == (0.0, 0.0)  # only in the prediction
    assert all(out[o] == (1.0, 1.0) for o in range(3, 14))


def test_dsc_gate_sets_nsd_to_zero_and_can_be_turned_off():
    ref = np.zeros((24, 24, 24), np.uint8)
    ref[2:22, 2:22, 2:22] = LIVER
    pred = np.zeros_like(ref)
    pred[2:4, 2:22, 2:22] = LIVER  # a slab on the reference's first face
    gated = evaluate_case(pred, ref, (1.0, 1.0, 1.0), organs=[LIVER])[LIVER]
    free = evaluate_case(pred, ref, (1.0, 1.0, 1.0), organs=[LIVER], nsd_gate=None)[LIVER]
    expected_dsc = 2 * 800 / (8000 + 800)
    assert gated[0] == pytest.approx(expected_dsc) and expected_dsc < 0.2
    assert gated[1] == 0.0
    assert free[0] == gated[0]
    assert free[1] == pytest.approx(surface_dice(pred == 1, ref == 1, 1.0, 5.0))
    assert free[1] > 0.2


def _tube(z0: int, z1: int) -> np.ndarray:
    arr = np.zeros((20, 12, 12), np.uint8)
    arr[z0:z1, 4:8, 4:8] = 1
    return arr


@pytest.mark.parametrize("organ", [5, 6, 10])
def test_tubular_organs_are_scored_within_the_reference_z_range(organ):
    ref, pred = _tube(5, 15) * organ, _tube(0, 20) * organ
    spacing = (2.0, 1.0, 1.0)
    assert evaluate_case(pred, ref, spacing, organs=[organ])[organ] == (1.0, 1.0)
    assert evaluate_case(pred, ref, spacing, organs=[organ], tubular_crop="inclusive")[organ] == (
        1.0,
        1.0,
    )
    off = evaluate_case(pred, ref, spacing, organs=[organ], tubular_crop="off")[organ]
    assert off[0] == pytest.approx(2 * 10 / 30)
    # a non-tubular organ in the same place is not cropped
    liver = evaluate_case(_tube(0, 20), _tube(5, 15), spacing, organs=[LIVER])[LIVER]
    assert liver[0] == pytest.approx(off[0])


def test_flare_crop_leaves_out_the_reference_last_slice_like_the_official_code():
    ref, pred = _tube(5, 15) * AORTA, _tube(5, 14) * AORTA  # prediction misses slice 14
    spacing = (2.0, 1.0, 1.0)
    assert evaluate_case(pred, ref, spacing, organs=[AORTA])[AORTA] == (1.0, 1.0)
    inclusive = evaluate_case(pred, ref, spacing, organs=[AORTA], tubular_crop="inclusive")
    assert inclusive[AORTA][0] == pytest.approx(2 * 9 / 19)
    # a reference on a single slice leaves an empty crop: NaN, as the official code
    one = evaluate_case(_tube(5, 6) * AORTA, _tube(5, 6) * AORTA, spacing, organs=[AORTA])
    assert all(math.isnan(v) for v in one[AORTA])


def test_prediction_only_outside_the_z_range_scores_zero():
    ref = _tube(5, 15) * AORTA
    pred = _tube(16, 20) * AORTA
    assert evaluate_case(pred, ref, (1.0, 1.0, 1.0), organs=[AORTA], nsd_gate=None)[AORTA] == (
        0.0,
        0.0,
    )


def test_anisotropic_spacing_changes_nsd_as_expected():
    ref = np.zeros((20, 20, 20), np.uint8)
    ref[5:15, 5:15, 5:15] = LIVER
    pred = np.roll(ref, 1, axis=0)  # one slice off along z
    fine = evaluate_case(pred, ref, (1.0, 1.0, 1.0), organs=[LIVER])[LIVER]
    coarse = evaluate_case(pred, ref, (6.0, 1.0, 1.0), organs=[LIVER])[LIVER]
    assert fine[0] == coarse[0] == pytest.approx(0.9)
    assert fine[1] == pytest.approx(1.0)  # 1 mm shift, 5 mm tolerance
    # 6 mm shift: the z faces (about 200 of 2600 mm^2 of surface) leave the 5 mm tolerance
    assert 0.85 < coarse[1] < 0.95


def test_evaluate_volumes_checks_geometry_and_scores_missing_as_zero():
    ref = Volume(organ_phantom((16, 32, 32), (15.0, 12.0, 12.0), seed=0), (2.0, 1.0, 1.0))
    rows = evaluate_volumes("c1", None, ref)
    assert len(rows) == 13 and all(r.dsc == 0.0 and r.nsd == 0.0 for r in rows)
    other = Volume(ref.array, (2.0, 1.0, 1.5))
    with pytest.raises(ValueError, match="case 'c1'"):
        evaluate_volumes("c1", other, ref)


def test_evaluate_cases_lists_missing_cases():
    vol = Volume(organ_phantom((16, 32, 32), (15.0, 12.0, 12.0), seed=0), (2.0, 1.0, 1.0))
    rows, missing = evaluate_cases({"a": vol}, {"a": vol, "b": vol}, organs=[1, 2])
    assert missing == ["b"]
    assert [(r.case, r.organ, r.dsc) for r in rows] == [
        ("a", "liver", 1.0),
        ("a", "right_kidney", 1.0),
        ("b", "liver", 0.0),
        ("b", "right_kidney", 0.0),
    ]
    with pytest.raises(ValueError, match="at least one case"):
        evaluate_cases({}, {})


def test_summarize_means_and_stds():
    rows = [
        MetricRow("a", "liver", 1.0, 0.8),
        MetricRow("b", "liver", 0.5, 0.4),
        MetricRow("a", "spleen", 0.0, 0.0),
        MetricRow("b", "spleen", 1.0, math.nan),
    ]
    out = {r["organ"]: r for r in summarize(rows)}
    assert list(out) == ["liver", "spleen", "mean"]
    assert out["liver"]["dsc_mean"] == 0.75 and out["liver"]["dsc_std"] == 0.25
    assert out["spleen"]["nsd_mean"] == 0.0  # NaN left out
    assert out["mean"]["dsc_mean"] == pytest.approx((0.5 + 0.75) / 2)
    assert out["mean"]["dsc_std"] == pytest.approx(0.125)
    with pytest.raises(ValueError, match="at least one row"):
        summarize([])


def test_error_paths():
    a = np.zeros((4, 4, 4), np.uint8)
    with pytest.raises(ValueError, match="same shape"):
        evaluate_case(a, np.zeros((4, 4, 5), np.uint8), 1.0)
    with pytest.raises(TypeError, match="integer FLARE labels"):
        evaluate_case(a.astype(float), a, 1.0)
    with pytest.raises(ValueError, match="outside the 'flare' map"):
        evaluate_case(a + 14, a, 1.0)
    with pytest.raises(ValueError, match="organs must be FLARE labels"):
        evaluate_case(a, a, 1.0, organs=[0])
    with pytest.raises(ValueError, match="tubular_crop must be one of"):
        evaluate_case(a, a, 1.0, tubular_crop="slices")
    with pytest.raises(ValueError, match="nsd_gate must be in"):
        evaluate_case(a, a, 1.0, nsd_gate=2.0)
    with pytest.raises(ValueError, match="must be 3D"):
        evaluate_case(a[0], a[0], 1.0)


@pytest.mark.realdata
def test_equals_monai_on_a_real_amos_label(shared_data):
    from flare_uda.data.io import read_label
    from flare_uda.metrics.surface import mask_box

    ref_vol = read_label(shared_data / "ct" / "amos_0013_slab_label.nii.gz", "amos")
    box = tuple(slice(max(0, s.start - 2), s.stop + 2) for s in mask_box(ref_vol.array > 0))
    ref = ref_vol.array[box]  # the organs' box keeps MONAI's run short
    pred = perturb(ref, seed=5, drop=(2,))
    ours = evaluate_case(pred, ref, ref_vol.spacing, nsd_gate=None, tubular_crop="off")
    m_dsc, m_nsd = monai_case(pred, ref, ref_vol.spacing)
    present = [o for o in ours if not math.isnan(m_nsd[o - 1])]
    assert len(present) >= 8
    for organ in present:
        assert abs(ours[organ][0] - m_dsc[organ - 1]) < 1e-4, organ
        assert abs(ours[organ][1] - m_nsd[organ - 1]) < 1e-4, organ


def official_flare24(pred: np.ndarray, ref: np.ndarray, spacing) -> dict[int, tuple[float, float]]:
    """The official FLARE 2024 script's logic, with MONAI in place of DeepMind's code."""
    from monai.metrics import compute_dice, compute_surface_dice

    def onehot(m):
        return torch.as_tensor(np.stack([~m, m])[None].astype(np.float32))

    out = {}
    for i in range(1, 14):
        g, s = ref == i, pred == i
        if not g.any() and not s.any():
            out[i] = (1.0, 1.0)
        elif not g.any() or not s.any():
            out[i] = (0.0, 0.0)
        else:
            if i in (5, 6, 10):  # gt_data[:, :, z_lower:z_upper] in nibabel's (x, y, z) order
                z = np.flatnonzero(g.any(axis=(1, 2)))
                g, s = g[z.min() : z.max()], s[z.min() : z.max()]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dsc = compute_dice(onehot(s), onehot(g), include_background=False).item()
                nsd = 0.0
                if dsc >= 0.2:
                    nsd = compute_surface_dice(
                        onehot(s), onehot(g), [NSD_TOLERANCE_MM[i]], spacing=spacing,
                        use_subvoxels=True,
                    ).item()  # fmt: skip
            out[i] = (dsc, nsd)
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_equals_the_official_flare24_logic_with_rules_on(seed):
    ref = organ_phantom((32, 64, 64), (250 / 32, 410 / 64, 410 / 64), seed=seed)
    pred = perturb(ref, seed=seed + 20, drop=(8,))
    pred[pred == 4] = 0  # the pancreas cut to its left end: low DSC or empty
    pred[(ref == 4) & (np.arange(64)[None, None, :] < 28)] = 4
    spacing = (2.5, 1.2, 1.2)
    ours = evaluate_case(pred, ref, spacing)
    official = official_flare24(pred, ref, spacing)
    for organ in range(1, 14):
        np.testing.assert_allclose(ours[organ], official[organ], atol=1e-4, err_msg=str(organ))
