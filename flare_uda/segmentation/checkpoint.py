"""Training checkpoints: written atomically, resumed only into the same run, warm starts.

A checkpoint is resumed only when it was made with the same configuration
(fields that may change between a run and its resumption aside) **and** the
same training data: :func:`data_fingerprint` hashes the cases' ids, images,
labels and grids, so a work folder holding a run on other data is refused
with an error instead of being resumed or returned as the result.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from flare_uda._atomic import load_torch, save_torch
from flare_uda.volume import Case

LATEST, FINAL = "checkpoint_latest.pt", "checkpoint_final.pt"
RESUMABLE = {"iterations", "val_every", "checkpoint_every", "time_budget_minutes"}
"""Config fields that may change between a run and its resumption."""


def data_fingerprint(cases: Sequence[Case]) -> str:
    """A hex digest of the training data: ids, image and label arrays, grids, annotations."""
    h = hashlib.blake2b(digest_size=16)
    for case in cases:
        h.update(case.case_id.encode())
        for vol in (case.image, case.label):
            if vol is None:
                h.update(b"none")
                continue
            arr = np.ascontiguousarray(vol.array)
            h.update(f"{arr.dtype.str}{arr.shape}{vol.spacing}{vol.origin}".encode())
            h.update(np.asarray(vol.direction, dtype=np.float64).tobytes())
            h.update(arr.tobytes())
        h.update(repr(tuple(case.annotated)).encode())
    return h.hexdigest()


def save_checkpoint(path: Path, state: dict) -> None:
    """``torch.save`` into ``path`` atomically (a killed run never leaves half a file),
    byte-identical for identical states."""
    save_torch(state, path)


def load_checkpoint(work_dir: Path, config_dict: dict, fingerprint: str) -> dict | None:
    """The final (else latest) checkpoint of ``work_dir``, or ``None`` when there is none.

    Raises
    ------
    ValueError
        If the checkpoint was made with another configuration or on other data.
    """
    path = work_dir / FINAL if (work_dir / FINAL).exists() else work_dir / LATEST
    if not path.exists():
        return None
    try:
        state = load_torch(path, "training checkpoint")
    except ValueError as err:  # a truncated or foreign file: say which and what to do
        raise ValueError(
            f"cannot read the training checkpoint: {err}; delete it or use a fresh work folder"
        ) from err
    old = {k: v for k, v in state["config"].items() if k not in RESUMABLE}
    new = {k: v for k, v in config_dict.items() if k not in RESUMABLE}
    if old != new:
        diff = sorted(k for k in set(new) | set(old) if old.get(k) != new.get(k))
        raise ValueError(
            f"the checkpoint in {work_dir} was made with another configuration (differs in "
            f"{diff}); expected the same config to resume, or use a fresh work folder"
        )
    if state.get("data_fingerprint", fingerprint) != fingerprint:
        raise ValueError(
            f"the checkpoint in {work_dir} was trained on other data (fingerprint "
            f"{state['data_fingerprint']}, these cases {fingerprint}); use a fresh work folder "
            f"or start afresh (--overwrite on the command line)"
        )
    return state


def remove_checkpoints(work_dir: str | os.PathLike) -> list[Path]:
    """Delete the checkpoints (and history) of a run in ``work_dir``; other files stay."""
    removed = []
    for name in (FINAL, LATEST, "history.json"):
        path = Path(work_dir) / name
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed


def initial_weights(source) -> dict[str, torch.Tensor]:
    """The state dict a warm start loads from.

    Parameters
    ----------
    source : NetworkSegmenter, torch.nn.Module, dict or path-like
        A segmenter or network, a state dict, or a model folder written by
        :meth:`NetworkSegmenter.save` (its ``weights.pt``).
    """
    if isinstance(source, dict):
        return source
    if isinstance(source, nn.Module):
        return source.state_dict()
    network = getattr(source, "network", None)
    if isinstance(network, nn.Module):
        return network.state_dict()
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        path = path / "weights.pt" if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(
                f"expected a model folder or weights file to warm-start from, got {source}"
            )
        return load_torch(path, "warm-start weights")
    raise TypeError(
        "init_from must be a NetworkSegmenter, a torch module, a state dict or a model "
        f"folder, got {type(source).__name__}"
    )


def load_initial_weights(network: nn.Module, source) -> None:
    """Copy the weights of ``source`` (see :func:`initial_weights`) into ``network``.

    Raises
    ------
    ValueError
        If the two networks differ in their parameters or their shapes, naming
        the first differences.
    """
    state = initial_weights(source)
    own = network.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    shapes = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or extra or shapes:
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} shape(s) differ ({'; '.join(shapes[:3])})")
        if missing:
            parts.append(f"{len(missing)} missing ({', '.join(missing[:3])})")
        if extra:
            parts.append(f"{len(extra)} unexpected ({', '.join(extra[:3])})")
        raise ValueError(
            "cannot warm-start: the weights do not fit this network (same network config, "
            f"patch and spacing expected): {'; '.join(parts)}"
        )
    network.load_state_dict(state)
