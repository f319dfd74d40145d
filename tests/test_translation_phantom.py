"""CycleGAN on the tiny phantom: the losses fall and the grid is kept."""

from __future__ import annotations

import numpy as np

from flare_uda.translation import CycleGAN, CycleGANConfig


def test_losses_fall_on_the_tiny_phantom():
    from flare_uda.data.phantom import generate_cohort

    ct, mr = generate_cohort("tiny", 1, 1, 0)
    cfg = CycleGANConfig(
        width=4,
        n_blocks=1,
        disc_layers=1,
        iterations=40,
        batch_size=2,
        crop_size=(24, 24),
        lr=2e-3,
        decay_fraction=0.0,
        checkpoint_every=0,
    )
    model = CycleGAN(cfg, progress=False).fit(ct, mr)
    hist = model.history_
    first = np.mean([h["cycle"] for h in hist[:5]])
    last = np.mean([h["cycle"] for h in hist[-5:]])
    assert last < 0.8 * first, (first, last)
    assert model.to_target(ct[0].image).same_geometry(ct[0].image)


def test_cli_round_trip_on_the_tiny_phantom(tmp_path):
    from click.testing import CliRunner

    from flare_uda.cli import main
    from flare_uda.data.datasets import read_dataset
    from flare_uda.data.phantom import write_cohort

    ct_dir, mr_dir = write_cohort(tmp_path / "phantom", "tiny", 1, 1, 0, progress=False)
    runner = CliRunner()
    fit = ["translate", "fit", "--source", str(ct_dir), "--target", str(mr_dir)]
    fit += ["--method", "asit", "--out", str(tmp_path / "m"), "--iterations", "2"]
    assert runner.invoke(main, fit).exit_code == 0
    apply = ["translate", "apply", "--model", str(tmp_path / "m"), "-i", str(ct_dir)]
    result = runner.invoke(main, [*apply, "-o", str(tmp_path / "fake")])
    assert result.exit_code == 0, result.output
    (real,) = read_dataset(ct_dir)
    (fake,) = read_dataset(tmp_path / "fake")
    assert fake.image.same_geometry(real.image, atol=1e-6)
    assert np.array_equal(fake.label.array, real.label.array)
    assert (real.modality, fake.modality, fake.case_id) == ("CT", "MR", real.case_id)
    assert 0.0 <= fake.image.array.min() and fake.image.array.max() <= 1.0
