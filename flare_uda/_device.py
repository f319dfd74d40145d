"""Which torch device to compute on: ``"auto"`` picks CUDA when present."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The :class:`torch.device` meant by ``device``.

    Parameters
    ----------
    device : str, torch.device or None
        ``"auto"`` or ``None``: ``cuda`` when available, else ``cpu``; anything
        else is passed to :class:`torch.device`.

    Raises
    ------
    ValueError
        For a string torch does not know, or a CUDA device on a machine without
        one (never a silent fallback to the CPU).
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"expected a device like 'auto', 'cpu' or 'cuda', got {device!r}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device here")
    return dev
