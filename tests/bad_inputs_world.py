"""The files the bad-input catalogue (test_bad_inputs.py) runs against: good and
damaged models, images, labels and configs in one module-scoped folder."""

from __future__ import annotations

import gzip
import json
import shutil

import numpy as np
import SimpleITK as sitk
from inference_support import blob_volume, tiny_network_segmenter
from io_support import read_only_folder, write_dicom_series, write_mha

from flare_uda.data.datasets import write_dataset
from flare_uda.data.io import write_volume
from flare_uda.translation import get_translator
from flare_uda.volume import Case


def _sitk(path, array, vector=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(array, isVector=vector), str(path))
    return path


def _cut(path, keep=0.6):
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])
    return path


def _models(w) -> None:
    model = tiny_network_segmenter().save(w / "model")
    plan = json.loads((model / "plan.json").read_text())
    variants = {
        "m_empty": {},
        "m_no_weights": {"weights.pt": None},
        "m_garbage_weights": {"weights.pt": b"not a torch file"},
        "m_cut_weights": {"weights.pt": (model / "weights.pt").read_bytes()[:3000]},
        "m_bad_json": {"plan.json": b"{"},
        "m_plan_list": {"plan.json": b"[]"},
        "m_plan_key": {"plan.json": json.dumps({"spacing": plan["spacing"]}).encode()},
        "m_other_net": {"weights.pt": None},
    }
    for name, files in variants.items():
        if not files:
            (w / name).mkdir()
            continue
        shutil.copytree(model, w / name)
        for file, content in files.items():
            (w / name / file).unlink()
            if content is not None:
                (w / name / file).write_bytes(content)
    other = tiny_network_segmenter(base_features=6).save(w / "other")
    shutil.copy(other / "weights.pt", w / "m_other_net" / "weights.pt")
    nnunet = w / "nnunet"
    (nnunet / "fold_0").mkdir(parents=True)
    (nnunet / "plans.json").write_text("{}")
    (nnunet / "dataset.json").write_text("{}")
    (nnunet / "fold_0" / "checkpoint_final.pth").write_bytes(b"not a checkpoint")
    translator = get_translator("identity")
    case = Case("c", blob_volume(shape=(8, 12, 12)))
    translator.fit([case], [case]).save(w / "translator")


def _images(w) -> None:
    good = blob_volume(shape=(10, 24, 24), margin=(2, 4, 4))
    write_volume(good, w / "images" / "a_0000.nii.gz")
    (w / "empty_dir").mkdir()
    bad = w / "bad"
    bad.mkdir()
    (bad / "text.nii.gz").write_text("patient notes, not an image\n" * 20)
    (bad / "empty.nii.gz").write_bytes(b"")
    (bad / "gztext.nii.gz").write_bytes(gzip.compress(b"not a nifti header" * 40))
    (bad / "scan.png").write_bytes(b"\x89PNG")
    for suffix in ("nii.gz", "mha", "nrrd"):
        _cut(write_volume(good, bad / f"cut.{suffix}") if suffix != "nrrd" else
             _sitk(bad / "cut.nrrd", good.array))  # fmt: skip
    corrupt = write_volume(good, bad / "corrupt.nii.gz")
    data = bytearray(corrupt.read_bytes())
    middle = slice(len(data) // 2, len(data) // 2 + 10)
    data[middle] = bytes(255 - b for b in data[middle])
    corrupt.write_bytes(bytes(data))
    _sitk(bad / "flat.nii.gz", np.zeros((16, 16), np.float32))
    _sitk(bad / "movie.nii.gz", np.zeros((3, 4, 8, 8), np.float32))
    _sitk(bad / "rgb.mha", np.zeros((4, 8, 8, 3), np.uint8), vector=True)
    nan = good.array.copy()
    nan[2, 3, 4] = np.nan
    _sitk(bad / "nan.nii.gz", nan)
    _sitk(bad / "nan.mha", nan)
    write_mha(bad / "sheared.mha", {"TransformMatrix": "1 0 0 0.3 1 0 0 0 1"})
    write_mha(bad / "tiny_spacing.mha", {"ElementSpacing": "0.0001 1 1"})
    write_mha(bad / "huge_spacing.mha", {"ElementSpacing": "1 1 100000"})
    series = np.zeros((6, 8, 8), np.int16)
    write_dicom_series(w / "dicom_gap", series, (2.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    (w / "dicom_gap" / "slice002.dcm").unlink()
    write_dicom_series(w / "dicom_cut", series, (2.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    _cut(w / "dicom_cut" / "slice005.dcm", 0.9)


def _labels(w) -> None:
    image = blob_volume(shape=(10, 16, 16))
    label = image.with_array((image.array > 1).astype(np.uint8))
    cases = [Case(f"c{i}", image, label, "MR") for i in range(2)]
    write_dataset(cases, w / "dataset", progress=False)
    shutil.copytree(w / "dataset", w / "dataset_cut_label")
    _cut(w / "dataset_cut_label" / "labelsTr" / "c1.nii.gz")
    write_volume(image, w / "plain" / "c0_0000.nii.gz")
    write_volume(label, w / "plain_labels" / "c0.nii.gz", is_label=True)
    write_volume(image, w / "plain" / "c1_0000.nii.gz")
    half = label.array.astype(np.float32) * 0.5
    _sitk(w / "float_labels" / "c0.nii.gz", half)
    _sitk(w / "float_labels" / "c1.nii.gz", half)
    for folder, value in (("odd_labels", 99), ("ref", 1)):
        for cid in ("c0", "c1"):
            write_volume(label.with_array(label.array * value), w / folder / f"{cid}.nii.gz",
                         is_label=True)  # fmt: skip
    shutil.copytree(w / "ref", w / "pred_cut")
    _cut(w / "pred_cut" / "c1.nii.gz")
    shutil.copytree(w / "dataset", w / "translated")
    (w / "translated_foreign").mkdir()
    shutil.copytree(w / "dataset", w / "translated_foreign" / "imagesTr", dirs_exist_ok=True)
    (w / "translated_foreign" / "thesis.docx").write_text("years of work")
    for name, broken in (("dataset.json", "dataset_bad_json"), ("manifest.json", "bad_manifest")):
        shutil.copytree(w / "dataset", w / broken)
        (w / broken / name).write_text('{"channel_names": ')
    shutil.copytree(w / "dataset", w / "dataset_cut_image")
    _cut(w / "dataset_cut_image" / "imagesTr" / "c0_0000.nii.gz")


def _configs(w) -> None:
    (w / "configs").mkdir()
    (w / "configs" / "broken.yaml").write_text("data:\n  preset: tiny\n n_ct: [1, 2\n")
    (w / "configs" / "binary.yaml").write_bytes(b"\xff\xfe\x00\x81" * 8)
    (w / "run").mkdir()
    (w / "run" / "config.yaml").write_text("# my notes\ndata:\n  preset: tiny\n")
    (w / "afile.txt").write_text("a file, not a folder")
    (w / "nonempty").mkdir()
    (w / "nonempty" / "keep.txt").write_text("mine")


READ_ONLY: dict = {}
"""world folder -> whether its ``readonly`` folder could be made unwritable."""


def build_world(tmp_path_factory):
    """Write every file of the catalogue; yields the folder (a fixture's body)."""
    w = tmp_path_factory.mktemp("world")
    for build in (_models, _images, _labels, _configs):
        build(w)
    with read_only_folder(w / "readonly", skip=False) as read_only:
        READ_ONLY[w] = read_only is not None
        yield w
