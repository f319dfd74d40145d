"""One conformance test per plug-in kind, parametrized over every registered class.

A plug-in registered tomorrow is checked here the day it is registered: that
``from_config(to_config())`` gives back every option (also through JSON),
and that it does its kind's job. Plug-ins must be constructible with default
options; the few built-ins that need some (or a short training length for
speed) get them from ``KWARGS``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_translation_model import TINY

from flare_uda.executor import EXECUTORS
from flare_uda.inference import INFERERS, SegmentationPlan
from flare_uda.plugin import KINDS, registry
from flare_uda.pseudolabel import ENSEMBLERS, FILTERS, UncertaintyFilter
from flare_uda.registration import MATCHERS, REGISTRARS
from flare_uda.segmentation import NetworkSegmenter
from flare_uda.translation import TRANSLATORS
from flare_uda.volume import Case, Volume

TINY_GAN = TINY  # the translation tests' tiny CycleGAN, one definition
PLAN = SegmentationPlan(patch_size=(8, 16, 16), spacing=(4.0, 2.0, 2.0), num_classes=3)
KWARGS = {
    ("translator", "cyclegan"): {"config": TINY_GAN, "progress": False},
    ("translator", "asit"): {"config": TINY_GAN, "progress": False},
    ("segmenter", "network"): {
        "plan": PLAN,
        "strides": [[1, 1, 1], [1, 2, 2]],
        "kernel_sizes": [[1, 3, 3], [3, 3, 3]],
        "architecture": {"base_features": 4, "max_downsamplings": 1, "max_features": 8},
    },
    ("segmenter", "nnunet"): {"model_folder": "/models/Dataset501/nnUNetTrainer", "fold": "all"},
    ("filter", "uncertainty"): {"keep_fraction": 0.5},
    ("filter", "volume_prior"): {"mean_volumes": {1: 1000.0}, "spacing": (4.0, 2.0, 2.5)},
    ("filter", "all_of"): {"filters": [UncertaintyFilter(keep_fraction=1.0)]},
    ("executor", "process"): {"workers": 2, "progress": False},
    ("executor", "serial"): {"progress": False},
    ("executor", "ray"): {"workers": 2, "progress": False},
}
GEOMETRY = {"spacing": (4.0, 2.0, 2.5), "origin": (-10.0, 5.0, 3.0)}
EVERY_PLUGIN = [(kind, name) for kind in KINDS for name in registry(kind).names()]


@pytest.mark.parametrize(("kind", "name"), EVERY_PLUGIN, ids=[f"{k}-{n}" for k, n in EVERY_PLUGIN])
def test_from_config_round_trips_every_option(kind, name):
    plugin = _make(kind, name, registry(kind))
    config = plugin.to_config()
    assert config["name"] == name == plugin.name
    again = type(plugin).from_config(config)
    assert type(again) is type(plugin) and again.config == plugin.config
    via_json = registry(kind).get(name).from_config(json.loads(json.dumps(config)))
    assert via_json.config == plugin.config and via_json.to_config() == config


def _blob(shift=(0, 0, 0), shape=(12, 24, 24)) -> np.ndarray:
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    c = np.array(shape) / 2 + np.array(shift)
    r = ((z - c[0]) / 3.5) ** 2 + ((y - c[1]) / 6) ** 2 + ((x - c[2]) / 5) ** 2
    lab = (r < 1).astype(np.uint8)
    lab[(r < 1) & (x > c[2])] = 2
    return lab


def _case(cid: str, shift=(0, 0, 0), modality="MR", seed=0) -> Case:
    lab = _blob(shift)
    img = 100.0 * lab + np.random.default_rng(seed).normal(0, 5, lab.shape) + 50
    return Case(cid, Volume(img.astype(np.float32), **GEOMETRY), Volume(lab, **GEOMETRY), modality)


def _make(kind: str, name: str, registry):
    return registry.get(name)(**KWARGS.get((kind, name), {}))


@pytest.mark.parametrize("name", TRANSLATORS.names())
def test_translator_conformance(name, tmp_path):
    t = _make("translator", name, TRANSLATORS)
    ct = [_case("ct0", modality="CT", seed=1), _case("ct1", (1, 2, 0), "CT", seed=2)]
    mr = [_case("mr0", seed=3)]
    assert t.fit(ct, mr) is t
    fake = t.to_target(ct[0].image)
    assert fake.same_geometry(ct[0].image) and np.isfinite(fake.array).all()
    assert t.to_source(mr[0].image).same_geometry(mr[0].image)
    loaded = type(t).load(t.save(tmp_path / "model"))
    np.testing.assert_allclose(loaded.to_target(ct[0].image).array, fake.array, atol=1e-5)


@pytest.mark.parametrize("name", REGISTRARS.names())
def test_registrar_conformance(name):
    fixed, moving = _case("f").label, _case("m", shift=(1, 2, -2)).label
    reg = _make("registrar", name, REGISTRARS)
    reg = type(reg)(
        **{**KWARGS.get(("registrar", name), {}), "features": "labels", "organs": (1, 2)}
    )
    assert reg.fit(moving, fixed) is reg
    moved = reg.transform(moving, is_label=True)
    assert moved.same_geometry(fixed)
    assert set(np.unique(moved.array)) <= {0, 1, 2}
    before = (moving.array == fixed.array).mean()
    assert (moved.array == fixed.array).mean() >= before


@pytest.mark.parametrize("name", MATCHERS.names())
def test_matcher_conformance(name):
    query = [_case("q0"), _case("q1")]
    pool = [_case("p0"), _case("p1", (0, 1, 0))]
    pairs = _make("matcher", name, MATCHERS).match(query, pool)
    assert [q for q, _ in pairs] == ["q0", "q1"]
    assert all(p in {"p0", "p1"} for _, p in pairs)


class _Constant(torch.nn.Module):
    def forward(self, x):
        b, _, *spatial = x.shape
        out = torch.zeros(b, 3, *spatial)
        out[:, 1] = x[:, 0]  # bright voxels -> organ 1
        return out


@pytest.mark.parametrize("name", INFERERS.names())
def test_inferer_conformance(name):
    seg = NetworkSegmenter.from_network(_Constant(), PLAN)
    vol = _case("c").image
    out = _make("inferer", name, INFERERS)(vol, seg)
    assert out.same_geometry(vol)
    assert np.issubdtype(out.array.dtype, np.integer)
    assert out.array.max() <= 2


HISTORY = {f"c{i}": [_blob((0, i % 2, 0)), _blob((0, 0, i))] for i in range(4)}


@pytest.mark.parametrize("name", FILTERS.names())
def test_filter_conformance(name):
    f = _make("filter", name, FILTERS)
    if f.learns_from_source:  # a prior: learned from labelled CT, checked against the bodies
        assert f.fit([_case("ct0", modality="CT", seed=1), _case("ct1", (1, 2, 0), "CT", 2)]) is f
    else:
        kept = f.select(HISTORY)
        assert set(kept) <= set(HISTORY)
        assert kept == [c for c in HISTORY if c in kept]  # history order
    images = {cid: _case(cid, seed=i).image for i, cid in enumerate(HISTORY)}
    organs = f.select_organs(HISTORY, images)
    assert list(organs) == [c for c in HISTORY if c in organs]
    assert all(o and set(o) <= set(range(1, 14)) for o in organs.values())
    if not f.learns_from_source:
        assert list(organs) == kept


@pytest.mark.parametrize("name", ENSEMBLERS.names())
def test_ensembler_conformance(name):
    labels = HISTORY["c3"]
    fused = _make("ensembler", name, ENSEMBLERS)(labels)
    assert fused.shape == labels[0].shape
    assert set(np.unique(fused)) <= set(np.unique(np.stack(labels)))
    np.testing.assert_array_equal(_make("ensembler", name, ENSEMBLERS)([labels[0]] * 2), labels[0])


def _square(x: int) -> int:
    return x * x


@pytest.mark.parametrize("name", EXECUTORS.names())
def test_executor_conformance(name, request):
    if name == "ray":
        request.getfixturevalue("ray_runtime")  # one shared local runtime; skips without Ray
    assert _make("executor", name, EXECUTORS).map(_square, [3, 1, 2]) == [9, 1, 4]


def test_network_segmenter_conformance():
    """A segmenter built from its options predicts logits of the plan's shape (untrained)."""
    seg = _make("segmenter", "network", registry("segmenter"))
    out = seg.predict_logits(torch.zeros(1, 1, *PLAN.patch_size))
    assert tuple(out.shape) == (1, PLAN.num_classes, *PLAN.patch_size)
