"""Training on several processes (DDP, gloo on the CPU): the global batch, the loss and the
update of N ranks equal one process's; rank 0 writes; a torchrun launch resumes.

Tolerance: with ``precision="fp32"`` 2 ranks and 1 rank agree to float32
rounding (loss curves within 1e-5, measured 1.2e-7 over 6 steps; weights within
1e-5). Under bf16 autocast (``precision="auto"`` on a CPU with native bf16) they
differ by bf16 rounding (measured: 1.2e-3 in the loss after 6 steps).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import torch
from test_segmentation_trainer import make_case

from flare_uda.segmentation import get_preset
from flare_uda.segmentation.augment import build_transforms, initial_patch_size
from flare_uda.segmentation.data import fit_preprocessor, prepare_cases
from flare_uda.segmentation.distributed import (
    Ranks,
    ShardedBatchStream,
    from_environment,
    is_main,
    shard,
    start,
)
from flare_uda.segmentation.launch import launch_training, torchrun_command, write_job
from flare_uda.segmentation.networks import NetworkConfig
from flare_uda.segmentation.organ_sampling import AdaptiveClassWeights

CASES = [make_case(0), make_case(1, annotated=(1,)), make_case(2)]


def config(**kw):
    return get_preset("tiny", **{"batch_size": 2, "precision": "fp32", **kw})


def test_shards_cover_the_global_batch_once():
    for batch, world in ((2, 2), (5, 2), (7, 3), (4, 1)):
        parts = [list(shard(batch, Ranks(r, world, r))) for r in range(world)]
        assert sum(parts, []) == list(range(batch))
        assert all(parts)


SLICES = NetworkConfig(base_features=4, max_downsamplings=2, max_features=16, spatial_dims=2)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"network": SLICES, "patch_size": (1, 16, 16), "batch_size": 4}],
    ids=["3d", "slice-wise"],
)
def test_any_number_of_ranks_makes_the_same_global_batch(overrides):
    cfg = config(iterations=3, **overrides)
    in_plane = cfg.network.spatial_dims == 2
    train = prepare_cases(CASES, fit_preprocessor(CASES, cfg.spacing, "zscore"), 0, False)
    crop = initial_patch_size(cfg.patch_size, cfg.augment, in_plane)
    transform = build_transforms(cfg.patch_size, cfg.augment, in_plane)

    def batch(rank: int, world: int, it: int):
        ranks = Ranks(rank, world, rank)
        return ShardedBatchStream(train, cfg, crop, transform, 0, 3, ranks=ranks).batch(it)

    for it in range(3):
        whole = batch(0, 1, it)
        a, b = batch(0, 2, it), batch(1, 2, it)
        assert a[0] == b[0] == it and a[1].shape[0] == cfg.batch_size // 2
        assert tuple(whole[1].shape[2:]) == cfg.patch_size
        for k in (1, 2, 3):
            torch.testing.assert_close(torch.cat([a[k], b[k]]), whole[k], rtol=0, atol=0)


def test_ranks_from_the_environment(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert from_environment() is None and is_main()
    assert start(torch.device("cpu"), 1) == (None, torch.device("cpu"))
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert from_environment() == Ranks(1, 2, 1) and not is_main()
    with pytest.raises(ValueError, match=r"batch_size 1 is split across 2 processes"):
        start(torch.device("cpu"), 1)
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="expected 0 <= RANK < WORLD_SIZE, got RANK=2"):
        from_environment()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ValueError, match="expected integer RANK, WORLD_SIZE and LOCAL_RANK"):
        from_environment()


def test_launch_errors(tmp_path):
    with pytest.raises(ValueError, match="processes must be a positive int, got 0"):
        launch_training(CASES, config(), tmp_path, 0)
    with pytest.raises(TypeError, match="config must be a TrainConfig, got dict"):
        launch_training(CASES, {"iterations": 1}, tmp_path, 1)


# ------------------------------------------------------------------- one step
def _one_step(rank: int, world: int, port: int, out: str) -> None:
    """Rank ``rank`` of ``world``: one training step on its share; rank 0 saves the result."""
    import torch.distributed as dist

    from flare_uda.segmentation.distributed import wrap
    from flare_uda.segmentation.losses import annotated_mask, deep_supervision_loss
    from flare_uda.segmentation.networks import build_network, deep_supervision_weights
    from flare_uda.segmentation.rank_sums import summing
    from flare_uda.segmentation.schedule import build_optimizer

    cfg = config()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 1, *cfg.patch_size, generator=g)
    y = torch.randint(-1, 3, (4, 1, *cfg.patch_size), generator=g)  # -1: ignored voxels
    mask = annotated_mask([(1, 2), (1,), (2,), (1, 2)], cfg.num_classes)
    torch.manual_seed(0)
    topology = cfg.network.topology(cfg.patch_size, cfg.spacing)
    net = build_network(cfg.network, topology, 1, cfg.num_classes)
    weights = deep_supervision_weights(topology.n_stages - 1).tolist()
    ranks = None
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
        ranks = Ranks(rank, world, rank)
    model = wrap(net, ranks, torch.device("cpu"))
    part = shard(4, ranks) if ranks is not None else range(4)
    sel = slice(part.start, part.stop)
    optimizer = build_optimizer(net.parameters(), cfg)
    sampling = AdaptiveClassWeights(cfg.num_classes, momentum=0.5)
    with summing(ranks):
        outputs = model(x[sel])
        loss = deep_supervision_loss(outputs, y[sel], mask[sel], weights, cfg.head)
        loss.backward()
        sampling.update(outputs[0].detach(), y[sel])  # counts of the global batch
    torch.nn.utils.clip_grad_norm_(net.parameters(), 12.0)
    optimizer.step()
    if rank == 0:
        torch.save((loss.item(), net.state_dict(), sampling.weights()), out)
    if ranks is not None:
        dist.destroy_process_group()


def test_two_ranks_take_the_one_process_step(tmp_path):
    import torch.multiprocessing as mp

    _one_step(0, 1, 0, str(tmp_path / "one.pt"))
    mp.spawn(_one_step, args=(2, 29000 + os.getpid() % 1000, str(tmp_path / "two.pt")), nprocs=2)
    loss1, state1, sampling1 = torch.load(tmp_path / "one.pt", weights_only=False)
    loss2, state2, sampling2 = torch.load(tmp_path / "two.pt", weights_only=False)
    assert loss2 == pytest.approx(loss1, rel=1e-6)
    assert not np.allclose(sampling1, 1.0)  # the step moved the adaptive class weights
    np.testing.assert_allclose(sampling2, sampling1, rtol=0, atol=1e-12)
    for k, v in state1.items():
        torch.testing.assert_close(state2[k], v, rtol=1e-5, atol=1e-7, msg=k)


# --------------------------------------------------------------- torchrun runs
def _history(work) -> list[float]:
    return json.loads((work / "history.json").read_text())["loss"]


@pytest.mark.slow
def test_torchrun_two_processes_train_like_one_and_resume(tmp_path):
    cfg = config(iterations=6, checkpoint_every=1)
    one = launch_training(CASES, cfg, tmp_path / "one", 1, device="cpu", progress=False)
    work = tmp_path / "two"
    job = write_job(CASES, cfg, work, device="cpu", progress=False)
    proc = subprocess.Popen(
        torchrun_command(2, job), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    while proc.poll() is None and not (
        (work / "history.json").exists() and len(_history(work)) >= 3
    ):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # every rank, mid-run
    proc.wait()
    assert not (work / "checkpoint_final.pt").exists()
    two = launch_training(CASES, cfg, work, 2, device="cpu", progress=False)  # resumes
    np.testing.assert_allclose(two.history_["loss"], one.history_["loss"], rtol=0, atol=1e-5)
    for (k, v), w in zip(
        one.network.state_dict().items(), two.network.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(w, v, rtol=1e-5, atol=1e-5, msg=k)
    assert sorted(p.name for p in work.glob("checkpoint_*")) == [
        "checkpoint_final.pt",
        "checkpoint_latest.pt",
    ]


@pytest.mark.slow
def test_torchrun_training_starts_from_warm_start_weights(tmp_path):
    """``init_from`` (the pipeline's ``warm_start``) reaches every rank of a launch."""
    from flare_uda.segmentation import train_segmenter

    start = train_segmenter(CASES, config(iterations=2), progress=False, device="cpu")
    cfg = config(iterations=1, learning_rate=1e-9, seed=5)  # a step that moves nothing
    warm = launch_training(CASES, cfg, tmp_path, 2, "cpu", init_from=start, progress=False)
    state = warm.network.state_dict()
    for k, v in start.network.state_dict().items():
        torch.testing.assert_close(state[k], v, rtol=0, atol=1e-6, msg=k)
    scratch = train_segmenter(CASES, cfg, progress=False, device="cpu").network.state_dict()
    assert any(not torch.allclose(scratch[k], v, atol=1e-3) for k, v in state.items())


def test_runner_train_processes_errors(tmp_path):
    from flare_uda.pipeline import Runner

    with pytest.raises(ValueError, match="train_processes must be a positive int, got 0"):
        Runner(tmp_path, train_processes=0)
    with pytest.raises(ValueError, match="train_processes must be a positive int, got 2.0"):
        Runner(tmp_path, train_processes=2.0)


@pytest.mark.slow
def test_pipeline_training_stage_and_cli_train_under_torchrun(tmp_path):
    import sys

    from flare_uda.data.io import write_volume
    from flare_uda.pipeline import Cases, Runner, Train, get_preset
    from flare_uda.segmentation import NetworkSegmenter

    section = get_preset("tiny").segmentation
    runner = Runner(tmp_path / "run", device="cpu", progress=False, train_processes=2)
    model = runner.get(Train("train", section, Cases("ct", CASES)))
    folder = next((tmp_path / "run" / "stages").glob("train-*"))
    assert (folder / "DONE.json").exists() and (folder / "work" / "checkpoint_final.pt").exists()
    assert model.plan == NetworkSegmenter.load(folder / "model").plan

    for case in CASES:
        write_volume(case.image, tmp_path / "images" / f"{case.case_id}.nii.gz")
        write_volume(case.label, tmp_path / "labels" / f"{case.case_id}.nii.gz", is_label=True)
    cli = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    args = ["-m", "flare_uda", "train", "--images", str(tmp_path / "images"), "--labels"]
    args += [str(tmp_path / "labels"), "--modality", "MR", "--preset", "tiny", "--quiet"]
    res = subprocess.run(
        [*cli, *args, "--device", "cpu", "--out", str(tmp_path / "model")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("trained 3 case(s), 4 iterations") == 1  # rank 0 reports
    assert NetworkSegmenter.load(tmp_path / "model").plan.normalization == "zscore"
