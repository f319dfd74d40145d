"""nnU-Net interop: raw export, and a model folder made by nnunetv2's own code, wrapped.

The model folder is created without training: nnunetv2 plans a tiny dataset
(fingerprint + ExperimentPlanner, 3d_fullres), an ``nnUNetTrainer`` on the CPU
is initialised and saves ``checkpoint_final.pth``. That runs in a subprocess,
because nnunetv2 reads ``nnUNet_raw``/``nnUNet_results`` when first imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from flare_uda.inference import SlidingWindowConfig, SlidingWindowInferer, sliding_window_logits
from flare_uda.segmentation.nnunet import (
    NnUNetSegmenter,
    export_nnunet_raw,
    is_nnunet_model_folder,
    nnunet_dataset_name,
)
from flare_uda.volume import Case, Volume

SPACING = (2.0, 1.0, 1.0)


def _case(i: int, shape=(16, 40, 40)) -> Case:
    rng = np.random.default_rng(i)
    img = rng.normal(100.0, 5.0, shape).astype(np.float32)
    lab = np.zeros(shape, dtype=np.uint8)
    lab[4:10, 10:22, 8 + i : 20 + i] = 1
    lab[6:12, 24:34, 22:32] = 3
    img[lab == 1] += 60
    img[lab == 3] -= 40
    return Case(f"c{i}", Volume(img, SPACING), Volume(lab, SPACING), modality="MR", sequence="T1")


PLAN_SCRIPT = textwrap.dedent(
    """
    import torch
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprints, plan_experiments, preprocess)
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.utilities.dataset_name_id_conversion import convert_id_to_dataset_name
    from batchgenerators.utilities.file_and_folder_operations import join, load_json, maybe_mkdir_p
    from nnunetv2.paths import nnUNet_preprocessed, nnUNet_raw

    torch.manual_seed(0)
    extract_fingerprints([501], num_processes=1, check_dataset_integrity=False, verbose=False,
                         show_progress_bar=False)
    plans_id = plan_experiments([501])
    preprocess([501], plans_id, ("3d_fullres",), (1,), show_progress_bar=False)
    name = convert_id_to_dataset_name(501)
    plans = load_json(join(nnUNet_preprocessed, name, plans_id + ".json"))
    ds = load_json(join(nnUNet_raw, name, "dataset.json"))
    plans["continue_training"] = False  # set by nnunetv2.run.run_training in 2.8
    trainer = nnUNetTrainer(plans, "3d_fullres", 0, ds, torch.device("cpu"))
    trainer.initialize()
    trainer.inference_allowed_mirroring_axes = (0, 1, 2)
    maybe_mkdir_p(trainer.output_folder)
    trainer.save_checkpoint(join(trainer.output_folder, "checkpoint_final.pth"))
    import shutil
    shutil.copy(join(nnUNet_preprocessed, name, plans_id + ".json"),
                join(trainer.output_folder_base, "plans.json"))
    shutil.copy(join(nnUNet_raw, name, "dataset.json"),
                join(trainer.output_folder_base, "dataset.json"))
    print(trainer.output_folder_base)
    """
)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("nnunet")
    export_nnunet_raw([_case(i) for i in range(3)], root / "raw", 501, "Tiny", progress=False)
    env = dict(os.environ)
    env.update(
        nnUNet_raw=str(root / "raw"),
        nnUNet_preprocessed=str(root / "pre"),
        nnUNet_results=str(root / "results"),
        nnUNet_def_n_proc="1",
        OMP_NUM_THREADS="1",
    )
    res = subprocess.run(
        [sys.executable, "-c", PLAN_SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    if res.returncode != 0:
        raise RuntimeError(f"nnU-Net planning failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
    return Path(res.stdout.strip().splitlines()[-1])


def test_export_raw_layout(tmp_path):
    out = export_nnunet_raw([_case(0), _case(1)], tmp_path, 7, "Phantom", progress=False)
    assert out.name == "Dataset007_Phantom"
    assert sorted(p.name for p in (out / "imagesTr").iterdir()) == [
        "c0_0000.nii.gz",
        "c1_0000.nii.gz",
    ]
    ds = json.loads((out / "dataset.json").read_text())
    assert ds["numTraining"] == 2 and ds["channel_names"] == {"0": "MRI"}
    assert ds["labels"]["background"] == 0 and len(ds["labels"]) == 14


def test_export_errors(tmp_path):
    with pytest.raises(ValueError, match="dataset_id must be in 1..999"):
        nnunet_dataset_name(1000, "x")
    with pytest.raises(TypeError, match="dataset_id must be an int"):
        nnunet_dataset_name("5", "x")
    with pytest.raises(ValueError, match="name must hold letters"):
        nnunet_dataset_name(5, "a b")
    unlabelled = Case("u", Volume(np.zeros((2, 2, 2))), modality="MR")
    with pytest.raises(ValueError, match="needs labels"):
        export_nnunet_raw([unlabelled], tmp_path, 5, "x")
    with pytest.raises(FileNotFoundError, match="expected an nnU-Net model folder"):
        NnUNetSegmenter.from_model_folder(tmp_path)
    assert not is_nnunet_model_folder(tmp_path)


@pytest.mark.slow
def test_model_folder_round_trip_matches_nnunet_predictor(model_folder):
    assert is_nnunet_model_folder(model_folder)
    seg = NnUNetSegmenter.from_model_folder(model_folder, fold=0)
    assert seg.plan.spacing == SPACING and seg.plan.normalization == "zscore"
    assert seg.plan.num_classes == 14 and seg.plan.head == "softmax"
    with pytest.raises(FileNotFoundError, match="expected checkpoint"):
        NnUNetSegmenter.from_model_folder(model_folder, fold=3)

    image = _case(7, shape=(22, 56, 60)).image  # several windows of the 16x40x40 patch
    cfg = SlidingWindowConfig(skip_empty=False)
    ours = SlidingWindowInferer(cfg)(image, seg)
    assert ours.same_geometry(image)
    assert len(np.unique(ours.array)) > 1  # an untrained net still varies in space
    # same windows, weights and network as nnUNetPredictor (mirroring off)
    theirs = seg.predictor.predict_single_npy_array(
        image.array[None].astype(np.float32), {"spacing": list(SPACING)}
    )
    assert theirs.shape == ours.shape
    agree = float((theirs == ours.array).mean())
    assert agree > 0.98, f"labels agree on {agree:.5f} of the voxels"
    # nnU-Net weights windows with a float16 gaussian whose edge values are
    # quantised, which flips near-tied labels at the image border; inside, we agree
    inner = (slice(4, -4),) * 3
    agree_inner = float((theirs[inner] == ours.array[inner]).mean())
    assert agree_inner > 0.999, f"labels agree on {agree_inner:.5f} of the inner voxels"
    # and our logits are the float32 gaussian average of the windows (checked on one window)
    small = _case(8).image
    prep = torch.from_numpy((small.array - small.array.mean()) / small.array.std())[None]
    res = sliding_window_logits(
        prep.float(), seg.predict_logits, seg.plan.patch_size, 14, cfg, average=True
    )
    full = seg.predict_logits(prep.float()[None])[0]
    torch.testing.assert_close(res.logits, full, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_cli_predict_detects_nnunet_folder(model_folder, tmp_path):
    from click.testing import CliRunner

    from flare_uda.cli import main
    from flare_uda.data.io import read_label, write_volume

    image = _case(9).image
    write_volume(image, tmp_path / "in" / "x_0000.nii.gz")
    res = CliRunner().invoke(
        main,
        [
            "predict",
            "--model",
            str(model_folder),
            "-i",
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / "out"),
            "--no-skip",
        ],
    )
    assert res.exit_code == 0, res.output
    label = read_label(tmp_path / "out" / "x.nii.gz")
    seg = NnUNetSegmenter.from_model_folder(model_folder)
    expected = SlidingWindowInferer(SlidingWindowConfig(skip_empty=False))(image, seg)
    np.testing.assert_array_equal(label.array, expected.array)
