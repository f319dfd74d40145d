"""``flare-uda evaluate`` on folders: round trips, MONAI agreement, missing cases, errors."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from flare_uda.cli import main
from flare_uda.data.io import write_volume
from flare_uda.data.labels import NSD_TOLERANCE_MM, get_label_map, organ_name
from flare_uda.metrics.folders import case_id_of, list_cases
from flare_uda.metrics.synthetic import organ_phantom, perturb
from flare_uda.volume import Volume

SPACING = (3.0, 1.5, 1.5)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path, dict, dict]:
    ref_dir, pred_dir = tmp_path / "ref", tmp_path / "pred"
    refs, preds = {}, {}
    for i in range(3):
        ref = organ_phantom((32, 64, 64), (250 / 32, 410 / 64, 410 / 64), seed=i)
        pred = perturb(ref, seed=100 + i, drop=(9,) if i == 0 else ())
        refs[f"case{i}"], preds[f"case{i}"] = ref, pred
        write_volume(Volume(ref, SPACING), ref_dir / f"case{i}.nii.gz", is_label=True)
        write_volume(Volume(pred, SPACING), pred_dir / f"case{i}.nii.gz", is_label=True)
    return ref_dir, pred_dir, refs, preds


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def run(*args: str):
    return CliRunner().invoke(main, ["evaluate", *map(str, args)], catch_exceptions=False)


def test_folder_against_itself_scores_one_everywhere(folders, tmp_path):
    ref_dir, _, _, _ = folders
    result = run("--pred", ref_dir, "--ref", ref_dir, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    rows = read_rows(tmp_path / "out" / "metrics.csv")
    assert len(rows) == 3 * 13
    assert all(float(r["dsc"]) == 1.0 and float(r["nsd"]) == 1.0 for r in rows)
    summary = read_rows(tmp_path / "out" / "summary.csv")
    assert summary[-1]["organ"] == "mean" and float(summary[-1]["dsc_mean"]) == 1.0
    assert list(summary[0]) == ["organ", "dsc_mean", "dsc_std", "nsd_mean", "nsd_std"]
    assert (tmp_path / "out" / "boxplot.png").stat().st_size > 1000
    assert (tmp_path / "out" / "missing.txt").read_text() == ""


def test_perturbed_copies_equal_monai(folders, tmp_path):
    from monai.metrics import compute_dice, compute_surface_dice

    ref_dir, pred_dir, refs, preds = folders
    out = tmp_path / "out"
    result = run(
        "--pred", pred_dir, "--ref", ref_dir, "--out", out, "--workers", "2",
        "--no-nsd-gate", "--tubular-crop", "off", "--no-plot",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {(r["case"], r["organ"]): r for r in read_rows(out / "metrics.csv")}
    tols = [NSD_TOLERANCE_MM[o] for o in range(1, 14)]

    def onehot(a):
        t = torch.as_tensor(a.astype(np.int64))
        return torch.nn.functional.one_hot(t, 14).permute(3, 0, 1, 2)[None].to(torch.uint8)

    compared = 0
    for case in refs:
        p, r = onehot(preds[case]), onehot(refs[case])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m_dsc = compute_dice(p, r, include_background=False)[0]
            m_nsd = compute_surface_dice(p, r, tols, spacing=SPACING, use_subvoxels=True)[0]
        for organ in range(1, 14):
            if torch.isnan(m_nsd[organ - 1]):
                continue
            row = rows[(case, organ_name(organ))]
            assert abs(float(row["dsc"]) - m_dsc[organ - 1].item()) < 1e-4
            assert abs(float(row["nsd"]) - m_nsd[organ - 1].item()) < 1e-4
            compared += 1
    assert compared >= 30
    assert float(rows[("case0", "gallbladder")]["dsc"]) == 0.0


def test_missing_prediction_is_scored_zero_and_listed(folders, tmp_path):
    ref_dir, pred_dir, _, _ = folders
    (pred_dir / "case1.nii.gz").unlink()
    result = run("--pred", pred_dir, "--ref", ref_dir, "--out", tmp_path / "out", "--no-plot")
    assert result.exit_code == 0
    assert "case1" in result.output
    assert (tmp_path / "out" / "missing.txt").read_text() == "case1\n"
    rows = [r for r in read_rows(tmp_path / "out" / "metrics.csv") if r["case"] == "case1"]
    assert len(rows) == 13 and all(r["dsc"] == r["nsd"] == "0.000000" for r in rows)


def test_geometry_mismatch_names_the_case(folders, tmp_path):
    ref_dir, pred_dir, _, preds = folders
    write_volume(Volume(preds["case2"], (3.0, 1.5, 2.0)), pred_dir / "case2.nii.gz", is_label=True)
    result = CliRunner().invoke(
        main, ["evaluate", "--pred", str(pred_dir), "--ref", str(ref_dir), "--out",
               str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "case 'case2'" in result.output and "geometry" in result.output


def test_out_must_not_overlap_the_inputs(folders):
    ref_dir, pred_dir, _, _ = folders
    result = CliRunner().invoke(
        main, ["evaluate", "--pred", str(pred_dir), "--ref", str(ref_dir), "--out", str(ref_dir)]
    )
    assert result.exit_code != 0 and "overlaps the input" in result.output


def test_label_map_remap_and_file_matching(tmp_path):
    flare = organ_phantom((24, 48, 48), (250 / 24, 410 / 48, 410 / 48), seed=3)
    amos = np.zeros_like(flare)
    for organ, value in enumerate(get_label_map("amos").source_values, start=1):
        amos[flare == organ] = value
    write_volume(Volume(amos, SPACING), tmp_path / "ref" / "a.nii.gz", is_label=True)
    write_volume(Volume(amos, SPACING), tmp_path / "pred" / "a_0000.mha", is_label=True)
    result = run(
        "--pred", tmp_path / "pred", "--ref", tmp_path / "ref", "--out", tmp_path / "out",
        "--label-map", "amos", "--no-plot",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = read_rows(tmp_path / "out" / "metrics.csv")
    assert len(rows) == 13 and all(float(r["dsc"]) == 1.0 for r in rows)
    # a FLARE-ordered prediction against the AMOS reference
    write_volume(Volume(flare, SPACING), tmp_path / "pred" / "a_0000.mha", is_label=True)
    result = run(
        "--pred", tmp_path / "pred", "--ref", tmp_path / "ref", "--out", tmp_path / "out",
        "--label-map", "amos", "--pred-label-map", "flare", "--no-plot",
    )  # fmt: skip
    assert all(float(r["dsc"]) == 1.0 for r in read_rows(tmp_path / "out" / "metrics.csv"))


def test_case_ids_and_duplicates(tmp_path):
    assert case_id_of("x/abc_0000.nii.gz") == "abc"
    assert case_id_of("abc.mha") == "abc" and case_id_of("abc.nii") == "abc"
    assert case_id_of("notes.txt") is None
    (tmp_path / "a.nii.gz").write_bytes(b"")
    (tmp_path / "a_0000.mha").write_bytes(b"")
    with pytest.raises(ValueError, match="one file per case"):
        list_cases(tmp_path)
    with pytest.raises(FileNotFoundError, match="existing folder"):
        list_cases(tmp_path / "nope")


def test_empty_reference_folder_is_an_error(tmp_path):
    (tmp_path / "ref").mkdir()
    (tmp_path / "pred").mkdir()
    result = CliRunner().invoke(
        main, ["evaluate", "--pred", str(tmp_path / "pred"), "--ref", str(tmp_path / "ref"),
               "--out", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code != 0 and "found none" in result.output


def test_partial_label_map_scores_only_its_organs(tmp_path):
    flare = organ_phantom((24, 48, 48), (250 / 24, 410 / 48, 410 / 48), seed=4)
    chaos = np.zeros_like(flare)  # CHAOS MR: 1 liver, 2 right kidney, 3 left kidney, 4 spleen
    for organ, value in ((1, 1), (2, 2), (13, 3), (3, 4)):
        chaos[flare == organ] = value
    write_volume(Volume(chaos, SPACING), tmp_path / "ref" / "c.nii.gz", is_label=True)
    write_volume(Volume(flare, SPACING), tmp_path / "pred" / "c.nii.gz", is_label=True)
    result = run(
        "--pred", tmp_path / "pred", "--ref", tmp_path / "ref", "--out", tmp_path / "out",
        "--label-map", "chaos", "--pred-label-map", "flare", "--no-plot",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = read_rows(tmp_path / "out" / "metrics.csv")
    assert [r["organ"] for r in rows] == ["liver", "right_kidney", "spleen", "left_kidney"]
    assert all(float(r["dsc"]) == 1.0 for r in rows)
