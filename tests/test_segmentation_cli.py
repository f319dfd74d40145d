"""``flare-uda train`` round trip on tiny volumes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from test_segmentation_trainer import make_case  # tests/ is on sys.path (rootdir conftest)

from flare_uda.cli import main
from flare_uda.data.datasets import write_dataset
from flare_uda.data.io import write_volume
from flare_uda.segmentation import NetworkSegmenter


def run(args):
    return CliRunner().invoke(main, ["train", *args, "--preset", "tiny", "--quiet"])


def test_train_round_trip_from_dataset_folder_then_resume(tmp_path):
    write_dataset([make_case(i) for i in range(3)], tmp_path / "ds", progress=False)
    out = tmp_path / "model"
    res = run(
        [
            "--images",
            str(tmp_path / "ds"),
            "--out",
            str(out),
            "--iterations",
            "2",
            "--val-cases",
            "1",
        ]
    )
    assert res.exit_code == 0, res.output
    assert "trained 2 case(s), 2 iterations" in res.output and "validation mean DSC" in res.output
    seg = NetworkSegmenter.load(out)
    assert seg.plan.patch_size == (8, 16, 16) and seg.plan.normalization == "zscore"
    # resuming with more iterations continues from the checkpoint (2 -> 3)
    res = run(
        [
            "--images",
            str(tmp_path / "ds"),
            "--out",
            str(out),
            "--iterations",
            "3",
            "--val-cases",
            "1",
        ]
    )
    assert res.exit_code == 0, res.output
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 3


def test_train_from_image_and_label_folders(tmp_path):
    for i in range(2):
        case = make_case(i)
        write_volume(case.image, tmp_path / "img" / f"{case.case_id}_0000.nii.gz")
        write_volume(case.label, tmp_path / "lab" / f"{case.case_id}.nii.gz", is_label=True)
    res = run(
        [
            "--images",
            str(tmp_path / "img"),
            "--labels",
            str(tmp_path / "lab"),
            "--modality",
            "CT",
            "--out",
            str(tmp_path / "m"),
            "--iterations",
            "2",
        ]
    )
    assert res.exit_code == 0, res.output
    assert NetworkSegmenter.load(tmp_path / "m").plan.normalization == "ct"


def test_train_cli_error_paths(tmp_path):
    case = make_case(0)
    write_volume(case.image, tmp_path / "img" / "c0_0000.nii.gz")
    write_volume(case.image, tmp_path / "img" / "c9_0000.nii.gz")
    write_volume(case.label, tmp_path / "lab" / "c0.nii.gz", is_label=True)
    img, lab = str(tmp_path / "img"), str(tmp_path / "lab")
    res = run(["--images", img, "--labels", lab, "--modality", "MR", "--out", img + "/m"])
    assert res.exit_code != 0 and "overlaps the input" in res.output
    res = run(["--images", img, "--labels", lab, "--modality", "MR", "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "missing case ids ['c9']" in res.output
    res = run(["--images", img, "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "expected --labels DIR too" in res.output
    res = run(["--images", img, "--labels", lab, "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "needs --modality" in res.output
    res = CliRunner().invoke(
        main,
        [
            "train",
            "--images",
            img,
            "--labels",
            lab,
            "--modality",
            "MR",
            "--out",
            str(tmp_path / "o"),
            "--preset",
            "quik",
        ],
    )
    assert res.exit_code != 0 and "Did you mean 'quick'" in res.output


@pytest.mark.parametrize("shape", [(12, 20, 24)])
def test_train_cli_label_image_mismatch(tmp_path, shape):
    from flare_uda.volume import Volume

    case = make_case(0)
    write_volume(case.image, tmp_path / "img" / "c0_0000.nii.gz")
    bad = Volume(case.label.array[:, : shape[1]], case.label.spacing)
    write_volume(bad, tmp_path / "lab" / "c0.nii.gz", is_label=True)
    res = run(
        [
            "--images",
            str(tmp_path / "img"),
            "--labels",
            str(tmp_path / "lab"),
            "--modality",
            "MR",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert res.exit_code != 0 and "must share one geometry" in res.output


def test_train_then_predict_round_trip_on_tiny_phantom(tmp_path):
    from flare_uda.data.io import read_volume
    from flare_uda.data.phantom import generate_case

    cases = [generate_case("tiny", "MR", "T1", seed=s) for s in range(2)]
    write_dataset(cases, tmp_path / "ds", progress=False)
    res = run(["--images", str(tmp_path / "ds"), "--out", str(tmp_path / "m"), "--iterations", "2"])
    assert res.exit_code == 0, res.output
    img = tmp_path / "ds" / "imagesTr" / f"{cases[0].case_id}_0000.nii.gz"
    res = CliRunner().invoke(
        main, ["predict", "--model", str(tmp_path / "m"), "-i", str(img), "-o", str(tmp_path / "p")]
    )
    assert res.exit_code == 0, res.output
    pred = read_volume(tmp_path / "p" / f"{cases[0].case_id}.nii.gz")
    assert pred.same_geometry(cases[0].image)
    assert int(pred.array.max()) <= 13


def test_train_into_a_folder_of_a_model_on_other_data_is_refused(tmp_path):
    """A stale model is never resumed or returned: other data -> error naming --overwrite."""
    write_dataset([make_case(i) for i in range(2)], tmp_path / "a", progress=False)
    write_dataset([make_case(i) for i in range(5, 7)], tmp_path / "b", progress=False)
    out = tmp_path / "model"
    args = ["--out", str(out), "--iterations", "2"]
    assert run(["--images", str(tmp_path / "a"), *args]).exit_code == 0
    res = run(["--images", str(tmp_path / "b"), *args])
    assert res.exit_code == 1
    assert "trained on other data" in res.output and "--overwrite" in res.output
    res = run(["--images", str(tmp_path / "b"), *args, "--overwrite"])
    assert res.exit_code == 0, res.output


def test_train_with_a_time_budget(tmp_path):
    write_dataset([make_case(i) for i in range(2)], tmp_path / "ds", progress=False)
    res = run(["--images", str(tmp_path / "ds"), "--out", str(tmp_path / "m"), "--minutes", "0.02"])
    assert res.exit_code == 0, res.output
    steps = len(json.loads((tmp_path / "m" / "history.json").read_text())["loss"])
    assert f"trained 2 case(s), {steps} iterations" in res.output and steps >= 1
    res = run(["--images", str(tmp_path / "ds"), "--out", str(tmp_path / "n"), "--minutes", "0"])
    assert res.exit_code == 2 and "--minutes" in res.output
