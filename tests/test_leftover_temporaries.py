"""Temporaries of a killed run are never read as inputs, and the next run removes them."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from inference_support import blob_volume, tiny_network_segmenter

from flare_uda._atomic import atomic_path, clean_stale_temporaries, is_hidden_or_temporary
from flare_uda.cli import main
from flare_uda.data.datasets import read_dataset, read_folder, write_dataset
from flare_uda.data.io import list_volume_files, write_volume
from flare_uda.metrics.folders import list_cases
from flare_uda.volume import Case


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def leftovers(folder, pid: int) -> list:
    """What a killed writer leaves: a half-written volume and a partial download."""
    folder.mkdir(parents=True, exist_ok=True)
    junk = [
        folder / f".a_0000.{pid}-0123abcd.tmp.nii.gz",  # this package's temporary
        folder / ".b_0000.0123abcd.tmp.nii.gz",  # an older version's (no pid)
        folder / "._a_0000.nii.gz",  # a macOS companion file
        folder / "c_0000.nii.gz.part",  # a download in progress
    ]
    for path in junk:
        path.write_bytes(b"\x1f\x8b half written")
    return junk


@pytest.mark.parametrize(
    "name, skipped",
    [
        ("a.nii.gz", False),
        ("scan.mha", False),
        (".a.123-0123abcd.tmp.nii.gz", True),
        ("._a.nii.gz", True),
        ("a.nii.gz~", True),
        ("a.nii.gz.crdownload", True),
        ("a.nii.gz.tmp", True),
    ],
)
def test_hidden_and_temporary_names(name, skipped):
    assert is_hidden_or_temporary(name) is skipped


def test_discovery_skips_leftovers(tmp_path, dead_pid):
    leftovers(tmp_path, dead_pid)
    write_volume(blob_volume(), tmp_path / "a_0000.nii.gz")
    assert [p.name for p in list_volume_files(tmp_path)] == ["a_0000.nii.gz"]
    assert [c.case_id for c in read_folder(tmp_path)] == ["a"]
    assert list(list_cases(tmp_path)) == ["a"]


def test_dataset_reading_skips_leftovers(tmp_path, dead_pid):
    image = blob_volume()
    write_dataset([Case("a", image, modality="MR")], tmp_path, progress=False)
    leftovers(tmp_path / "imagesTr", dead_pid)
    assert [c.case_id for c in read_dataset(tmp_path)] == ["a"]


def test_stale_temporaries_removed_live_ones_kept(tmp_path, dead_pid):
    junk = leftovers(tmp_path, dead_pid)
    live = tmp_path / f".d_0000.{os.getpid()}-0123abcd.tmp.nii.gz"
    live.write_bytes(b"being written")
    stale_dir = tmp_path / f".model.{dead_pid}-89abcdef.tmp"
    (stale_dir / "sub").mkdir(parents=True)
    removed = clean_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted([junk[0], junk[1], stale_dir])
    assert live.exists() and junk[2].exists() and junk[3].exists()  # not ours: left alone


def test_first_write_into_a_folder_cleans_it(tmp_path, dead_pid):
    junk = leftovers(tmp_path / "out", dead_pid)
    with atomic_path(tmp_path / "out" / "x.txt") as tmp:
        tmp.write_text("x")
    assert not junk[0].exists() and not junk[1].exists()
    assert (tmp_path / "out" / "x.txt").read_text() == "x"


def test_predict_after_a_killed_predict(tmp_path, dead_pid):
    """A rerun of predict on the folder that a killed run wrote into: inputs and outputs."""
    model = tiny_network_segmenter().save(tmp_path / "model")
    images = tmp_path / "images"
    write_volume(blob_volume(shape=(12, 20, 20), seed=1), images / "a_0000.nii.gz")
    junk = leftovers(images, dead_pid) + leftovers(tmp_path / "pred", dead_pid)[:2]
    args = ["predict", "--model", str(model), "-i", str(images), "-o", str(tmp_path / "pred")]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "wrote 1 label volume(s)" in res.output
    assert not junk[-1].exists() and not junk[-2].exists()  # cleaned in the output folder
    names = {p.name for p in (tmp_path / "pred").iterdir()}
    assert names == {"a.nii.gz", "._a_0000.nii.gz", "c_0000.nii.gz.part"}  # others' files stay


def test_evaluate_ignores_leftovers(tmp_path, dead_pid):
    label = blob_volume(shape=(8, 12, 12)).with_array(np.ones((8, 12, 12), np.uint8))
    for folder in ("pred", "ref"):
        write_volume(label, tmp_path / folder / "a.nii.gz", is_label=True)
    leftovers(tmp_path / "pred", dead_pid)
    args = ["evaluate", "--pred", str(tmp_path / "pred"), "--ref", str(tmp_path / "ref")]
    res = CliRunner().invoke(main, args + ["--out", str(tmp_path / "eval"), "--no-plot"])
    assert res.exit_code == 0, res.output
    assert "without reference" not in res.output and "| liver | 1.0000" in res.output
