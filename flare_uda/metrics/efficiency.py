"""Efficiency of a callable or a command: time, memory, FLARE-style memory-time areas.

A background thread samples every ``interval`` seconds (FLARE: 0.1 s):

- the resident memory (RSS) of the process and all its children (psutil);
  the CPU memory-time area is ``sum(samples_MB) * interval`` (MB*s);
- on a machine with an NVIDIA GPU and NVML (``nvidia-ml-py``), the GPU memory
  in use, ``total - free`` as FLARE's ``Efficiency.py`` reads it, with the
  same area rule; a callable also gets ``torch.cuda.max_memory_allocated``.

Without a GPU the GPU fields are ``None`` (and left out of :meth:`as_dict`),
never 0.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

MB = 1024.0 * 1024.0


@dataclass(frozen=True)
class EfficiencyReport:
    """What :func:`measure` found.

    Attributes
    ----------
    wall_time_s : float
    peak_rss_mb : float
        Largest RSS of the process and its children: the larger of the samples
        and the kernel's peak (``VmHWM`` reset before a callable on Linux; the
        child's ``ru_maxrss`` for a command), so short peaks are not missed.
    cpu_memory_area_mb_s : float
        ``sum(RSS samples in MB) * interval``.
    samples : int
        Number of samples taken.
    interval_s : float
    exit_code : int or None
        The command's exit status; ``None`` for a callable.
    gpu_memory_area_mb_s : float or None
        ``sum(NVML total - free, MB) * interval``; ``None`` without GPU/NVML.
    gpu_peak_mb : float or None
        Largest NVML ``total - free`` sample; ``None`` without GPU/NVML.
    torch_max_allocated_mb : float or None
        ``torch.cuda.max_memory_allocated`` during a callable; ``None`` otherwise.
    """

    wall_time_s: float
    peak_rss_mb: float
    cpu_memory_area_mb_s: float
    samples: int
    interval_s: float
    exit_code: int | None = None
    gpu_memory_area_mb_s: float | None = None
    gpu_peak_mb: float | None = None
    torch_max_allocated_mb: float | None = None
    result: Any = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, float | int]:
        """The measured fields; ``None`` ones (no GPU, a callable's exit code) left out."""
        return {k: v for k, v in asdict(self).items() if v is not None and k != "result"}


def _tree_rss(proc: psutil.Process) -> float | None:
    """RSS in bytes of ``proc`` and its living descendants; ``None`` once it has ended."""
    try:
        procs = [proc, *proc.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return float(total)


def _reset_peak_rss() -> bool:
    """Reset this process's kernel peak RSS (Linux ``clear_refs``); whether it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss_since_reset() -> float:
    """This process's kernel peak RSS (``VmHWM``) in bytes; 0 when unreadable."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) * 1024.0
    except OSError:
        pass
    return 0.0


def _nvml_reader(gpu_index: int) -> Callable[[], float] | None:
    """A function returning NVML ``total - free`` (bytes), or ``None`` without GPU/NVML."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        if pynvml.nvmlDeviceGetCount() <= gpu_index:
            return None
        handle = pynvml.nvmlDeviceGetHandleByIndex(gpu_index)
    except pynvml.NVMLError:
        return None

    def read() -> float:
        info = pynvml.nvmlDeviceGetMemoryInfo(handle)
        return float(info.total - info.free)

    return read


class _Sampler(threading.Thread):
    """Samples RSS (and GPU memory) every ``interval`` s until stopped."""

    def __init__(self, proc: psutil.Process, interval: float, gpu: Callable[[], float] | None):
        super().__init__(daemon=True)
        self.proc, self.interval, self.gpu = proc, interval, gpu
        self.rss: list[float] = []
        self.gpu_mem: list[float] = []
        self._stop_event = threading.Event()

    def sample(self) -> None:
        rss = _tree_rss(self.proc)
        if rss is None:  # the command has ended
            return
        self.rss.append(rss)
        if self.gpu is not None:
            self.gpu_mem.append(self.gpu())

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _cuda_torch():
    """``torch`` when it is already imported and sees a CUDA device, else ``None``."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    return torch


def measure(
    target: Callable[[], Any] | Sequence[str], interval: float = 0.1, gpu_index: int = 0
) -> EfficiencyReport:
    """Run ``target`` and measure its time and memory.

    Parameters
    ----------
    target : callable or sequence of str
        A function of no arguments (run in this process; its return value is
        ``report.result``), or a command line (run as a child process).
    interval : float
        Sampling period in seconds (FLARE: 0.1).
    gpu_index : int
        NVML index of the GPU to sample.

    Returns
    -------
    EfficiencyReport
    """
    if not (isinstance(interval, int | float) and 0 < interval <= 60):
        raise ValueError(f"interval must be a number in (0, 60] seconds, got {interval!r}")
    is_command = not callable(target)
    if is_command:
        if (
            isinstance(target, str | bytes)
            or not target
            or not all(isinstance(a, str) for a in target)
        ):
            raise TypeError(f"target must be a callable or a non-empty list of str, got {target!r}")
    gpu = _nvml_reader(gpu_index)
    torch = None if is_command else _cuda_torch()
    if torch is not None:
        torch.cuda.reset_peak_memory_stats()
    result, exit_code, child_peak = None, None, 0.0
    start = time.perf_counter()
    if is_command:
        try:
            proc = subprocess.Popen(list(target))
        except FileNotFoundError as err:
            raise FileNotFoundError(f"command not found: {target[0]!r}") from err
        sampler = _Sampler(psutil.Process(proc.pid), interval, gpu)
        sampler.start()
        if hasattr(os, "wait4"):
            # wait4 also returns the child's kernel-measured peak RSS (KiB on Linux)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = exit_code = os.waitstatus_to_exitcode(status)
            child_peak = usage.ru_maxrss * 1024.0
        else:  # pragma: no cover - Windows
            exit_code = proc.wait()
    else:
        sampler = _Sampler(psutil.Process(), interval, gpu)
        kernel_peak = _reset_peak_rss()
        sampler.start()
        try:
            result = target()
        finally:
            sampler.stop()
        # the kernel's high-water mark also sees peaks shorter than the interval
        child_peak = _peak_rss_since_reset() if kernel_peak else 0.0
    wall = time.perf_counter() - start
    if is_command:
        sampler.stop()
    else:
        sampler.sample()  # the state at the end counts too
    rss = sampler.rss or [0.0]
    return EfficiencyReport(
        wall_time_s=wall,
        peak_rss_mb=max(max(rss), child_peak) / MB,
        cpu_memory_area_mb_s=sum(rss) / MB * interval,
        samples=len(sampler.rss),
        interval_s=float(interval),
        exit_code=exit_code,
        gpu_memory_area_mb_s=sum(sampler.gpu_mem) / MB * interval if gpu is not None else None,
        gpu_peak_mb=max(sampler.gpu_mem, default=0.0) / MB if gpu is not None else None,
        torch_max_allocated_mb=torch.cuda.max_memory_allocated() / MB if torch else None,
        result=result,
    )


def format_report(report: EfficiencyReport) -> str:
    """A two-column markdown table of the measured fields."""
    lines = ["| metric | value |", "|---|---|"]
    for key, value in report.as_dict().items():
        lines.append(
            f"| {key} | {value:.3f} |" if isinstance(value, float) else f"| {key} | {value} |"
        )
    return "\n".join(lines)
