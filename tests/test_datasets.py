"""nnU-Net raw layout in and out, with flare_uda's manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest

from flare_uda.data.datasets import (
    dataset_json,
    load_cases,
    read_dataset,
    read_folder,
    read_manifest,
    write_dataset,
)
from flare_uda.data.io import write_volume
from flare_uda.volume import Case, Volume


def make_case(rng, case_id, modality="MR", sequence="T1", labelled=True, annotated=None) -> Case:
    geometry = dict(spacing=(3.0, 0.75, 0.75), origin=(1.0, -2.0, 3.5))
    image = Volume(rng.normal(size=(4, 6, 5)).astype(np.float32), **geometry)
    label = Volume(rng.integers(0, 14, size=(4, 6, 5)).astype(np.uint8), **geometry)
    return Case(
        case_id,
        image,
        label if labelled else None,
        modality,
        sequence,
        annotated if annotated is not None else tuple(range(1, 14)),
    )


def test_write_read_round_trip_with_manifest(tmp_path, rng):
    train = [
        make_case(rng, "mr_002", sequence="T2", annotated=(1, 2, 3, 13)),
        make_case(rng, "mr_001"),
    ]
    test = [make_case(rng, "mr_100", sequence="T2", labelled=False)]
    out = write_dataset(train, tmp_path / "ds", progress=False)
    write_dataset(test, out, split="test", progress=False)
    assert (out / "imagesTr" / "mr_001_0000.nii.gz").is_file()
    assert (out / "labelsTr" / "mr_002.nii.gz").is_file()
    assert (out / "imagesTs" / "mr_100_0000.nii.gz").is_file()
    assert not (out / "labelsTs").exists()
    ds = json.loads((out / "dataset.json").read_text())
    assert ds == dataset_json("MR", 2)
    assert ds["channel_names"] == {"0": "MRI"} and ds["labels"]["left_kidney"] == 13
    assert ds["numTraining"] == 2 and ds["file_ending"] == ".nii.gz"
    manifest = read_manifest(out)
    assert manifest["mr_002"] == {
        "modality": "MR",
        "sequence": "T2",
        "annotated": [1, 2, 3, 13],
        "split": "train",
        "has_label": True,
    }
    assert manifest["mr_100"]["split"] == "test" and not manifest["mr_100"]["has_label"]

    cases = read_dataset(out)
    assert [c.case_id for c in cases] == ["mr_001", "mr_002", "mr_100"]  # sorted per split
    originals = {c.case_id: c for c in train + test}
    for case in cases:
        orig = originals[case.case_id]
        assert (case.modality, case.sequence, case.annotated) == (
            orig.modality,
            orig.sequence,
            orig.annotated,
        )
        np.testing.assert_array_equal(case.image.array, orig.image.array)
        assert case.image.same_geometry(orig.image, atol=0)  # float32-exact header
        if orig.label is None:
            assert case.label is None
        else:
            np.testing.assert_array_equal(case.label.array, orig.label.array)
    assert [c.case_id for c in read_dataset(out, splits=("test",))] == ["mr_100"]
    assert all(c.label is None for c in read_dataset(out, with_labels=False))
    assert [c.case_id for c in load_cases(out)] == ["mr_001", "mr_002", "mr_100"]


def test_read_without_manifest_uses_dataset_json_and_label_map(tmp_path, rng):
    case = make_case(rng, "ct_1", modality="CT", sequence=None)
    out = write_dataset([case], tmp_path / "ct", progress=False)
    (out / "manifest.json").unlink()
    amos = np.array([[[0, 6, 1, 15]]], np.uint8)
    write_volume(Volume(np.zeros((1, 1, 4), np.float32)), out / "imagesTr" / "amos_0000.nii.gz")
    write_volume(Volume(amos), out / "labelsTr" / "amos.nii.gz", is_label=True)
    (out / "imagesTr" / "ct_1_0000.nii.gz").unlink()
    (out / "labelsTr" / "ct_1.nii.gz").unlink()
    [read] = read_dataset(out, label_map="amos")
    assert read.modality == "CT" and read.sequence is None
    assert read.annotated == tuple(range(1, 14))
    np.testing.assert_array_equal(read.label.array.ravel(), [0, 1, 3, 0])  # AMOS -> FLARE


def test_read_folder_of_volumes(tmp_path, rng):
    for name in ("b_0000.nii.gz", "a.mha"):
        write_volume(Volume(rng.normal(size=(2, 3, 4))), tmp_path / name)
    (tmp_path / "notes.txt").write_text("ignored")
    cases = load_cases(tmp_path)
    assert [c.case_id for c in cases] == ["a", "b"]
    assert all(c.modality == "MR" and c.label is None for c in cases)
    assert read_folder(tmp_path, "CT")[0].modality == "CT"


def test_dataset_errors(tmp_path, rng):
    mr = make_case(rng, "x")
    with pytest.raises(ValueError, match=r"split must be one of \['train', 'test'\], got 'val'"):
        write_dataset([mr], tmp_path / "d", split="val")
    with pytest.raises(ValueError, match="at least one case, got none"):
        write_dataset([], tmp_path / "d")
    with pytest.raises(ValueError, match=r"one modality, got \['CT', 'MR'\]"):
        write_dataset([mr, make_case(rng, "y", modality="CT")], tmp_path / "d")
    with pytest.raises(ValueError, match="case ids must be unique"):
        write_dataset([mr, mr], tmp_path / "d")
    with pytest.raises(FileNotFoundError, match="expected a dataset folder"):
        read_dataset(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="expected a flare_uda manifest"):
        read_manifest(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no cases found in"):
        read_dataset(tmp_path / "empty")
    with pytest.raises(ValueError, match="no volumes"):
        read_folder(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="expected a folder of volumes"):
        read_folder(tmp_path / "absent")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        read_manifest(tmp_path / "broken")
    out = write_dataset([mr], tmp_path / "ds", progress=False)
    with pytest.raises(ValueError, match=r"split must be one of .*, got 'val'"):
        read_dataset(out, splits=("val",))
