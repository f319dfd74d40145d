"""``flare-uda translate fit|apply`` round trip on tiny volumes, and its errors."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from flare_uda.cli import main
from flare_uda.data.datasets import write_dataset
from flare_uda.data.io import read_volume, write_volume
from flare_uda.volume import Case, Volume


def _volume(rng, scale, offset, shape=(4, 20, 24)) -> Volume:
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    body = ((y - 10) / 8.0) ** 2 + ((x - 12) / 10.0) ** 2 < 1
    a = offset + scale * body + rng.normal(0, 0.05 * abs(scale), shape)
    return Volume(a.astype(np.float32), (2.5, 1.5, 1.25), (3.0, -7.0, 11.0))


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    cases = []
    for i in range(2):
        image = _volume(rng, 300.0, -900.0)
        label = image.with_array((image.array > -700).astype(np.uint8))
        cases.append(Case(f"ct_{i:03d}", image, label))
    ct_dir = write_dataset(cases, tmp_path / "ct", progress=False)
    mr_dir = tmp_path / "mr"
    for i in range(2):
        write_volume(_volume(rng, 80.0, 20.0), mr_dir / f"mr_{i:03d}.nii.gz")
    return ct_dir, mr_dir


@pytest.mark.parametrize("method", ["cyclegan", "asit"])
def test_fit_apply_round_trip(method, data, tmp_path):
    ct_dir, mr_dir = data
    runner = CliRunner()
    model = tmp_path / f"model_{method}"
    args = [
        "translate",
        "fit",
        "--source",
        str(ct_dir),
        "--target",
        str(mr_dir),
        "--method",
        method,
        "--preset",
        "quick",
        "--out",
        str(model),
        "--iterations",
        "2",
        "--seed",
        "3",
        "--threads",
        "1",
    ]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (model / "translator.json").exists() and (model / "checkpoints").is_dir()
    out = tmp_path / f"fake_{method}"
    result = runner.invoke(
        main, ["translate", "apply", "--model", str(model), "-i", str(ct_dir), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    for i in range(2):
        src = read_volume(ct_dir / "imagesTr" / f"ct_{i:03d}_0000.nii.gz")
        fake = read_volume(out / "imagesTr" / f"ct_{i:03d}_0000.nii.gz")
        assert fake.same_geometry(src, atol=1e-6) and not np.allclose(fake.array, src.array)
        assert (out / "labelsTr" / f"ct_{i:03d}.nii.gz").exists()
    back = tmp_path / f"back_{method}"
    result = runner.invoke(
        main,
        [
            "translate",
            "apply",
            "--model",
            str(model),
            "-i",
            str(mr_dir),
            "-o",
            str(back),
            "--direction",
            "to_source",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in back.iterdir()) == ["mr_000.nii.gz", "mr_001.nii.gz"]


def test_cli_errors(data, tmp_path):
    ct_dir, mr_dir = data
    runner = CliRunner()
    base = ["translate", "fit", "--source", str(ct_dir), "--target", str(mr_dir)]
    result = runner.invoke(main, [*base, "--method", "cylcegan", "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "Did you mean 'cyclegan'" in result.output
    result = runner.invoke(main, [*base, "--preset", "papper", "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "Did you mean 'paper'" in result.output
    result = runner.invoke(main, [*base, "--out", str(ct_dir / "inside")])
    assert result.exit_code == 2 and "overlaps the input" in result.output
    (tmp_path / "not_a_model").mkdir()
    result = runner.invoke(
        main,
        [
            "translate",
            "apply",
            "--model",
            str(tmp_path / "not_a_model"),
            "-i",
            str(mr_dir),
            "-o",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2 and "is not a saved translator" in result.output
    model = tmp_path / "ident"
    ident = [*base, "--method", "identity", "--out", str(model)]
    result = runner.invoke(main, [*ident, "--iterations", "5"])
    assert result.exit_code == 2 and "unknown option of IdentityTranslator" in result.output
    result = runner.invoke(main, [*ident, "--preset", "quick"])
    assert result.exit_code == 2 and "IdentityTranslator has no presets" in result.output
    assert runner.invoke(main, ident).exit_code == 0
    result = runner.invoke(
        main,
        ["translate", "apply", "--model", str(model), "-i", str(mr_dir), "-o", str(mr_dir / "sub")],
    )
    assert result.exit_code == 2 and "overlaps the input" in result.output
