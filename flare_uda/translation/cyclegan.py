"""CycleGAN translator (image space): composes networks, losses, sampler and trainer.

Images enter the networks robustly scaled to [-1, 1]
(:func:`~flare_uda.translation.intensity.robust_scale`); ``to_target`` of a CT
therefore returns a fake MR in that scaled range, float32, on the CT's grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from flare_uda._atomic import load_torch, save_torch
from flare_uda.translation.apply import translate_patches, translate_slices
from flare_uda.translation.base import DIRECTIONS, TRANSLATORS, Translator
from flare_uda.translation.config import PRESETS, CycleGANConfig
from flare_uda.translation.intensity import robust_scale
from flare_uda.translation.networks import build_networks
from flare_uda.translation.sampling import PatchSampler
from flare_uda.translation.training import train_cyclegan
from flare_uda.volume import Volume

WEIGHTS_FILE = "networks.pt"


@TRANSLATORS.register("cyclegan")
class CycleGAN(Translator):
    """Unpaired CycleGAN between source (CT) and target (MR) images.

    Options: :class:`CycleGANConfig` (default: the ``quick`` preset); presets
    ``quick`` and ``paper`` (:attr:`presets`). Runtime keywords ``work_dir``
    (training checkpoints; training resumes from the latest one), ``device``
    and ``progress``: see :class:`~flare_uda.translation.base.Translator`.

    Attributes
    ----------
    networks_ : dict of nn.Module
        ``G_t`` (source -> target), ``G_s``, ``D_t``, ``D_s`` after fit/load.
    history_ : list of dict
        Per-iteration losses ``G_adv``, ``cycle``, ``identity``, ``D`` (after fit).
    """

    config_class = CycleGANConfig
    presets = PRESETS

    # ------------------------------------------------------- network space
    def network_input(self, volume: Volume, domain: str = "target") -> np.ndarray:
        """The image as the networks see it: ``"z y x"`` float32 in [-1, 1].

        ``domain`` (``"source"``: a CT, ``"target"``: an MR) lets a subclass treat
        the two modalities' inputs apart (ASIT's CT window); unused here.
        """
        return robust_scale(volume.array, self.config.percentiles)

    def network_output(self, array: np.ndarray) -> np.ndarray:
        """Generator output ([-1, 1]) in the translator's output space (here unchanged)."""
        return array

    def to_space(self, volume: Volume) -> Volume:
        """``volume`` scaled as the networks see it (what a segmenter of fakes should see)."""
        self._check_volume(volume)
        return volume.with_array(self.network_output(self.network_input(volume)))

    # ----------------------------------------------------------- learning
    def _torch_device(self) -> torch.device:
        if self.device is None:
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def _build(self) -> dict:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            nets = build_networks(self.config)
        device = self._torch_device()
        return {k: v.to(device) for k, v in nets.items()}

    def _sampler(
        self, volumes: list[Volume], rng: np.random.Generator, domain: str
    ) -> PatchSampler:
        body = [robust_scale(v.array, self.config.percentiles) for v in volumes]
        images = [self.network_input(v, domain) for v in volumes]
        return PatchSampler(images, body, self.config.patch_size, self.config.body_threshold, rng)

    def _fit(self, source: list[Volume], target: list[Volume]) -> None:
        rng = np.random.default_rng(self.config.seed)
        sampler_s = self._sampler(source, rng, "source")
        sampler_t = self._sampler(target, rng, "target")
        nets = self._build()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            self.history_ = train_cyclegan(
                nets, sampler_s, sampler_t, self.config, rng, self.work_dir, self.progress
            )
        self.networks_ = nets

    def _translate(self, volume: Volume, direction: str) -> np.ndarray:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {list(DIRECTIONS)}, got {direction!r}")
        generator = self.networks_["G_t" if direction == "to_target" else "G_s"]
        generator.eval()
        image = self.network_input(volume, "source" if direction == "to_target" else "target")
        if self.config.spatial_dims == 2:
            out = translate_slices(generator, image, 2**self.config.n_downsampling)
        else:
            out = translate_patches(generator, image, self.config.patch_size)
        return self.network_output(out)

    # ------------------------------------------------------------ storage
    def _save_state(self, directory: Path) -> None:
        save_torch({k: v.state_dict() for k, v in self.networks_.items()}, directory / WEIGHTS_FILE)

    def _load_state(self, directory: Path) -> None:
        path = directory / WEIGHTS_FILE
        if not path.exists():
            raise ValueError(f"{directory} is not a saved translator: {WEIGHTS_FILE} is missing")
        states = load_torch(path, "translator weights", self._torch_device())
        self.networks_ = load_networks(self._build(), states, self.config, path)


def load_networks(nets: dict, states: dict, config: CycleGANConfig, path) -> dict:
    """Load ``states`` into ``nets``, checking names and ``spatial_dims`` first.

    Raises
    ------
    ValueError
        If networks are missing, or their weights have another ``spatial_dims``
        than ``config`` (e.g. 3D weights with a 2D config).
    """
    missing = sorted(set(nets) - set(states))
    if missing:
        raise ValueError(f"{path} lacks the networks {missing}; expected {sorted(nets)}")
    for name, net in nets.items():
        weight = next(w for k, w in states[name].items() if k.endswith("weight") and w.ndim > 1)
        dims = weight.ndim - 2
        if dims != config.spatial_dims:
            raise ValueError(
                f"{path}: network {name} has spatial_dims={dims} weights, but the config "
                f"says spatial_dims={config.spatial_dims}"
            )
        try:
            net.load_state_dict(states[name])
        except RuntimeError as err:
            raise ValueError(f"{path}: weights of {name} do not fit the config: {err}") from None
        net.eval()
    return nets
