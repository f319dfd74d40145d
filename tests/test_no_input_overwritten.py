"""Outputs never merge into or write over what is already there: translate apply, demo --config."""

from __future__ import annotations

import json

import click
import numpy as np
import pytest
from click.testing import CliRunner
from inference_support import blob_volume

import flare_uda.cli.translate as translate_cli
from flare_uda.cli import main
from flare_uda.cli.demo import _refuse_overwriting
from flare_uda.data.datasets import read_dataset, read_manifest, write_dataset
from flare_uda.pipeline.presets import get_preset
from flare_uda.translation import get_translator
from flare_uda.volume import Case


@pytest.fixture
def setup(tmp_path):
    """A CT dataset (2 cases), an MR dataset (T1 + T2, 3 cases) and an identity translator."""
    image = blob_volume(shape=(8, 16, 16), margin=(2, 4, 4))
    label = image.with_array((image.array > 1).astype(np.uint8))
    ct = [Case(f"ct_{i}", image, label) for i in range(2)]
    mr = [Case(f"mr_{i}", image, None, "MR", ("T1", "T2", "T2")[i]) for i in range(3)]
    write_dataset(ct, tmp_path / "ct", progress=False)
    write_dataset(mr, tmp_path / "mr", progress=False)
    get_translator("identity").fit(ct, mr).save(tmp_path / "model")
    return tmp_path


def apply(root, inp, out, *extra):
    args = ["translate", "apply", "--model", str(root / "model"), "-i", str(root / inp)]
    return CliRunner().invoke(main, [*args, "-o", str(root / out), *extra])


def snapshot(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_apply_into_an_existing_dataset_is_refused(setup):
    before = snapshot(setup / "mr")
    res = apply(setup, "ct", "mr")
    assert res.exit_code == 2
    assert "expected an empty or new output folder" in res.output and "--overwrite" in res.output
    assert snapshot(setup / "mr") == before  # sequences and counts untouched


def test_overwrite_replaces_instead_of_merging(setup):
    assert apply(setup, "mr", "fake").exit_code == 0
    assert len(read_manifest(setup / "fake")) == 3
    res = apply(setup, "ct", "fake", "--overwrite")
    assert res.exit_code == 0, res.output
    manifest = read_manifest(setup / "fake")
    assert sorted(manifest) == ["ct_0", "ct_1"]  # no MR case left over from the first output
    assert {m["modality"] for m in manifest.values()} == {"MR"}
    assert json.loads((setup / "fake" / "dataset.json").read_text())["numTraining"] == 2
    assert [c.case_id for c in read_dataset(setup / "fake")] == ["ct_0", "ct_1"]


def test_overwrite_refuses_a_folder_with_other_files(setup):
    (setup / "fake").mkdir()
    (setup / "fake" / "notes.txt").write_text("mine")
    res = apply(setup, "ct", "fake", "--overwrite")
    assert res.exit_code == 2 and "also holds ['notes.txt']" in res.output
    assert (setup / "fake" / "notes.txt").read_text() == "mine"


def test_a_failed_apply_leaves_the_earlier_output(setup, monkeypatch):
    assert apply(setup, "ct", "fake").exit_code == 0
    before = snapshot(setup / "fake")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(translate_cli, "_write_dataset_files", fail)  # after every volume
    res = apply(setup, "mr", "fake", "--overwrite")
    assert res.exit_code == 1 and "disk full" in res.output
    assert snapshot(setup / "fake") == before
    assert sorted(p.name for p in setup.iterdir()) == ["ct", "fake", "model", "mr"]


def test_leftovers_in_the_input_are_not_copied(setup):
    (setup / "ct" / "labelsTr" / ".ct_0.123-0123abcd.tmp.nii.gz").write_bytes(b"half")
    assert apply(setup, "ct", "fake").exit_code == 0
    assert sorted(p.name for p in (setup / "fake" / "labelsTr").iterdir()) == [
        "ct_0.nii.gz",
        "ct_1.nii.gz",
    ]


@pytest.fixture
def tiny_yaml() -> str:
    return get_preset("tiny").to_yaml()


def test_demo_config_inside_out_is_never_replaced(tmp_path, tiny_yaml):
    run = tmp_path / "run"
    run.mkdir()
    mine = run / "config.yaml"
    mine.write_text("# my settings\n" + tiny_yaml)
    args = ["demo", "--config", str(mine), "--out", str(run), "--quiet"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2 and "would overwrite the input config" in res.output
    assert mine.read_text().startswith("# my settings")
    for name in ("report.md", "stages/x.yaml"):
        with pytest.raises(click.BadParameter, match="would overwrite the input config"):
            _refuse_overwriting(run / name, run, tiny_yaml)


def test_demo_may_resume_from_its_own_saved_config(tmp_path, tiny_yaml):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(tiny_yaml)  # what the run itself wrote there
    _refuse_overwriting(run / "config.yaml", run, tiny_yaml)
    _refuse_overwriting(run / "my.yaml", run, tiny_yaml)  # a name the run does not write
    _refuse_overwriting(tmp_path / "config.yaml", run, tiny_yaml)  # outside the run
