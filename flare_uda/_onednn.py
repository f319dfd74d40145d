"""Keep oneDNN off its AMX kernels unless the user asks for them.

Measured on a 2-core cloud VM whose CPU advertises AMX (Intel Xeon, flags
``amx_tile amx_bf16``) with torch 2.13.0+cpu (oneDNN 3.12): a bf16-autocast
training step of the ``quick2d`` network hangs (no progress in 120 s) or
segfaults inside ``backward``, while the same step with oneDNN capped at
AVX512-BF16 runs: 0.137 s, fp32 0.128 s (median, ``benchmarks/bench_step_variants.py
--no-compile [--fp32]``, docs/benchmarks.md). So the AMX path cannot be trusted on
every machine that advertises it; the cap costs nothing measurable there. fp32
work does not use AMX, so the cap changes nothing for it.

oneDNN reads ``ONEDNN_MAX_CPU_ISA`` once, when it first dispatches a kernel,
so :func:`cap_isa_on_amx` runs when :mod:`flare_uda` is imported, before any
convolution. It never overrides a value the user set, and
``FLARE_UDA_ALLOW_AMX=1`` leaves oneDNN free to pick AMX.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

CAP = "AVX512_CORE_BF16"
"""The oneDNN ISA ceiling set on AMX machines: bf16 instructions, no AMX tiles."""
ISA_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
"""oneDNN's names for the ceiling (the second is the older one); either set by the user wins."""


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags from ``cpuinfo`` (empty where the file is absent: not Linux)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def cap_isa_on_amx(
    environ: MutableMapping[str, str] | None = None, flags: frozenset[str] | None = None
) -> str | None:
    """Set ``ONEDNN_MAX_CPU_ISA`` to :data:`CAP` on a CPU with AMX, unless told not to.

    Parameters
    ----------
    environ : mapping, optional
        The environment to read and change (default ``os.environ``).
    flags : frozenset of str, optional
        The CPU flags (default: read from ``/proc/cpuinfo``).

    Returns
    -------
    str or None
        A one-line note of what was done, or None where nothing was changed
        (no AMX, a ceiling already set, or ``FLARE_UDA_ALLOW_AMX=1``).
    """
    env = os.environ if environ is None else environ
    if env.get("FLARE_UDA_ALLOW_AMX", "0") == "1":
        return None
    if any(name in env for name in ISA_VARIABLES):
        return None
    if "amx_tile" not in (cpu_flags() if flags is None else flags):
        return None
    env["ONEDNN_MAX_CPU_ISA"] = CAP
    return (
        f"oneDNN capped at {CAP} on this AMX CPU (its AMX bf16 kernels hung or crashed "
        "in training here); FLARE_UDA_ALLOW_AMX=1 lifts the cap"
    )


CAP_NOTE = cap_isa_on_amx()
"""What importing flare_uda did to oneDNN's ISA ceiling (None: nothing)."""
