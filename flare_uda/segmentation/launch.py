"""Run one training under ``torchrun`` from Python (the pipeline's training stages).

:func:`launch_training` writes the training job (cases, configuration, warm
start) into the work folder, starts ``torchrun --standalone
--nproc-per-node N -m flare_uda.segmentation.launch JOB`` on this machine,
waits for it and loads the model rank 0 saved there. Each rank runs
:func:`train_segmenter` on the job (:mod:`.distributed` does the sharding), so
the work folder's checkpoints resume a launch that was cut short, as they do
an in-process training. For several nodes, run ``flare-uda train`` under
``torchrun`` on each node instead (docs/scaling.md).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import torch

from flare_uda._atomic import atomic_path
from flare_uda._validation import require_int
from flare_uda.segmentation.checkpoint import initial_weights
from flare_uda.segmentation.config import TrainConfig
from flare_uda.volume import Case

JOB = "torchrun_job.pkl"
"""The job file a launch leaves in its work folder (read by every rank)."""


def torchrun_command(processes: int, job: Path) -> list[str]:
    """The command line of a single-node launch of ``processes`` ranks on ``job``."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={processes}", "-m", "flare_uda.segmentation.launch", str(job),
    ]  # fmt: skip


def launch_training(
    cases: Sequence[Case],
    config: TrainConfig,
    work_dir: str | os.PathLike,
    processes: int,
    device: str | torch.device = "auto",
    init_from=None,
    progress: bool = True,
):
    """Train on ``processes`` ranks of this machine with torchrun; the trained segmenter.

    Parameters
    ----------
    cases, config, init_from, device, progress
        As :func:`~flare_uda.segmentation.trainer.train_segmenter` (on CUDA,
        rank ``r`` uses ``cuda:r``).
    work_dir : path-like
        The job, checkpoints and the model (resumes as ``train_segmenter``).
    processes : int
        Ranks (``--nproc-per-node``), at least 1.

    Returns
    -------
    NetworkSegmenter
        Loaded from ``work_dir`` onto ``device``, ``history_`` from its ``history.json``.

    Raises
    ------
    ValueError
        If ``processes`` is not an int >= 1.
    TypeError
        If ``config`` is not a TrainConfig.
    RuntimeError
        If torchrun fails; the message holds the end of its output.
    """
    import json

    from flare_uda._device import resolve_device
    from flare_uda.segmentation.network_segmenter import NetworkSegmenter

    require_int(processes, "processes", 1)
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    work = Path(work_dir)
    job = write_job(cases, config, work, device, init_from, progress)
    _run(torchrun_command(processes, job), progress)
    segmenter = NetworkSegmenter.load(work, device=resolve_device(device))
    segmenter.history_ = json.loads((work / "history.json").read_text())
    return segmenter


def write_job(
    cases: Sequence[Case],
    config: TrainConfig,
    work_dir: str | os.PathLike,
    device: str | torch.device = "auto",
    init_from=None,
    progress: bool = True,
) -> Path:
    """Write the job file every rank of a launch reads (``work_dir/torchrun_job.pkl``)."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    job = {
        "cases": list(cases),
        "config": config,
        "init": None if init_from is None else initial_weights(init_from),
        "device": str(device),
        "progress": bool(progress),
    }
    with atomic_path(work_dir / JOB) as tmp:
        tmp.write_bytes(pickle.dumps(job, protocol=5))
    return work_dir / JOB


def _run(command: list[str], progress: bool) -> None:
    """Run ``command``, echoing its output when ``progress``; raise with its tail on failure."""
    tail: deque[str] = deque(maxlen=200)
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as proc:
        for line in proc.stdout or ():
            tail.append(line.rstrip())
            if progress:
                print(line, end="", flush=True)
    if proc.returncode != 0:
        ranks = [line for line in tail if line.startswith("[rank")]  # a rank's own traceback
        shown = (ranks or list(tail))[-25:]
        raise RuntimeError(
            f"torchrun training failed (exit code {proc.returncode}): {' '.join(command)}\n"
            + "\n".join(shown)
        )


def main(argv: list[str]) -> None:
    """One rank of a launch: train on the job file ``argv[0]`` (run by torchrun)."""
    import torch.distributed as dist

    from flare_uda.segmentation.trainer import train_segmenter

    if len(argv) != 1 or not Path(argv[0]).is_file():
        raise SystemExit(
            f"usage: torchrun ... -m flare_uda.segmentation.launch JOB_FILE, got {argv}"
        )
    path = Path(argv[0])
    job = pickle.loads(path.read_bytes())
    try:
        train_segmenter(
            job["cases"],
            job["config"],
            work_dir=path.parent,
            progress=job["progress"],
            device=job["device"],
            init_from=job["init"],
        )
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
