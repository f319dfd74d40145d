"""``--executor`` / ``--ray-address`` on predict, evaluate, demo and adapt: same files, clear
errors; ``--train-processes`` on demo and adapt."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from click.testing import CliRunner
from inference_support import blob_volume, tiny_network_segmenter

from flare_uda.cli import main
from flare_uda.data.io import read_label, write_volume


@pytest.fixture
def predict_args(tmp_path):
    model = tiny_network_segmenter().save(tmp_path / "model")
    for i in range(3):
        write_volume(blob_volume(seed=i), tmp_path / "images" / f"c{i}_0000.nii.gz")
    return ["predict", "--model", str(model), "-i", str(tmp_path / "images"), "--step", "0.75"]


def invoke(args: list[str]):
    return CliRunner().invoke(main, args)


def predicted(folder) -> dict[str, np.ndarray]:
    return {p.name: read_label(p).array for p in sorted(folder.iterdir())}


def test_predict_on_a_process_pool_writes_the_serial_files(predict_args, tmp_path):
    assert invoke([*predict_args, "-o", str(tmp_path / "a")]).exit_code == 0
    res = invoke([*predict_args, "-o", str(tmp_path / "b"), "--executor", "process"])
    assert res.exit_code == 0, res.output
    serial, pool = predicted(tmp_path / "a"), predicted(tmp_path / "b")
    assert sorted(pool) == ["c0.nii.gz", "c1.nii.gz", "c2.nii.gz"]
    for name, label in serial.items():
        np.testing.assert_array_equal(pool[name], label, err_msg=name)


def test_predict_and_evaluate_on_ray_write_the_serial_files(predict_args, tmp_path, ray_runtime):
    assert invoke([*predict_args, "-o", str(tmp_path / "a")]).exit_code == 0
    res = invoke([*predict_args, "-o", str(tmp_path / "b"), "--executor", "ray"])
    assert res.exit_code == 0, res.output
    serial, ray = predicted(tmp_path / "a"), predicted(tmp_path / "b")
    assert sorted(ray) == sorted(serial)
    for name, label in serial.items():
        np.testing.assert_array_equal(ray[name], label, err_msg=name)
    both = ["evaluate", "--pred", str(tmp_path / "b"), "--ref", str(tmp_path / "a"), "--no-plot"]
    assert invoke([*both, "--out", str(tmp_path / "e1")]).exit_code == 0
    res = invoke([*both, "--out", str(tmp_path / "e2"), "--executor", "ray"])
    assert res.exit_code == 0, res.output
    for name in ("metrics.csv", "summary.csv"):
        assert (tmp_path / "e1" / name).read_text() == (tmp_path / "e2" / name).read_text()


def test_demo_takes_the_engine_into_its_config():
    res = invoke(["demo", "--preset", "tiny", "--executor", "process", "--print-config"])
    assert res.exit_code == 0, res.output
    assert "executor:\n  name: process\n  options: {workers: null, progress: true}" in res.output
    pytest.importorskip("ray")
    base = ["demo", "--preset", "tiny", "--print-config", "--executor", "ray"]
    res = invoke([*base, "--ray-address", "10.0.0.1:6379"])
    assert res.exit_code == 0, res.output
    assert "name: ray\n  options: {address: '10.0.0.1:6379', workers: null" in res.output


class Stop(Exception):
    """Raised by the stand-in for adapt's run, after it saw what it was given."""


def test_adapt_takes_the_engine_and_the_training_processes(tmp_path, monkeypatch):
    from adapt_support import write_user_folders

    import flare_uda.pipeline.adapt as adapt_module

    seen = []

    def run_prepared(prepared, device, progress, train_processes):
        seen.append((prepared.config.executor, train_processes))
        raise Stop

    monkeypatch.setattr(adapt_module, "run_prepared", run_prepared)
    monkeypatch.setenv("FLARE_UDA_DEBUG", "1")  # Stop reaches the test, not an error line
    user = write_user_folders(tmp_path, n_mr=2)
    argv = ["adapt", "--source", str(user["ct_nnunet"]), "--target", str(user["mr"])]
    argv += ["--sequences", str(user["sequences"]), "--out", str(tmp_path / "run")]
    argv += ["--preset", "tiny", "--device", "cpu", "--quiet"]
    assert isinstance(invoke(argv).exception, Stop)
    res = invoke([*argv, "--executor", "process", "--train-processes", "2"])
    assert isinstance(res.exception, Stop), res.output
    assert [(e.name, n) for e, n in seen] == [("serial", 1), ("process", 2)]
    res = invoke([*argv, "--ray-address", "auto"])
    assert res.exit_code == 2 and "--ray-address needs --executor ray" in res.output
    assert not (tmp_path / "run" / "stages").exists() and len(seen) == 2
    pytest.importorskip("ray")
    assert isinstance(invoke([*argv, "--executor", "ray", "--ray-address", "auto"]).exception, Stop)
    assert (seen[-1][0].name, seen[-1][0].options.address) == ("ray", "auto")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--executor", "rya"], "unknown executor 'rya'. Did you mean 'ray'?"),
        (["--ray-address", "auto"], "--ray-address needs --executor ray, got the 'serial' engine"),
    ],
)
def test_engine_option_errors_are_usage_errors(predict_args, tmp_path, extra, message):
    res = invoke([*predict_args, "-o", str(tmp_path / "o"), *extra])
    assert res.exit_code == 2 and message in res.output, res.output


def test_ray_without_ray_installed_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    res = invoke(["demo", "--preset", "tiny", "--executor", "ray", "--print-config"])
    assert res.exit_code == 2, res.output
    assert "pip install 'flare-uda[distributed]'" in res.output
