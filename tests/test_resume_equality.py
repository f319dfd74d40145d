"""A resumed demo is bit-identical to an uninterrupted one (tiny preset, CPU)."""

from __future__ import annotations

import hashlib
import shutil

import pytest
from click.testing import CliRunner
from conftest import TINY_DEMO

from flare_uda.cli import main


def digests(run) -> dict[str, str]:
    """sha256 of the ablation table, of every predicted label file and of every model's weights."""
    files = [
        run / "ablation.csv",
        *sorted((run / "stages").glob("*/labels/*.nii.gz")),
        *sorted((run / "stages").glob("*/model/weights.pt")),
    ]
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.parametrize(
    "kept",
    [
        ("phantom",),  # killed after the cohort was written (the case the float64 bug hit)
        pytest.param(("phantom", "translate", "train_only_ct"), marks=pytest.mark.slow),
    ],
)
def test_resume_after_a_kill_gives_identical_results(tiny_demo_run, tmp_path, kept):
    """A run killed once the stages ``kept`` had finished, then rerun, computes the rest again."""
    resumed = tmp_path / "resumed"
    for stage in (tiny_demo_run / "stages").iterdir():
        if stage.name.startswith(kept):
            shutil.copytree(stage, resumed / "stages" / stage.name)
    assert {p.name.split("-")[0].split("_")[0] for p in (resumed / "stages").iterdir()} == {
        k.split("_")[0] for k in kept
    }
    res = CliRunner().invoke(main, [*TINY_DEMO, "--out", str(resumed)])
    assert res.exit_code == 0, res.output
    expected = digests(tiny_demo_run)
    assert len(expected) > 20
    assert digests(resumed) == expected
