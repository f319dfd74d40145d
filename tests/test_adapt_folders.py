"""User folders: nnU-Net and plain layouts, label files, label-map signatures, real data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from flare_uda.data.folders import discover, label_files
from flare_uda.data.io import write_volume
from flare_uda.data.label_check import resolve_label_map, signature
from flare_uda.data.user_data import on_image_grid, parse_folder_arg, read_sources
from flare_uda.volume import Volume


def vol(shape=(4, 6, 8), value=1.0, dtype=np.float32, **geometry) -> Volume:
    return Volume(np.full(shape, value, dtype), **geometry)


def touch(path, is_label=False):
    write_volume(vol(dtype=np.uint8) if is_label else vol(), path, is_label=is_label)


def test_plain_folder_pairs_images_with_their_labels(tmp_path):
    touch(tmp_path / "a_image.nii.gz")
    touch(tmp_path / "a_label.nii.gz", True)
    touch(tmp_path / "b_0000.mha")
    touch(tmp_path / "labels" / "b.nii.gz", True)
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((3, 4, 5), np.float32)), tmp_path / "c.nrrd")
    (tmp_path / ".hidden").mkdir()
    layout = discover(tmp_path)
    found = {e.case_id: (e.image.name, e.label and e.label.name) for e in layout.entries}
    assert layout.kind == "plain"
    assert found == {
        "a": ("a_image.nii.gz", "a_label.nii.gz"),
        "b": ("b_0000.mha", "b.nii.gz"),
        "c": ("c.nrrd", None),
    }


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["a.nii.gz", "a_label.nii.gz", "labels/a.nii.gz"], "case 'a' of .* has 2 label files"),
        (["a.nii.gz", "b_label.nii.gz"], r"label files without an image .*\['b_label.nii.gz'\]"),
        (["a.nii.gz", "a_image.mha"], "two images of case 'a'"),
        (["sub/x.nii.gz"], "unexpected sub-folder .*sub: expected image files, DICOM series"),
        ([], "no images found in .*: expected image files"),
    ],
)
def test_ambiguous_plain_folders_are_errors(tmp_path, files, message):
    for name in files:
        touch(tmp_path / name, "label" in name or name.startswith("labels/"))
    with pytest.raises(ValueError, match=message):
        discover(tmp_path)


def test_nnunet_dataset_with_its_file_ending_and_test_split(tmp_path):
    meta = {"channel_names": {"0": "MRI"}, "labels": {"background": 0}, "file_ending": ".mha"}
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    touch(tmp_path / "imagesTr" / "x_0000.mha")
    touch(tmp_path / "labelsTr" / "x.mha", True)
    touch(tmp_path / "imagesTs" / "y_0000.mha")
    train = discover(tmp_path)
    assert [(e.case_id, e.label.name) for e in train.entries] == [("x", "x.mha")]
    both = discover(tmp_path, ("imagesTr", "imagesTs"))
    assert [e.case_id for e in both.entries] == ["x", "y"] and both.channel == "MRI"
    touch(tmp_path / "imagesTr" / "x_0001.mha")
    with pytest.raises(ValueError, match="expected nnU-Net image names .*x_0001.mha"):
        discover(tmp_path)
    meta["channel_names"] = {"0": "T1", "1": "T2"}
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="expected one input channel"):
        discover(tmp_path)


def test_label_folders_given_alone(tmp_path):
    touch(tmp_path / "a_image.nii.gz")
    touch(tmp_path / "a_label.nii.gz", True)
    assert {k: p.name for k, p in label_files(tmp_path).items()} == {"a": "a_label.nii.gz"}
    touch(tmp_path / "labelsTr" / "b.nii.gz", True)
    assert list(label_files(tmp_path)) == ["b"]


def test_folder_arguments_with_and_without_a_map(tmp_path):
    assert parse_folder_arg(f"{tmp_path}:amos").label_map == "amos"
    assert parse_folder_arg(str(tmp_path)).label_map is None
    odd = tmp_path / "a:b"
    odd.mkdir()
    assert parse_folder_arg(str(odd)).path == odd  # an existing folder with a colon
    with pytest.raises(KeyError, match="Did you mean 'total'"):
        parse_folder_arg(f"{tmp_path}:totl")


def organ_label(liver_value: int, liver_side: str) -> Volume:
    """A label whose largest organ (``liver_value``) lies on the patient's right or left."""
    array = np.zeros((4, 10, 20), np.uint8)
    right = slice(0, 8) if liver_side == "right" else slice(12, 20)  # small x: patient's right
    array[:, 2:8, right] = liver_value
    array[:, 2:4, 9:11] = 2
    return Volume(array)


@pytest.mark.parametrize(
    ("value", "side", "plausible"),
    [
        (1, "right", ("flare", "chaos")),  # value 2 too: not CHAOS CT (liver only)
        (6, "right", ("amos", "btcv")),
        (5, "right", ("total", "total_mr")),
        (6, "left", ("flare", "amos", "total", "total_mr", "btcv")),  # not a liver: anything
    ],
)
def test_signatures_recognise_the_liver(value, side, plausible):
    sig = signature(organ_label(value, side))
    assert sig.largest == value and sig.right == (side == "right")
    assert sig.plausible == plausible


def test_resolving_a_folder_map():
    flare, amos = signature(organ_label(1, "right")), signature(organ_label(6, "right"))
    assert resolve_label_map({"a": amos, "b": amos}, "amos", "F") == "amos"
    assert resolve_label_map({"a": flare}, "chaos", "F") == "chaos"
    with pytest.raises(ValueError, match=r"could be in any of \['chaos', 'flare'\]"):
        resolve_label_map({"a": flare}, None, "F")  # never a silent guess
    with pytest.raises(ValueError, match="mix label maps"):
        resolve_label_map({"a": flare, "b": amos}, "amos", "F")
    with pytest.raises(ValueError, match="e.g. F:amos"):
        resolve_label_map({"a": amos}, None, "F")
    with pytest.raises(ValueError, match="does not look like the declared 'total' map"):
        resolve_label_map({"a": amos}, "total", "F")
    empty = signature(Volume(np.zeros((2, 2, 2), np.uint8)))
    assert empty.largest is None and "flare" in empty.plausible


def test_a_label_on_another_grid_of_the_same_box_is_moved(tmp_path):
    image = vol((4, 6, 8))
    flipped_dir = np.diag([1.0, -1.0, 1.0])
    label = Volume(
        np.arange(4 * 6 * 8).reshape(4, 6, 8) % 3, direction=flipped_dir, origin=(0, 5, 0)
    )
    moved = on_image_grid(label.with_array(label.array.astype(np.uint8)), image, "label")
    assert moved.same_geometry(image)
    np.testing.assert_array_equal(moved.array, label.array[:, ::-1, :])


@pytest.mark.realdata
def test_the_shared_ct_folder_mixes_label_maps(shared_data):
    with pytest.raises(ValueError, match="mix label maps") as err:
        read_sources([shared_data / "ct"])
    assert "look like amos/btcv" in str(err.value) and "look like total" in str(err.value)


def test_a_partial_map_leaves_its_missing_organs_unknown(tmp_path):
    from adapt_support import to_map

    from flare_uda.data.phantom import generate_cohort

    (ct,), _ = generate_cohort("tiny", 1, 0, seed=3)
    liver_only = ct.label.with_array((ct.label.array == 1).astype(np.uint8))  # CHAOS CT: liver=1
    write_volume(ct.image, tmp_path / "chaos" / "a_image.nii.gz")
    write_volume(liver_only, tmp_path / "chaos" / "a_label.nii.gz", is_label=True)
    amos = ct.label.with_array(to_map(ct.label.array, "amos"))
    write_volume(ct.image, tmp_path / "amos" / "b_image.nii.gz")
    write_volume(amos, tmp_path / "amos" / "b_label.nii.gz", is_label=True)
    cases, _ = read_sources([f"{tmp_path / 'chaos'}:chaos_ct", f"{tmp_path / 'amos'}:amos"])
    chaos, full = cases
    assert tuple(chaos.annotated) == (1,)  # the other organs are unknown, not background
    assert tuple(full.annotated) == tuple(range(1, 14))
    np.testing.assert_array_equal(chaos.label.array, liver_only.array)
    np.testing.assert_array_equal(full.label.array, ct.label.array)  # AMOS back in FLARE order
