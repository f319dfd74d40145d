"""The learning-budget pieces of training: slice-wise nets, time budgets, precision,
adaptive class sampling, warm starts and data-keyed checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_segmentation_trainer import make_case, tiny  # tests/ is on sys.path

from flare_uda.segmentation import NetworkConfig, train_segmenter
from flare_uda.segmentation import precision as precision_mod
from flare_uda.segmentation.networks import build_network, plan_topology_2d
from flare_uda.segmentation.organ_sampling import AdaptiveClassWeights
from flare_uda.segmentation.sampling import choose_center
from flare_uda.segmentation.schedule import TrainingClock, build_optimizer, poly_lr

SLICES = NetworkConfig(base_features=4, max_downsamplings=2, max_features=16, spatial_dims=2)


# ---------------------------------------------------------------- slice-wise network
def test_slice_topology_pools_in_plane_only():
    topo = plan_topology_2d((8, 128, 128), max_downsamplings=5)
    assert topo.strides == ((1, 1, 1),) + ((1, 2, 2),) * 5
    assert set(topo.kernel_sizes) == {(1, 3, 3)}
    assert topo.divisor == (1, 32, 32)
    assert plan_topology_2d((4, 16, 16), 5).n_stages == 3  # 16 -> 8 -> 4: bottleneck >= 4


def test_slice_network_treats_slices_independently():
    """A (1, 3, 3) net: changing one slice changes no other slice's output."""
    topo = SLICES.topology((4, 16, 16), (10.0, 6.5, 6.5))
    torch.manual_seed(0)
    net = build_network(SLICES, topo, 1, 3).eval()
    net.decoder.deep_supervision = False
    x = torch.randn(1, 1, 4, 16, 16)
    y = x.clone()
    y[:, :, 2] += 5.0
    # instance norm pools over the whole stack: compare with norms off
    for m in net.modules():
        if isinstance(m, torch.nn.InstanceNorm3d):
            m.eval()
            m.track_running_stats = False
            m.forward = lambda t: t  # noqa: B023 (identity: isolate the convolutions)
    with torch.no_grad():
        a, b = net(x), net(y)
    assert torch.equal(a[:, :, [0, 1, 3]], b[:, :, [0, 1, 3]])
    assert not torch.equal(a[:, :, 2], b[:, :, 2])


def test_slice_network_errors():
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3"):
        NetworkConfig(spatial_dims=1)
    with pytest.raises(ValueError, match="too small to downsample in plane"):
        plan_topology_2d((8, 6, 6), 3)
    with pytest.raises(ValueError, match="divisible by the total stride"):
        plan_topology_2d((8, 18, 24), 3)


def test_slice_network_trains_and_round_trips(tmp_path):
    from flare_uda.segmentation import NetworkSegmenter

    cfg = tiny(iterations=3, network=SLICES, patch_size=(4, 16, 16))
    seg = train_segmenter([make_case(0), make_case(1)], cfg, progress=False)
    seg.save(tmp_path / "m")
    back = NetworkSegmenter.load(tmp_path / "m")
    assert back.topology.kernel_sizes == seg.topology.kernel_sizes
    x = torch.randn(1, 1, 4, 16, 16)
    torch.testing.assert_close(back.predict_logits(x), seg.predict_logits(x))


def test_channels_last_trains_like_the_contiguous_layout(tmp_path):
    """quick2d's channels_last_3d: same steps, same weights (to rounding), a portable model."""
    from flare_uda.segmentation import NetworkSegmenter
    from flare_uda.segmentation.augment import AugmentConfig

    cases = [make_case(0), make_case(1)]
    base = tiny(iterations=3, network=SLICES, patch_size=(4, 16, 16), precision="fp32",
                augment=AugmentConfig(enabled=False))  # fmt: skip
    plain = train_segmenter(cases, base, progress=False)
    last = train_segmenter(cases, base.with_overrides(channels_last=True), progress=False)
    conv = next(p for p in last.network.parameters() if p.ndim == 5 and p.shape[-1] == 3)
    assert conv.is_contiguous(memory_format=torch.channels_last_3d)
    x = torch.randn(1, 1, 4, 16, 16)
    close = {"rtol": 1e-3, "atol": 1e-3}
    torch.testing.assert_close(last.predict_logits(x), plain.predict_logits(x), **close)
    last.save(tmp_path / "m")  # weights saved from channels_last load into a plain network
    back = NetworkSegmenter.load(tmp_path / "m")
    torch.testing.assert_close(back.predict_logits(x), last.predict_logits(x))


# ---------------------------------------------------------------- schedule and budget
def test_poly_lr_with_warmup():
    assert poly_lr(0.0, 0.01, 0.9, warmup=0.2) == 0.0
    assert poly_lr(0.1, 0.01, 0.9, warmup=0.2) == pytest.approx(0.005)
    assert poly_lr(0.5, 0.01, 0.9) == pytest.approx(0.01 * 0.5**0.9)
    assert poly_lr(2.0, 0.01, 0.9) == 0.0


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_optimisers_update_all_parameters_at_once(name):
    # foreach on CPU too (torch's default picks it on CUDA only); a step must
    # give the same parameters as the per-tensor loop
    cfg = tiny(optimizer=name, learning_rate=0.1)
    nets = [torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)]
    nets[1].load_state_dict(nets[0].state_dict())
    fused = build_optimizer(nets[0].parameters(), cfg)
    assert fused.param_groups[0]["foreach"] is True
    defaults = {k: v for k, v in fused.defaults.items() if k != "decoupled_weight_decay"}
    loop = type(fused)(nets[1].parameters(), **{**defaults, "foreach": False})
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    for net, opt in zip(nets, (fused, loop), strict=True):
        net(x).square().sum().backward()
        opt.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_clock_progress_by_steps_or_budget():
    clock = TrainingClock(100, None)
    assert clock.progress(25) == 0.25 and not clock.finished(99) and clock.finished(100)
    timed = TrainingClock(100, budget_seconds=10.0, elapsed=5.0)
    assert timed.progress(0) == 0.5  # half the budget spent, no step yet
    assert timed.progress(80) == 0.8  # steps ahead of the clock
    assert not timed.finished(10)
    timed.elapsed = 10.0
    assert timed.finished(10)


def test_time_budget_stops_the_run(monkeypatch):
    """With a budget, the run stops once the (fake) clock passes it, before iterations."""
    import flare_uda.segmentation.schedule as schedule

    now = [0.0]

    def fake_clock():
        now[0] += 1.0  # every reading: one second later
        return now[0]

    monkeypatch.setattr(schedule.time, "perf_counter", fake_clock)
    cfg = tiny(iterations=1000, time_budget_minutes=0.1)  # 6 s
    seg = train_segmenter([make_case(0)], cfg, progress=False)
    done = seg.history_["iterations_done"]
    assert 1 <= done < 10 and len(seg.history_["loss"]) == done


def test_time_budget_validation():
    with pytest.raises(ValueError, match="time_budget_minutes must be a number > 0"):
        tiny(time_budget_minutes=0)
    with pytest.raises(ValueError, match="time_budget_minutes must be a number > 0"):
        tiny(time_budget_minutes=True)
    with pytest.raises(ValueError, match="warmup must be a fraction"):
        tiny(warmup=1.0)
    with pytest.raises(ValueError, match="iterations must be a positive int"):
        tiny(iterations=True)


# ---------------------------------------------------------------- precision
def test_precision_auto_falls_back_to_fp32_without_native_bf16(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(precision_mod, "cpu_supports_bf16", lambda: False)
    name, why = precision_mod.resolve_precision("auto", cpu)
    assert name == "fp32" and "fell back" in why
    with pytest.raises(ValueError, match="no native bf16 support"):
        precision_mod.resolve_precision("bf16", cpu)
    monkeypatch.setattr(precision_mod, "cpu_supports_bf16", lambda: True)
    assert precision_mod.resolve_precision("auto", cpu)[0] == "bf16"
    assert precision_mod.resolve_precision("fp32", cpu)[0] == "fp32"
    assert precision_mod.resolve_precision("auto", torch.device("cuda"))[0] == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        precision_mod.resolve_precision("fp16", cpu)


def test_training_records_the_precision_used(monkeypatch):
    monkeypatch.setattr(precision_mod, "cpu_supports_bf16", lambda: False)
    seg = train_segmenter([make_case(0)], tiny(iterations=2, precision="auto"), progress=False)
    assert seg.history_["precision"].startswith("fp32")
    seg = train_segmenter([make_case(0)], tiny(iterations=2, precision="fp32"), progress=False)
    assert seg.history_["precision"] == "fp32 asked for"


# ---------------------------------------------------------------- adaptive class sampling
def test_adaptive_weights_follow_running_dice():
    w = AdaptiveClassWeights(3, momentum=0.0, floor=0.05)
    target = torch.zeros(1, 1, 2, 4, 4, dtype=torch.long)
    target[0, 0, 0, :2] = 1  # 8 voxels of class 1
    target[0, 0, 1, :1] = 2  # 4 voxels of class 2
    logits = torch.zeros(1, 3, 2, 4, 4)
    logits[:, 1] = (target[:, 0] == 1).float() * 5  # class 1 perfect, class 2 missed
    w.update(logits, target)
    np.testing.assert_allclose(w.dice.numpy()[1:], [1.0, 0.0])
    np.testing.assert_allclose(w.weights()[1:], [0.05, 1.0])


def test_adaptive_weights_ignore_absent_classes_and_validate():
    w = AdaptiveClassWeights(3, momentum=0.5)
    w.dice[2] = 0.8
    target = torch.ones(1, 1, 1, 2, 2, dtype=torch.long)
    w.update(torch.zeros(1, 3, 1, 2, 2), target)  # class 2 absent: unchanged
    assert w.dice[2] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="expected logits 'b 3 z y x'"):
        w.update(torch.zeros(1, 4, 1, 2, 2), target)
    with pytest.raises(ValueError, match="floor must be in"):
        AdaptiveClassWeights(3, floor=0)
    other = AdaptiveClassWeights(4)
    with pytest.raises(ValueError, match="running Dice of 4 classes"):
        other.load_state_dict(w.state_dict())


def test_weighted_centres_favour_heavy_classes():
    rng = np.random.default_rng(0)
    locations = {1: np.array([[0, 0, 0]]), 2: np.array([[5, 5, 5]])}
    weights = np.array([0.0, 0.1, 0.9])
    hits = [
        tuple(choose_center((8, 8, 8), locations, True, rng, weights)) == (5, 5, 5)
        for _ in range(2000)
    ]
    assert np.mean(hits) == pytest.approx(0.9, abs=0.03)


def test_adaptive_sampling_trains_and_is_checkpointed(tmp_path):
    cfg = tiny(iterations=3, class_sampling="adaptive")
    seg = train_segmenter([make_case(0), make_case(1)], cfg, tmp_path, progress=False)
    state = torch.load(tmp_path / "checkpoint_final.pt", weights_only=False)
    assert len(state["class_weights"]["dice"]) == 14
    assert any(d > 0 for d in state["class_weights"]["dice"][1:3])
    assert seg.history_["iterations_done"] == 3


# ---------------------------------------------------------------- warm start
def test_warm_start_loads_weights_and_checks_shapes(tmp_path):
    cases = [make_case(0), make_case(1)]
    first = train_segmenter(cases, tiny(iterations=2), tmp_path / "a", progress=False)
    zero_lr = tiny(iterations=1, learning_rate=1e-12, augment=first_aug())
    warm = train_segmenter(cases, zero_lr, init_from=tmp_path / "a", progress=False)
    for (k, v), w in zip(
        first.network.state_dict().items(), warm.network.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(v, w, atol=1e-6, rtol=0, msg=k)
    wider = tiny(iterations=1, network=NetworkConfig(base_features=8, max_downsamplings=2))
    with pytest.raises(ValueError, match="cannot warm-start: the weights do not fit"):
        train_segmenter(cases, wider, init_from=first, progress=False)
    with pytest.raises(FileNotFoundError, match="model folder or weights file"):
        train_segmenter(cases, tiny(iterations=1), init_from=tmp_path / "none", progress=False)
    with pytest.raises(TypeError, match="init_from must be"):
        train_segmenter(cases, tiny(iterations=1), init_from=3, progress=False)


def first_aug():
    from flare_uda.segmentation.augment import AugmentConfig

    return AugmentConfig(enabled=False)


# ---------------------------------------------------------------- checkpoints keyed by data
def test_checkpoint_of_other_data_is_refused(tmp_path):
    cfg = tiny(iterations=2)
    train_segmenter([make_case(0), make_case(1)], cfg, tmp_path, progress=False)
    # same config, same data: the finished run is returned as is
    again = train_segmenter([make_case(0), make_case(1)], cfg, tmp_path, progress=False)
    assert again.history_["iterations_done"] == 2
    with pytest.raises(ValueError, match="trained on other data"):
        train_segmenter([make_case(0), make_case(5)], cfg, tmp_path, progress=False)


def test_unreadable_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "checkpoint_latest.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read the training checkpoint"):
        train_segmenter([make_case(0)], tiny(iterations=2), tmp_path, progress=False)


# ---------------------------------------------------------------- in-plane augmentation
def test_in_plane_augmentation_moves_every_slice_alike():
    """Slices as 2D images: one spatial transform for the whole stack, z untouched."""
    from flare_uda.segmentation.augment import (
        AugmentConfig,
        build_transforms,
        initial_patch_size,
    )

    cfg = AugmentConfig(rotation_deg=45.0, intensity=False, mirror_axes=(0, 2))
    patch = (3, 32, 32)
    crop = initial_patch_size(patch, cfg, in_plane=True)
    assert crop[0] == 3 and min(crop[1:]) > 32  # only y and x enlarged
    torch.manual_seed(0)
    one = torch.randn(1, 1, *crop[1:])
    image = one.expand(1, 3, *crop[1:]).clone()  # three identical slices
    seg = (one > 0).to(torch.int16).expand(1, 3, *crop[1:]).clone()
    transform = build_transforms(patch, cfg, in_plane=True)
    for _ in range(10):
        out = transform(image=image.clone(), segmentation=seg.clone())
        assert out["image"].shape == (1, *patch) and out["segmentation"].shape == (1, *patch)
        torch.testing.assert_close(out["image"][0, 0], out["image"][0, 2])
        assert torch.equal(out["segmentation"][0, 0], out["segmentation"][0, 1])


def test_single_slice_patches_train():
    cfg = tiny(iterations=2, network=SLICES, patch_size=(1, 16, 16), batch_size=4)
    seg = train_segmenter([make_case(0)], cfg, progress=False)
    assert seg.history_["iterations_done"] == 2
