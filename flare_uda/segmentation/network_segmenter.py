""":class:`NetworkSegmenter`: a trained ``PlainConvUNet`` plus its plan, saved as a folder.

Folder layout (``save``/``load``)::

    DIR/plan.json       the SegmentationPlan (patch, spacing, normalisation, head)
    DIR/network.json    NetworkConfig + strides + kernel sizes (rebuilds the net)
    DIR/weights.pt      the state dict
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from flare_uda._atomic import load_torch, replace_dir, save_torch, write_json
from flare_uda.inference.segmenter import SEGMENTERS, SegmentationPlan, Segmenter
from flare_uda.segmentation.networks import NetworkConfig, Topology, build_network

FILES = ("plan.json", "network.json", "weights.pt")


@dataclass(frozen=True)
class NetworkSegmenterConfig:
    """What rebuilds a :class:`NetworkSegmenter`'s network: its plan and architecture.

    Parameters
    ----------
    plan : SegmentationPlan
    architecture : NetworkConfig
    strides, kernel_sizes : tuple of (z, y, x) int triplets
        Per stage (see :func:`~flare_uda.segmentation.networks.plan_topology`).
    """

    plan: SegmentationPlan
    strides: tuple[tuple[int, int, int], ...]
    kernel_sizes: tuple[tuple[int, int, int], ...]
    architecture: NetworkConfig = field(default_factory=NetworkConfig)

    @property
    def topology(self) -> Topology:
        return Topology(self.strides, self.kernel_sizes, self.plan.patch_size)


@SEGMENTERS.register("network")
class NetworkSegmenter(Segmenter):
    """A U-Net and the plan it was trained with.

    Built from its options (:class:`NetworkSegmenterConfig`) the network is
    new and untrained (:meth:`load` reads trained weights); a trainer wraps
    the network it trained with :meth:`from_network`.

    Parameters
    ----------
    config, **options
        :class:`NetworkSegmenterConfig` fields.
    device : str or torch.device
        Runtime keyword: where the network lives.

    Attributes
    ----------
    network : torch.nn.Module
        Maps ``"b c z y x"`` to logits ``"b k z y x"`` (or a list of them, full
        resolution first, when built with deep supervision).
    plan : SegmentationPlan
    network_config, topology : NetworkConfig and Topology, or None
        What :meth:`save` writes to rebuild the network (None for a bare module).
    """

    config_class = NetworkSegmenterConfig

    def __init__(self, config: Any = None, *, device: str | torch.device = "cpu", **options):
        super().__init__(config, **options)
        cfg = self.config
        self.plan = cfg.plan
        self.network_config, self.topology = cfg.architecture, cfg.topology
        self.network = build_network(
            cfg.architecture, cfg.topology, cfg.plan.in_channels, cfg.plan.num_classes
        ).to(device)

    @classmethod
    def from_network(
        cls,
        network: nn.Module,
        plan: SegmentationPlan,
        network_config: NetworkConfig | None = None,
        topology: Topology | None = None,
    ) -> NetworkSegmenter:
        """Wrap a (trained) ``network``; ``network_config`` and ``topology`` let it be saved."""
        if not isinstance(network, nn.Module):
            raise TypeError(f"network must be a torch.nn.Module, got {type(network).__name__}")
        if not isinstance(plan, SegmentationPlan):
            raise TypeError(f"plan must be a SegmentationPlan, got {type(plan).__name__}")
        wrapped = cls.__new__(cls)
        wrapped.network, wrapped.plan = network, plan
        wrapped.network_config, wrapped.topology = network_config, topology
        wrapped.config = None
        if network_config is not None and topology is not None:
            wrapped.config = NetworkSegmenterConfig(
                plan, topology.strides, topology.kernel_sizes, network_config
            )
        return wrapped

    def to_config(self) -> dict[str, Any]:
        if self.config is None:
            raise ValueError(
                "this NetworkSegmenter wraps a bare module (no network_config and topology): "
                "there is no architecture to describe"
            )
        return super().to_config()

    @property
    def device(self) -> torch.device:
        p = next(self.network.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def to(self, device: str | torch.device) -> NetworkSegmenter:
        """Move the network to ``device``; returns self."""
        self.network.to(device)
        return self

    def predict_logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Full-resolution logits ``"b k z y x"`` (eval mode, no gradients)."""
        self.check_batch(batch)
        decoder = getattr(self.network, "decoder", None)
        had_ds = getattr(decoder, "deep_supervision", False)
        was_training = self.network.training
        self.network.eval()
        try:
            if had_ds:
                decoder.deep_supervision = False
            with torch.no_grad():
                out = self.network(batch.to(self.device))
        finally:
            if had_ds:
                decoder.deep_supervision = True
            self.network.train(was_training)
        if isinstance(out, (list, tuple)):
            out = out[0]
        if out.shape[1] != self.plan.num_classes:
            raise RuntimeError(
                f"expected {self.plan.num_classes} output channels (the plan), "
                f"got {out.shape[1]} from the network"
            )
        return out

    # ------------------------------------------------------------- persistence
    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``plan.json``, ``network.json``, ``weights.pt`` into ``directory``, atomically.

        The files go into a new folder beside ``directory``, which then replaces
        it by renames (:func:`~flare_uda._atomic.replace_dir`): a kill leaves the
        old model or the new one, never a mix. Other files in ``directory``
        (e.g. training checkpoints) are kept. Identical networks give
        byte-identical files.
        """
        if self.network_config is None or self.topology is None:
            raise ValueError(
                "save needs network_config and topology to rebuild the network; got a "
                "NetworkSegmenter built without them"
            )
        out = Path(directory)
        with replace_dir(out, keep_others=True) as new:
            state = {k: v.detach().cpu() for k, v in self.network.state_dict().items()}
            save_torch(state, new / "weights.pt")
            write_json(
                new / "network.json",
                {
                    "architecture": "PlainConvUNet",
                    "config": self.network_config.to_dict(),
                    "strides": [list(s) for s in self.topology.strides],
                    "kernel_sizes": [list(k) for k in self.topology.kernel_sizes],
                },
            )
            write_json(new / "plan.json", self.plan.to_dict())
        return out

    @classmethod
    def load(
        cls, directory: str | os.PathLike, device: str | torch.device = "cpu"
    ) -> NetworkSegmenter:
        """Rebuild a segmenter written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            If ``directory`` is not a folder or lacks one of the files.
        ValueError
            If a file is not valid JSON or the weights do not fit the network.
        """
        root = Path(directory)
        if not root.is_dir():
            raise FileNotFoundError(f"expected a model folder, got {root} (not a folder)")
        missing = [f for f in FILES if not (root / f).is_file()]
        if missing:
            raise FileNotFoundError(
                f"expected {list(FILES)} in model folder {root}, missing {missing}"
            )
        plan_d, net_d = (_read_object(root / name) for name in ("plan.json", "network.json"))
        try:
            plan = SegmentationPlan.from_dict(plan_d)
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(
                f"{root / 'plan.json'} does not hold a segmentation plan: {_reason(err)}"
            ) from err
        try:
            config = NetworkConfig.from_dict(net_d["config"])
            topology = Topology(
                strides=tuple(tuple(s) for s in net_d["strides"]),
                kernel_sizes=tuple(tuple(k) for k in net_d["kernel_sizes"]),
                patch_size=plan.patch_size,
            )
            network = build_network(config, topology, plan.in_channels, plan.num_classes)
        except (TypeError, ValueError, KeyError, IndexError) as err:
            raise ValueError(
                f"{root / 'network.json'} does not describe a network for its plan: expected "
                f"'config', 'strides' and 'kernel_sizes' that fit, got {_reason(err)}"
            ) from err
        state = load_torch(root / "weights.pt", "model weights")
        try:
            network.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as err:
            raise ValueError(
                f"weights in {root} do not fit the network it describes: "
                f"{' '.join(str(err).split())}"
            ) from err
        network.eval()
        return cls.from_network(network, plan, config, topology).to(device)


def _reason(err: BaseException) -> str:
    """An exception's message (``KeyError``: the missing key, without extra quotes)."""
    if isinstance(err, KeyError) and err.args:
        return f"missing key {err.args[0]!r}"
    return str(err)


def _read_object(path: Path) -> dict:
    """A JSON object from ``path``; ``ValueError`` naming the file otherwise."""
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(obj, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(obj).__name__}")
    return obj
