"""``flare-uda predict`` round trip on tiny volumes, and its error paths."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from inference_support import blob_volume, tiny_network_segmenter

from flare_uda.cli import main
from flare_uda.data.io import read_label, read_volume, write_volume
from flare_uda.inference import CoarseToFineInferer, SlidingWindowInferer
from flare_uda.segmentation.network_segmenter import NetworkSegmenter


@pytest.fixture
def model_dir(tmp_path):
    return tiny_network_segmenter().save(tmp_path / "model")


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "images"
    write_volume(blob_volume(seed=1), folder / "a_0000.nii.gz")
    write_volume(
        blob_volume(shape=(12, 30, 26), spacing=(3.0, 1.2, 1.5), margin=(2, 4, 4)), folder / "b.mha"
    )
    return folder


@pytest.mark.parametrize("resampling", ["auto", "torch"])
@pytest.mark.parametrize("mode, source", [("plain", "organs"), ("roi", "organs"), ("roi", "body")])
def test_predict_round_trip(model_dir, inputs, tmp_path, mode, source, resampling):
    out = tmp_path / f"pred_{mode}_{source}_{resampling}"
    res = CliRunner().invoke(
        main,
        [
            "predict",
            "--model",
            str(model_dir),
            "-i",
            str(inputs),
            "-o",
            str(out),
            "--mode",
            mode,
            "--step",
            "0.75",
            "--resampling",
            resampling,
            "--roi-source",
            source,
        ],
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["a.nii.gz", "b.nii.gz"]
    seg = NetworkSegmenter.load(model_dir)
    from flare_uda.cli.predict import build_inferer

    inferer = build_inferer(mode, 0.75, True, False, 2, resampling, source)
    assert isinstance(inferer, CoarseToFineInferer if mode == "roi" else SlidingWindowInferer)
    if mode == "roi":
        assert inferer.config.roi_source == source
    for name, src in (("a", "a_0000.nii.gz"), ("b", "b.mha")):
        image = read_volume(inputs / src)
        label = read_label(out / f"{name}.nii.gz")
        assert label.same_geometry(image)
        np.testing.assert_array_equal(label.array, inferer(image, seg).array)


def test_predict_single_file(model_dir, inputs, tmp_path):
    out = tmp_path / "one"
    res = CliRunner().invoke(
        main, ["predict", "--model", str(model_dir), "-i", str(inputs / "b.mha"), "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert [p.name for p in out.iterdir()] == ["b.nii.gz"]


def test_predict_errors(model_dir, inputs, tmp_path):
    run = CliRunner().invoke
    res = run(
        main, ["predict", "--model", str(model_dir), "-i", str(inputs), "-o", str(inputs / "sub")]
    )
    assert res.exit_code != 0 and "overlaps the input" in res.output
    res = run(
        main,
        [
            "predict",
            "--model",
            str(model_dir),
            "-i",
            str(tmp_path / "nope"),
            "-o",
            str(tmp_path / "o"),
        ],
    )
    assert res.exit_code != 0 and "no such file or folder" in res.output
    res = run(
        main,
        [
            "predict",
            "--model",
            str(model_dir),
            "-i",
            str(inputs),
            "-o",
            str(tmp_path / "o"),
            "--step",
            "1.5",
        ],
    )
    assert res.exit_code != 0 and "step must be in (0, 1]" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run(
        main, ["predict", "--model", str(model_dir), "-i", str(empty), "-o", str(tmp_path / "o")]
    )
    assert res.exit_code != 0 and "no volumes" in res.output
    res = run(
        main, ["predict", "--model", str(empty), "-i", str(inputs), "-o", str(tmp_path / "o")]
    )
    assert (
        res.exit_code == 1 and "missing ['plan.json', 'network.json', 'weights.pt']" in res.output
    )


def test_predict_with_an_inferer_file(model_dir, inputs, tmp_path):
    spec = tmp_path / "inferer.yaml"
    spec.write_text("name: sliding_window\noptions: {step: 1.0, skip_empty: false}\n")
    out = tmp_path / "pred_file"
    args = ["predict", "--model", str(model_dir), "-i", str(inputs), "-o", str(out)]
    res = CliRunner().invoke(main, [*args, "--inferer", str(spec)])
    assert res.exit_code == 0, res.output
    seg = NetworkSegmenter.load(model_dir)
    want = SlidingWindowInferer(step=1.0, skip_empty=False)(read_volume(inputs / "b.mha"), seg)
    np.testing.assert_array_equal(read_label(out / "b.nii.gz").array, want.array)


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "- sliding_window\n",
            "expected a mapping {name: INFERER, options: {...}}, got ['sliding_window']",
        ),
        ("name: sliding_windw\n", "sliding_window"),  # the closest known name
        ("name: sliding_window\noptions: {step: 7}\n", "step"),
        ("name: [unclosed\n", "not valid YAML/JSON"),
    ],
)
def test_predict_inferer_file_errors(model_dir, inputs, tmp_path, text, message):
    spec = tmp_path / "inferer.yaml"
    spec.write_text(text)
    args = ["predict", "--model", str(model_dir), "-i", str(inputs), "-o", str(tmp_path / "o")]
    res = CliRunner().invoke(main, [*args, "--inferer", str(spec)])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert not (tmp_path / "o").exists()  # nothing written
