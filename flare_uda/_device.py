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
        For a string torch does not know, a device type other than CPU and CUDA,
        a CUDA device on a machine without one, or a CUDA index beyond the
        devices present (never a silent fallback to the CPU).
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"expected a device like 'auto', 'cpu' or 'cuda', got {device!r}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device here")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"device {device!r} asked for, but torch sees {torch.cuda.device_count()} CUDA "
            f"device(s) here (cuda:0 to cuda:{torch.cuda.device_count() - 1})"
        )
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"expected a device like 'auto', 'cpu' or 'cuda', got {device!r}")
    return dev
