"""An unwritable output is refused before any work, with one line naming it (exit code 2)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from inference_support import blob_volume
from io_support import read_only_folder

import flare_uda.cli.predict
import flare_uda.cli.train
import flare_uda.cli.translate
import flare_uda.data.datasets
import flare_uda.data.phantom
import flare_uda.metrics.folders
import flare_uda.pipeline.adapt_inputs
import flare_uda.pipeline.demo
from flare_uda._atomic import require_writable_dir
from flare_uda.cli import main
from flare_uda.data.io import write_volume

# command (OUT is the output), and the first piece of work it must not reach
COMMANDS = {
    "predict": (
        ["predict", "--model", "{d}/in", "-i", "{d}/in", "-o", "OUT"],
        (flare_uda.cli.predict, "load_segmenter"),
    ),
    "train": (
        ["train", "--images", "{d}/in", "--out", "OUT", "--preset", "tiny"],
        (flare_uda.cli.train, "load_training_cases"),
    ),
    "evaluate": (
        ["evaluate", "--pred", "{d}/in", "--ref", "{d}/in", "--out", "OUT"],
        (flare_uda.metrics.folders, "evaluate_folders"),
    ),
    "translate fit": (
        ["translate", "fit", "--source", "{d}/in", "--target", "{d}/in", "--out", "OUT"],
        (flare_uda.data.datasets, "load_cases"),
    ),
    "translate apply": (
        ["translate", "apply", "--model", "{d}/in", "-i", "{d}/in", "-o", "OUT/new"],
        (flare_uda.cli.translate, "_image_files"),
    ),
    "phantom": (["phantom", "--out", "OUT"], (flare_uda.data.phantom, "write_cohort")),
    "demo": (["demo", "--preset", "tiny", "--out", "OUT"], (flare_uda.pipeline.demo, "run_demo")),
    "adapt": (
        ["adapt", "--source", "{d}/in", "--target", "{d}/in", "--out", "OUT"],
        (flare_uda.pipeline.adapt_inputs, "read_sources"),
    ),
}


@pytest.fixture
def inputs(tmp_path):
    write_volume(blob_volume(shape=(8, 12, 12)), tmp_path / "in" / "a_0000.nii.gz")
    return tmp_path


def run(argv, folder, out, monkeypatch, work):
    def reached(*args, **kwargs):
        raise AssertionError("work started before the output was checked")

    monkeypatch.setattr(*work, reached)
    args = [a.replace("{d}", str(folder)).replace("OUT", str(out)) for a in argv]
    return CliRunner().invoke(main, args)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_read_only_output_refused_before_work(inputs, monkeypatch, command):
    argv, work = COMMANDS[command]
    with read_only_folder(inputs / "ro") as ro:
        res = run(argv, inputs, ro, monkeypatch, work)
    assert not isinstance(res.exception, AssertionError), res.output
    assert res.exit_code == 2, res.output
    assert "expected a writable folder, got " in res.stderr and "ro" in res.stderr
    assert "Traceback" not in res.output


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_output_that_is_a_file_refused_before_work(inputs, monkeypatch, command):
    argv, work = COMMANDS[command]
    afile = inputs / "afile"
    afile.write_text("not a folder")
    res = run(argv, inputs, afile, monkeypatch, work)
    assert not isinstance(res.exception, AssertionError), res.output
    assert res.exit_code == 2, res.output
    assert "afile" in res.stderr and ("is a file" in res.stderr or "existing file" in res.stderr)
    assert afile.read_text() == "not a folder"


def test_writable_check_names_the_folder_and_cleans_nothing_else(tmp_path):
    with read_only_folder(tmp_path / "ro") as ro:
        with pytest.raises(PermissionError, match=r"expected a writable folder, got .*ro \("):
            require_writable_dir(ro)
        with pytest.raises(PermissionError, match=r"expected a writable folder, got .*ro/a/b"):
            require_writable_dir(ro / "a" / "b")
    assert require_writable_dir(tmp_path / "new" / "deep").is_dir()
    assert list((tmp_path / "new" / "deep").iterdir()) == []  # the probe file is gone
