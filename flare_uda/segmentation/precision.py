"""Mixed precision for training: bf16 autocast where the device has it, else fp32.

On CUDA bf16 autocast is always used by ``"auto"``. On a CPU it pays only when
the processor has native bf16 instructions (AVX512-BF16 or AMX); elsewhere
oneDNN emulates them and a step gets slower, so ``"auto"`` asks oneDNN at run
time and falls back to fp32, saying so (:func:`resolve_precision`).
"""

from __future__ import annotations

import contextlib

import torch

from flare_uda import _onednn

PRECISIONS = ("auto", "fp32", "bf16")


def cpu_supports_bf16() -> bool:
    """True when oneDNN reports native bf16 support on this CPU."""
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if probe is None:  # torch built without oneDNN: no fast bf16 path
        return False
    try:
        return bool(probe())
    except RuntimeError:
        return False


def resolve_precision(precision: str, device: torch.device) -> tuple[str, str]:
    """The precision a run uses on ``device`` and why.

    Parameters
    ----------
    precision : {"auto", "fp32", "bf16"}
    device : torch.device

    Returns
    -------
    (str, str)
        ``"fp32"`` or ``"bf16"``, and a one-line reason for logs and history.

    Raises
    ------
    ValueError
        For an unknown name, or ``"bf16"`` asked for on a CPU without native
        bf16 (never a silent fallback for an explicit request).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return "fp32", "fp32 asked for"
    if device.type == "cuda":
        return "bf16", "bf16 autocast on CUDA"
    if device.type != "cpu":
        if precision == "bf16":
            raise ValueError(f"bf16 autocast is supported on cpu and cuda, not {device.type}")
        return "fp32", f"fp32: no bf16 autocast on {device.type}"
    if cpu_supports_bf16():
        cap = f"; {_onednn.CAP_NOTE}" if _onednn.CAP_NOTE else ""
        return "bf16", "bf16 autocast: this CPU has native bf16 (oneDNN)" + cap
    if precision == "bf16":
        raise ValueError(
            "precision 'bf16' asked for, but this CPU has no native bf16 support "
            "(oneDNN would emulate it, slower than fp32); use 'auto' or 'fp32'"
        )
    return "fp32", "fp32: this CPU has no native bf16 (auto fell back)"


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context for a resolved ``precision`` (``"fp32"``: a no-op)."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
