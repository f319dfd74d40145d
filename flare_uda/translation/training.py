"""CycleGAN training: one step composing the losses, and a resumable loop.

The loop checkpoints networks, optimisers, schedulers, image pools and the
sampling generator's state into a work directory, so a resumed run continues
exactly where the interrupted one stopped (same result as an uninterrupted run).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from tqdm.auto import tqdm

from flare_uda._atomic import load_torch, save_torch
from flare_uda.translation.config import CycleGANConfig
from flare_uda.translation.losses import (
    cycle_loss,
    discriminator_loss,
    full_objective,
    generator_adversarial_loss,
    identity_loss,
)
from flare_uda.translation.pool import ImagePool
from flare_uda.translation.sampling import PatchSampler

LOSS_NAMES = ("G_adv", "cycle", "identity", "D")
CHECKPOINT_GLOB = "checkpoint_*.pt"


def linear_decay(iterations: int, decay_fraction: float):
    """LR factor: 1 for the first ``1 - decay_fraction`` of training, then linear to ~0."""
    n_decay = int(round(iterations * decay_fraction))
    n_const = iterations - n_decay

    def factor(step: int) -> float:
        return 1.0 - max(0, step - n_const) / float(n_decay + 1)

    return factor


def _set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def train_step(nets, opt_g, opt_d, pools, real_s, real_t, config: CycleGANConfig) -> dict:
    """One generator update (eq. 4) then one discriminator update (eq. 1).

    Parameters
    ----------
    nets : dict
        ``G_t``, ``G_s``, ``D_t``, ``D_s`` (from ``networks.build_networks``).
    opt_g, opt_d : torch.optim.Optimizer
        Over both generators / both discriminators.
    pools : dict
        ``"t"`` and ``"s"`` :class:`ImagePool` of fake target / fake source images.
    real_s, real_t : torch.Tensor, "b 1 y x" (2D) or "b 1 z y x" (3D)
    config : CycleGANConfig

    Returns
    -------
    dict of float
        ``G_adv`` (both directions), ``cycle`` and ``identity`` (unweighted sums
        over both directions) and ``D`` (both discriminators).
    """
    g_t, g_s, d_t, d_s = nets["G_t"], nets["G_s"], nets["D_t"], nets["D_s"]
    mode = config.gan_mode
    _set_requires_grad([d_t, d_s], False)
    opt_g.zero_grad(set_to_none=True)
    fake_t, fake_s = g_t(real_s), g_s(real_t)
    adv_t = generator_adversarial_loss(d_t(fake_t), mode)
    adv_s = generator_adversarial_loss(d_s(fake_s), mode)
    cyc = cycle_loss(real_s, g_s(fake_t)) + cycle_loss(real_t, g_t(fake_s))
    if config.lambda_identity > 0:
        idt = identity_loss(real_t, g_t(real_t)) + identity_loss(real_s, g_s(real_s))
    else:
        idt = torch.zeros((), device=real_s.device)
    loss_g = full_objective(adv_t, adv_s, cyc, idt, config.lambda_cycle, config.lambda_identity)
    loss_g.backward()
    opt_g.step()

    _set_requires_grad([d_t, d_s], True)
    opt_d.zero_grad(set_to_none=True)
    loss_d = discriminator_loss(d_t(real_t), d_t(pools["t"].query(fake_t.detach())), mode)
    loss_d = loss_d + discriminator_loss(d_s(real_s), d_s(pools["s"].query(fake_s.detach())), mode)
    loss_d.backward()
    opt_d.step()
    values = (adv_t + adv_s, cyc, idt, loss_d)
    return {name: float(v.detach()) for name, v in zip(LOSS_NAMES, values, strict=True)}


def latest_checkpoint(work_dir: str | os.PathLike) -> Path | None:
    """The checkpoint with the highest iteration in ``work_dir``, or None."""
    found = sorted(Path(work_dir).glob(CHECKPOINT_GLOB)) if Path(work_dir).is_dir() else []
    return found[-1] if found else None


def _to_batch(windows: np.ndarray, spatial_dims: int, device: torch.device) -> torch.Tensor:
    x = torch.from_numpy(windows)
    if spatial_dims == 2:
        x = rearrange(x, "b c z y x -> (b z) c y x")
    return x.to(device)


def check_resumable(saved: dict, config: CycleGANConfig, path: Path) -> None:
    """Raise ``ValueError`` unless a checkpoint's config equals ``config``."""
    current = config.to_dict()
    diff = {k: (saved.get(k), v) for k, v in current.items() if saved.get(k) != v}
    diff.pop("checkpoint_every", None)
    if diff:
        details = ", ".join(f"{k}: checkpoint {a!r} vs config {b!r}" for k, (a, b) in diff.items())
        raise ValueError(
            f"cannot resume from {path}: it was trained with another configuration ({details}); "
            "use another work directory"
        )


@dataclass
class _Training:
    """What a checkpoint holds besides the config: networks, optimisers, schedulers,
    image pools, the sampling generator and the loss history."""

    nets: dict[str, nn.Module]
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scheds: list[LambdaLR]
    pools: dict[str, ImagePool]
    rng: np.random.Generator
    history: list[dict] = field(default_factory=list)

    @classmethod
    def start(cls, nets: dict[str, nn.Module], config: CycleGANConfig, rng) -> _Training:
        """Adam for both pairs of networks, the linear decay, two image pools."""

        def adam(names: tuple[str, str]) -> torch.optim.Adam:
            params = itertools.chain(*(nets[n].parameters() for n in names))
            return torch.optim.Adam(params, lr=config.lr, betas=config.betas)

        opt_g, opt_d = adam(("G_t", "G_s")), adam(("D_t", "D_s"))
        decay = linear_decay(config.iterations, config.decay_fraction)
        scheds = [LambdaLR(opt_g, decay), LambdaLR(opt_d, decay)]
        pools = {"t": ImagePool(config.pool_size, rng), "s": ImagePool(config.pool_size, rng)}
        return cls(nets, opt_g, opt_d, scheds, pools, rng)

    def resume(self, path: Path, config: CycleGANConfig, device: torch.device) -> int:
        """Load the checkpoint at ``path`` (made with ``config``); its iteration."""
        state = load_torch(path, "translator checkpoint", device)
        check_resumable(state["config"], config, path)
        for name, net in self.nets.items():
            net.load_state_dict(state["nets"][name])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        for sched, s in zip(self.scheds, state["scheds"], strict=True):
            sched.load_state_dict(s)
        for key, pool in self.pools.items():
            pool.load_state_dict(state["pools"][key])
        self.rng.bit_generator.state = state["rng"]
        self.history = list(state["history"])
        return state["iteration"]

    def save(self, work_dir: str | os.PathLike, iteration: int, config: CycleGANConfig) -> None:
        """Write ``checkpoint_{iteration}.pt`` atomically; remove older checkpoints."""
        state = {
            "iteration": iteration,
            "config": config.to_dict(),
            "nets": {k: v.state_dict() for k, v in self.nets.items()},
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scheds": [s.state_dict() for s in self.scheds],
            "pools": {k: p.state_dict() for k, p in self.pools.items()},
            "rng": self.rng.bit_generator.state,
            "history": self.history,
        }
        path = Path(work_dir) / f"checkpoint_{iteration:08d}.pt"
        save_torch(state, path)
        for old in Path(work_dir).glob(CHECKPOINT_GLOB):
            if old != path:
                old.unlink()


def train_cyclegan(
    nets: dict[str, nn.Module],
    sampler_s: PatchSampler,
    sampler_t: PatchSampler,
    config: CycleGANConfig,
    rng: np.random.Generator,
    work_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> list[dict]:
    """Train the four networks in place for ``config.iterations`` steps.

    Parameters
    ----------
    nets : dict of nn.Module
        Freshly built (seeded) networks, on the training device.
    sampler_s, sampler_t : PatchSampler
        Source / target windows; they must share ``rng``.
    rng : np.random.Generator
        The generator of the samplers and pools (its state is checkpointed).
    work_dir : path-like or None
        Checkpoints ``checkpoint_{iteration}.pt`` go here every
        ``config.checkpoint_every`` iterations and at the end; an existing
        checkpoint is resumed from.
    progress : bool
        tqdm bar showing the four losses.

    Returns
    -------
    list of dict
        Losses per iteration (including those before a resume).
    """
    device = next(nets["G_t"].parameters()).device
    run = _Training.start(nets, config, rng)
    start = 0
    ckpt_path = latest_checkpoint(work_dir) if work_dir is not None else None
    if ckpt_path is not None:
        start = run.resume(ckpt_path, config, device)
    for net in nets.values():
        net.train()
    bar = tqdm(
        range(start, config.iterations),
        desc="CycleGAN",
        disable=not progress,
        initial=start,
        total=config.iterations,
    )
    for it in bar:
        real_s = _to_batch(sampler_s.sample(config.batch_size), config.spatial_dims, device)
        real_t = _to_batch(sampler_t.sample(config.batch_size), config.spatial_dims, device)
        losses = train_step(nets, run.opt_g, run.opt_d, run.pools, real_s, real_t, config)
        for sched in run.scheds:
            sched.step()
        run.history.append(losses)
        bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
        done = it + 1
        if work_dir is not None and (
            done == config.iterations
            or (config.checkpoint_every and done % config.checkpoint_every == 0)
        ):
            run.save(work_dir, done, config)
    for net in nets.values():
        net.eval()
    return run.history
