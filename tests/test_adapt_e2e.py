"""End to end: `flare-uda adapt` on the tiny phantom written as a user's folders.

Sources: an nnU-Net raw dataset (FLARE labels) and a plain folder holding an MHA
image with labels/ and a DICOM series with a {case}_label file (AMOS map);
target: a plain folder of MR; sequences from a CSV; scored on target labels.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from adapt_support import write_user_folders
from click.testing import CliRunner

from flare_uda.cli import main
from flare_uda.data.io import read_label, read_volume


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapt_user")
    paths = write_user_folders(root)
    paths["config"] = root / "two_settings.yaml"
    paths["config"].write_text("ablation: [asit, asit_mdm_plf]\n")
    return paths


def adapt_args(folders: dict[str, Path], out: Path) -> list[str]:
    return [
        "adapt",
        "--source", str(folders["ct_nnunet"]),
        "--source", f"{folders['ct_plain']}:amos",
        "--target", str(folders["mr"]),
        "--sequences", str(folders["sequences"]),
        "--target-labels", str(folders["mr_labels"]),
        "--config", str(folders["config"]),
        "--preset", "tiny", "--device", "cpu", "--out", str(out),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def adapt_run(folders, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("adapt_run") / "run"
    res = CliRunner().invoke(main, [*adapt_args(folders, out), "--quiet"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "model: " in res.output and "report: " in res.output
    return out


def label_digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.nii.gz")}


def test_adapt_writes_model_labels_report_and_scores(adapt_run, folders):
    out = adapt_run
    assert sorted(p.name for p in (out / "model").iterdir()) == [
        "network.json",
        "plan.json",
        "weights.pt",
    ]
    mr_ids = sorted(p.name.removesuffix(".nii.gz") for p in folders["mr"].glob("*.nii.gz"))
    assert sorted(label_digests(out / "labels")) == [f"{c}.nii.gz" for c in mr_ids]
    for cid in mr_ids:  # each label on its own image's grid
        image = read_volume(folders["mr"] / f"{cid}.nii.gz")
        assert read_label(out / "labels" / f"{cid}.nii.gz").same_geometry(image)
    report = (out / "report.md").read_text()
    for figure in ("labels.png", "ablation.png", "overlays.png"):
        assert f"({figure})" in report and (out / figure).is_file()
    assert "| source | " in report and "| amos | 2 |" in report and "| flare | 1 |" in report
    assert "MDM moves `T1` labels onto `T2` cases" in report
    with open(out / "ablation.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["setting"] for r in rows} == {"asit", "asit_mdm_plf"}
    assert {r["sequence"] for r in rows} == {"T1", "T2", "all"}
    inputs = json.loads((out / "inputs.json").read_text())
    assert [(f["role"], f["layout"], f["label_map"]) for f in inputs["folders"]] == [
        ("source", "nnunet", "flare"),
        ("source", "plain", "amos"),
        ("target", "plain", None),
        ("target labels", "labels", "flare"),
    ]
    assert inputs["folders"][1]["cases"] == ["ct_001", "ct_002"]  # MHA and DICOM series
    assert (out / "config.yaml").read_text().count("ablation: [asit, asit_mdm_plf]") == 1
    assert len(list((out / "pseudo_labels").glob("*.nii.gz"))) >= 1


def test_predict_uses_the_produced_model_as_is(adapt_run, folders, tmp_path):
    args = ["predict", "--model", str(adapt_run / "model"), "-i", str(folders["mr"])]
    res = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "pred")])
    assert res.exit_code == 0, res.output
    produced = sorted(p.name for p in (tmp_path / "pred").glob("*.nii.gz"))
    assert produced == sorted(label_digests(adapt_run / "labels"))
    case = produced[0]
    pred = read_label(tmp_path / "pred" / case)
    assert pred.same_geometry(read_volume(folders["mr"] / case))
    assert set(np.unique(pred.array)) <= set(range(14))


def test_a_rerun_comes_from_the_cache(adapt_run, folders):
    before = label_digests(adapt_run / "labels"), (adapt_run / "ablation.csv").read_text()
    res = CliRunner().invoke(main, [*adapt_args(folders, adapt_run), "--quiet"])
    assert res.exit_code == 0, res.output
    report = (adapt_run / "report.md").read_text()
    assert "| ran |" not in report and report.count("| cached |") >= 9
    assert (label_digests(adapt_run / "labels"), (adapt_run / "ablation.csv").read_text()) == before


def test_a_run_resumes_from_the_stages_a_kill_left(adapt_run, folders, tmp_path):
    """The stages finished before a kill are reused; the rest gives the uninterrupted results."""
    resumed = tmp_path / "resumed"
    kept = ("translate_asit", "train_asit-", "predict_pseudo_asit")
    for stage in (adapt_run / "stages").iterdir():
        if stage.name.startswith(kept):
            shutil.copytree(stage, resumed / "stages" / stage.name)
    res = CliRunner().invoke(main, adapt_args(folders, resumed))
    assert res.exit_code == 0, res.output
    assert "cached translate_asit" in res.output and "cached train_asit-" in res.output
    assert "run    train_final" in res.output and "run    translate" not in res.output
    assert label_digests(resumed / "labels") == label_digests(adapt_run / "labels")
    assert (resumed / "ablation.csv").read_text() == (adapt_run / "ablation.csv").read_text()


@pytest.mark.slow
def test_a_killed_run_resumes_with_identical_results(adapt_run, folders, tmp_path):
    """A real SIGKILL once the first training finished (two fresh processes, ~50 s)."""
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    argv = [sys.executable, "-m", "flare_uda", *adapt_args(folders, out)]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
    )
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "done   train_asit " in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(lines)
    assert not (out / "model").exists()
    res = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "cached translate_asit" in res.stdout and "cached train_asit" in res.stdout
    assert "run    train_final" in res.stdout
    assert label_digests(out / "labels") == label_digests(adapt_run / "labels")
    assert (out / "ablation.csv").read_text() == (adapt_run / "ablation.csv").read_text()


def test_the_python_api_is_the_same_run(adapt_run, folders):
    """``flare_uda.adapt`` with the CLI's arguments finds the CLI's run in the cache."""
    import flare_uda

    result = flare_uda.adapt(
        [folders["ct_nnunet"], f"{folders['ct_plain']}:amos"],
        folders["mr"],
        folders["config"],
        out=adapt_run,
        sequences=folders["sequences"],
        target_labels=folders["mr_labels"],
        preset="tiny",
        device="cpu",
        progress=False,
    )
    assert isinstance(result, flare_uda.AdaptResult)
    assert {r.status for r in result.stages} == {"cached"}
    assert result.model_dir == adapt_run / "model" and result.settings == ("asit", "asit_mdm_plf")
    assert set(result.scores) == {"asit", "asit_mdm_plf"}
    assert result.sequences == {
        "mr_t1_000": "T1",
        "mr_t1_001": "T1",
        "mr_t2_000": "T2",
        "mr_t2_001": "T2",
    }
    for cid, label in result.labels.items():
        np.testing.assert_array_equal(
            label.array, read_label(adapt_run / "labels" / f"{cid}.nii.gz").array
        )
    assert set(result.pseudo_labels) <= set(result.labels)
    assert result.notes["mdm"]["transfers"] and "uncertainty" in result.notes["self_training"]
