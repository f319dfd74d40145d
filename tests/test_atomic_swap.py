"""Folders are replaced by renames: a failure or a kill leaves the old content or the new."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
import torch
from inference_support import tiny_network_segmenter

import flare_uda.data.phantom.cohort as cohort
import flare_uda.segmentation.network_segmenter as network_segmenter
from flare_uda._atomic import clean_stale_temporaries, replace_dir
from flare_uda.data.datasets import read_manifest
from flare_uda.segmentation.network_segmenter import NetworkSegmenter


@pytest.fixture(scope="module")
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def folder_with(path, **files: str):
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def test_replace_dir_swaps_and_leaves_no_temporaries(tmp_path):
    target = folder_with(tmp_path / "m", a="old", b="old")
    with replace_dir(target) as new:
        (new / "a").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    assert [p.name for p in target.iterdir()] == ["a"]
    assert (target / "a").read_text() == "new"


def test_replace_dir_keeps_other_entries_when_asked(tmp_path):
    target = folder_with(tmp_path / "m", a="old", checkpoint="ckpt")
    folder_with(target / "sub", x="deep")
    with replace_dir(target, keep_others=True) as new:
        (new / "a").write_text("new")
    assert (target / "a").read_text() == "new"
    assert (target / "checkpoint").read_text() == "ckpt"
    assert (target / "sub" / "x").read_text() == "deep"


def test_replace_dir_failure_keeps_the_old_folder(tmp_path):
    target = folder_with(tmp_path / "m", a="old")
    with pytest.raises(RuntimeError, match="disk full"), replace_dir(target) as new:
        (new / "a").write_text("half")
        raise RuntimeError("disk full")
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    assert (target / "a").read_text() == "old"


@pytest.mark.parametrize("new_complete", [True, False])
def test_a_swap_killed_between_its_renames_is_finished_or_undone(tmp_path, dead_pid, new_complete):
    """After ``rename(target, old)`` and before ``rename(new, target)``, the target is missing."""
    folder_with(tmp_path / f".m.{dead_pid}-0123abcd.old", a="old")
    if new_complete:
        folder_with(tmp_path / f".m.{dead_pid}-0123abcd.tmp", a="new")
    clean_stale_temporaries(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    assert (tmp_path / "m" / "a").read_text() == ("new" if new_complete else "old")


def checksum(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_identical_networks_save_identical_files(tmp_path):
    one = tiny_network_segmenter(seed=3).save(tmp_path / "one")
    two = tiny_network_segmenter(seed=3).save(tmp_path / "two")
    for name in network_segmenter.FILES:
        assert checksum(one / name) == checksum(two / name), name
    three = tiny_network_segmenter(seed=4).save(tmp_path / "three")
    assert checksum(one / "weights.pt") != checksum(three / "weights.pt")


def test_save_over_a_model_keeps_checkpoints(tmp_path):
    model = tiny_network_segmenter(seed=0).save(tmp_path / "m")
    (model / "checkpoint_final.pt").write_bytes(b"training state")
    tiny_network_segmenter(seed=1).save(model)
    assert (model / "checkpoint_final.pt").read_bytes() == b"training state"
    expected = tiny_network_segmenter(seed=1).network.state_dict()
    loaded = NetworkSegmenter.load(model).network.state_dict()
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)


def test_a_failed_save_leaves_the_old_model_whole(tmp_path, monkeypatch):
    model = tiny_network_segmenter(seed=0).save(tmp_path / "m")
    before = {name: checksum(model / name) for name in network_segmenter.FILES}

    def fail(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(network_segmenter, "write_json", fail)  # after weights.pt is written
    with pytest.raises(OSError, match="no space left"):
        tiny_network_segmenter(seed=1).save(model)
    assert {name: checksum(model / name) for name in network_segmenter.FILES} == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_phantom_overwrite_failure_keeps_both_old_datasets(tmp_path, monkeypatch):
    ct, mr = cohort.write_cohort(tmp_path, "tiny", 1, 1, seed=0, progress=False)
    before = read_manifest(ct), read_manifest(mr)
    real = cohort.write_dataset

    def fail_on_mr(cases, folder, **kwargs):
        if cases[0].modality == "MR":
            raise OSError("killed while writing mr")
        return real(cases, folder, **kwargs)

    monkeypatch.setattr(cohort, "write_dataset", fail_on_mr)
    with pytest.raises(OSError, match="killed"):
        cohort.write_cohort(tmp_path, "tiny", 2, 1, seed=1, progress=False, overwrite=True)
    assert (read_manifest(ct), read_manifest(mr)) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct", "mr"]
    monkeypatch.setattr(cohort, "write_dataset", real)
    cohort.write_cohort(tmp_path, "tiny", 2, 1, seed=1, progress=False, overwrite=True)
    assert len(read_manifest(ct)) == 2 and len(read_manifest(mr)) == 1


def test_replace_dir_through_a_link_swaps_the_folder_it_points_to(tmp_path):
    real = folder_with(tmp_path / "real", a="old")
    (tmp_path / "link").symlink_to(real)
    with replace_dir(tmp_path / "link") as new:
        (new / "a").write_text("new")
    assert (tmp_path / "link").is_symlink()
    assert (tmp_path / "link" / "a").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]
