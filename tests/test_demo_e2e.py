"""End to end: `flare-uda demo --preset tiny` runs every stage and the ablation, then resumes."""

from __future__ import annotations

import csv

from click.testing import CliRunner
from conftest import TINY_DEMO

from flare_uda.cli import main
from flare_uda.pipeline.config import ABLATION_SETTINGS


def test_tiny_demo_runs_every_stage_and_resumes(tiny_demo_run):
    out = tiny_demo_run
    for name in ("report.md", "ablation.csv", "ablation.png", "overlays.png", "config.yaml"):
        assert (out / name).is_file(), name
    with open(out / "ablation.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["setting"] for r in rows} == set(ABLATION_SETTINGS)
    assert {r["sequence"] for r in rows} == {"T1", "T2", "all"}
    for r in rows:
        assert 0.0 <= float(r["dsc"]) <= 1.0
    stages = sorted(p.name.split("-")[0] for p in (out / "stages").iterdir())
    assert "mdm" in stages and "self_training" in stages and "train_final" in stages
    report = (out / "report.md").read_text()
    assert "## Stages (wall time)" in report and "| train_final |" in report
    assert report.count("| ran |") >= 10 and "| cached |" not in report
    # A second run finds every stage cached and rewrites the same table.
    before = (out / "ablation.csv").read_text()
    res = CliRunner().invoke(main, [*TINY_DEMO, "--out", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert (out / "ablation.csv").read_text() == before
    report = (out / "report.md").read_text()
    assert "| ran |" not in report and report.count("| cached |") >= 15


def test_demo_rejects_unknown_preset():
    res = CliRunner().invoke(main, ["demo", "--preset", "quik"])
    assert res.exit_code == 2
    assert "Did you mean 'quick'" in res.output


def test_demo_prints_config():
    res = CliRunner().invoke(main, ["demo", "--preset", "tiny", "--print-config"])
    assert res.exit_code == 0
    assert "self_training:" in res.output and "rounds: 2" in res.output


def test_demo_rejects_an_unknown_device(tmp_path):
    res = CliRunner().invoke(
        main, ["demo", "--preset", "tiny", "--device", "tpu9", "--out", str(tmp_path)]
    )
    assert res.exit_code == 2
    assert "--device" in res.output and "expected a device like" in res.output


def test_demo_config_sections_override_the_preset(tmp_path):
    partial = tmp_path / "partial.yaml"
    partial.write_text("self_training: {rounds: 3}\nablation: [asit]\n")
    args = ["demo", "--preset", "tiny", "--config", str(partial), "--print-config"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "rounds: 3" in res.output and "ablation: [asit]" in res.output
    assert "preset: tiny" in res.output  # the rest is the preset's


def test_demo_rejects_a_bad_config_before_any_work(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("mdm:\n  registrar: {name: torch, options: {shrink_factor: [4, 2]}}\n")
    res = CliRunner().invoke(main, ["demo", "--config", str(bad), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "unknown option of mdm.registrar.options 'shrink_factor'" in res.output
    assert "Did you mean 'shrink_factors'" in res.output
    assert not (tmp_path / "o").exists()
