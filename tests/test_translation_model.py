"""CycleGAN / ASIT / identity translators on tiny seeded volumes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import flare_uda.translation.training as training
from flare_uda.translation import (
    ASIT,
    TRANSLATORS,
    CycleGAN,
    CycleGANConfig,
    Translator,
    get_translator,
)
from flare_uda.volume import Case, Volume

TINY = CycleGANConfig(
    width=4,
    n_blocks=1,
    disc_layers=1,
    iterations=2,
    batch_size=2,
    crop_size=(16, 16),
    checkpoint_every=0,
    pool_size=4,
)
DIRECTION = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])


def _volume(rng, scale: float, offset: float, shape=(6, 22, 26)) -> Volume:
    """An ellipse 'body' with one bright 'organ' on a background, plus noise."""
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    body = ((y - 11) / 9.0) ** 2 + ((x - 13) / 11.0) ** 2 < 1
    organ = (y - 9) ** 2 + (x - 10) ** 2 < 12
    a = offset + scale * (1.0 * body + 2.0 * organ) + rng.normal(0, 0.05 * abs(scale), shape)
    return Volume(a.astype(np.float32), (3.0, 1.25, 1.5), (10.0, -5.0, 2.5), DIRECTION)


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    ct = [Case(f"ct{i}", _volume(rng, 200.0, -1000.0)) for i in range(2)]
    mr = [Case(f"mr{i}", _volume(rng, -40.0, 300.0), modality="MR") for i in range(2)]
    return ct, mr


def _make(method: str, config: CycleGANConfig = TINY, **kw) -> Translator:
    if method in ("identity", "anatomy"):  # no GAN: nothing of the CycleGAN config applies
        return get_translator(method)
    return get_translator(method, config=config, progress=False, **kw)


@pytest.mark.parametrize("method", TRANSLATORS.names())
def test_every_translator_keeps_geometry_and_round_trips(method, pair, tmp_path):
    ct, mr = pair
    model = _make(method).fit(ct, mr)
    fake_mr, fake_ct = model.to_target(ct[0].image), model.to_source(mr[0].image)
    for fake, real in ((fake_mr, ct[0].image), (fake_ct, mr[0].image)):
        assert fake.shape == real.shape and fake.array.dtype == np.float32
        assert fake.spacing == real.spacing and fake.origin == real.origin
        assert np.array_equal(fake.direction, real.direction)
        assert np.isfinite(fake.array).all()
    loaded = Translator.load(model.save(tmp_path / method))
    assert type(loaded) is type(model)
    assert np.array_equal(loaded.to_target(ct[0].image).array, fake_mr.array)
    assert np.array_equal(loaded.to_source(mr[0].image).array, fake_ct.array)


def test_output_ranges(pair):
    ct, mr = pair
    cyc = _make("cyclegan").fit(ct, mr).to_target(ct[0].image).array
    asit = _make("asit").fit(ct, mr).to_target(ct[0].image).array
    assert -1.0 <= cyc.min() and cyc.max() <= 1.0
    assert 0.0 <= asit.min() and asit.max() <= 1.0


def test_3d_translator_saves_and_loads_identically(pair, tmp_path):
    ct, mr = pair
    cfg = CycleGANConfig(
        width=2,
        n_blocks=1,
        disc_layers=1,
        iterations=2,
        batch_size=1,
        spatial_dims=3,
        crop_size=(8, 12, 12),
        checkpoint_every=0,
    )
    model = CycleGAN(cfg, progress=False).fit(ct, mr)
    out = model.to_target(ct[0].image)
    assert out.same_geometry(ct[0].image)
    again = CycleGAN.load(model.save(tmp_path / "m3"))
    assert np.array_equal(again.to_target(ct[0].image).array, out.array)


def test_losses_fall_over_a_few_steps(pair):
    ct, mr = pair
    cfg = CycleGANConfig(
        width=4,
        n_blocks=1,
        disc_layers=1,
        iterations=40,
        batch_size=2,
        crop_size=(16, 16),
        lr=2e-3,
        decay_fraction=0.0,
        checkpoint_every=0,
    )
    hist = CycleGAN(cfg, progress=False).fit(ct, mr).history_
    assert len(hist) == 40 and set(hist[0]) == {"G_adv", "cycle", "identity", "D"}
    for key in ("cycle", "identity"):
        first = np.mean([h[key] for h in hist[:5]])
        last = np.mean([h[key] for h in hist[-5:]])
        assert last < 0.7 * first, (key, first, last)


def test_deterministic_for_a_seed(pair):
    ct, mr = pair
    outs = [_make("cyclegan", TINY).fit(ct, mr).to_target(ct[1].image).array for _ in range(2)]
    assert np.array_equal(outs[0], outs[1])
    other = CycleGANConfig(**{**TINY.to_dict(), "seed": 1})
    assert not np.array_equal(
        _make("cyclegan", other).fit(ct, mr).to_target(ct[1].image).array, outs[0]
    )


def test_resume_equals_uninterrupted_training(pair, tmp_path, monkeypatch):
    ct, mr = pair
    cfg = CycleGANConfig(**{**TINY.to_dict(), "iterations": 4, "checkpoint_every": 2})
    full = CycleGAN(cfg, work_dir=tmp_path / "a", progress=False).fit(ct, mr)
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["checkpoint_00000004.pt"]

    real_step, calls = training.train_step, []

    def crashing_step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("simulated crash")
        return real_step(*args, **kwargs)

    monkeypatch.setattr(training, "train_step", crashing_step)
    with pytest.raises(RuntimeError, match="simulated crash"):
        CycleGAN(cfg, work_dir=tmp_path / "b", progress=False).fit(ct, mr)
    monkeypatch.setattr(training, "train_step", real_step)
    resumed = CycleGAN(cfg, work_dir=tmp_path / "b", progress=False).fit(ct, mr)
    assert len(resumed.history_) == 4 and resumed.history_ == full.history_
    for name, net in full.networks_.items():
        for p, q in zip(
            net.state_dict().values(), resumed.networks_[name].state_dict().values(), strict=True
        ):
            assert torch.equal(p, q)

    cfg3 = CycleGANConfig(**{**cfg.to_dict(), "spatial_dims": 3, "crop_size": (8, 16, 16)})
    with pytest.raises(ValueError, match=r"cannot resume .*spatial_dims: checkpoint 2 vs config 3"):
        CycleGAN(cfg3, work_dir=tmp_path / "b", progress=False).fit(ct, mr)


def test_fit_input_errors(pair):
    ct, mr = pair
    model = _make("cyclegan")
    with pytest.raises(ValueError, match="source_cases must hold at least one case"):
        model.fit([], mr)
    with pytest.raises(ValueError, match="target_cases must hold at least one case"):
        model.fit(ct, [])
    with pytest.raises(TypeError, match="source_cases must be a list of Case or Volume, got Case"):
        model.fit(ct[0], mr)
    with pytest.raises(TypeError, match=r"target_cases\[1\] must be a Case or Volume, got ndarray"):
        model.fit(ct, [mr[0], mr[1].image.array])
    bad = ct[0].image.array.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"source_cases\[0\] must hold finite values, got 1 NaN"):
        model.fit([ct[0].image.with_array(bad)], mr)
    with pytest.raises(ValueError, match="CycleGAN is not fitted"):
        model.to_target(ct[0].image)
    model.fit(ct, mr)
    with pytest.raises(ValueError, match="volume to translate must hold finite values"):
        model.to_target(ct[0].image.with_array(bad))
    with pytest.raises(TypeError, match="expected a Volume, got Case"):
        model.to_target(ct[0])
    with pytest.raises(
        TypeError, match="CycleGAN takes a CycleGANConfig config or keywords, got dict"
    ):
        CycleGAN(TINY.to_dict())
    with pytest.raises(TypeError, match="CycleGAN options.iterations must be an int, got True"):
        CycleGAN(TINY, iterations=True)
    with pytest.raises(ValueError, match="iterations must be a positive int, got True"):
        CycleGANConfig(iterations=True)
    with pytest.raises(ValueError, match="sobel_mode must be one of"):
        ASIT(TINY, sobel_mode="4d")
    with pytest.raises(KeyError, match="unknown translator 'cylegan'. Did you mean 'cyclegan'"):
        get_translator("cylegan")
    constant = Volume(np.zeros((6, 22, 26), np.float32))
    with pytest.raises(ValueError, match="expected body voxels above"):
        _make("cyclegan").fit([constant], mr)


def test_load_errors(pair, tmp_path):
    ct, mr = pair
    with pytest.raises(FileNotFoundError, match="expected a saved translator folder"):
        Translator.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is not a saved translator: expected a valid translator"):
        Translator.load(tmp_path / "empty")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "translator.json").write_text('{"format": "something"}')
    with pytest.raises(ValueError, match="is not a saved translator: expected format"):
        Translator.load(tmp_path / "other")
    saved = _make("cyclegan").fit(ct, mr).save(tmp_path / "cyc")
    with pytest.raises(ValueError, match="holds a 'cyclegan' translator, expected a ASIT"):
        ASIT.load(saved)
    meta_path = saved / "translator.json"
    meta = json.loads(meta_path.read_text())
    meta["options"].update(spatial_dims=3, crop_size=[8, 16, 16])
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(
        ValueError, match="spatial_dims=2 weights, but the config says spatial_dims=3"
    ):
        Translator.load(saved)
    meta["name"] = "cylcegan"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(KeyError, match="Did you mean 'cyclegan'"):
        Translator.load(saved)
    meta["version"] = 3
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="expected translator format version 2 \\(or 1\\), got 3"):
        Translator.load(saved)
    (saved / "networks.pt").unlink()
    meta.update(name="cyclegan", version=2)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="networks.pt is missing"):
        Translator.load(saved)


def test_format_1_folders_still_load(pair, tmp_path):
    """Translators saved by 0.1.0 (``method`` and ``config: {cyclegan, sobel_mode}``)."""
    ct, mr = pair
    model = _make("asit", sobel_mode="2d").fit(ct, mr)
    saved = model.save(tmp_path / "asit")
    meta = json.loads((saved / "translator.json").read_text())
    options = dict(meta["options"])
    old = {"format": meta["format"], "version": 1, "method": "asit"}
    old["config"] = {"sobel_mode": options.pop("sobel_mode"), "cyclegan": options}
    (saved / "translator.json").write_text(json.dumps(old))
    loaded = Translator.load(saved)
    assert loaded.to_config() == model.to_config()
    np.testing.assert_array_equal(
        loaded.to_target(ct[0].image).array, model.to_target(ct[0].image).array
    )


def test_to_space_is_what_the_networks_see(pair):
    from flare_uda.data.anatomy import to_anatomy_space

    ct, mr = pair
    image = mr[0].image
    assert _make("identity").to_space(image) is image
    scaled = _make("cyclegan").to_space(image)
    assert scaled.same_geometry(image) and scaled.array.min() == -1.0 and scaled.array.max() == 1.0
    anatomy = _make("asit").to_space(image)
    np.testing.assert_allclose(anatomy.array, to_anatomy_space(image).array, atol=1e-6)


def test_translator_save_swaps_the_folder_whole_and_keeps_other_files(tmp_path, monkeypatch):
    from flare_uda.translation import AnatomySpace

    vol = Volume(np.linspace(-1000, 200, 4 * 16 * 16, dtype=np.float32).reshape(4, 16, 16))
    folder = tmp_path / "translator"
    AnatomySpace(sobel_mode="2d").fit([vol], [vol]).save(folder)
    (folder / "notes.txt").write_text("mine")

    def killed(self, directory):
        raise KeyboardInterrupt  # a kill in the middle of writing the new state

    monkeypatch.setattr(AnatomySpace, "_save_state", killed)
    with pytest.raises(KeyboardInterrupt):
        AnatomySpace(sobel_mode="3d").fit([vol], [vol]).save(folder)
    assert AnatomySpace.load(folder).config.sobel_mode == "2d"  # the old one, whole
    monkeypatch.undo()
    AnatomySpace(sobel_mode="3d").fit([vol], [vol]).save(folder)
    assert AnatomySpace.load(folder).config.sobel_mode == "3d"
    assert (folder / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["translator"]  # no temporaries
