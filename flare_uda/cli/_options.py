"""Options several commands share, declared once (``@device_option``, ``@quiet_option``:
adapt, demo, train; ``@train_processes_option``: adapt, demo)."""

from __future__ import annotations

import click

device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="Where networks train and run: auto (CUDA when available), cpu, cuda.",
)
quiet_option = click.option("--quiet", is_flag=True, help="No progress output.")
train_processes_option = click.option(
    "--train-processes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes each training stage runs on: > 1 launches it with torchrun on this "
    "machine (DDP; one GPU per process on CUDA). Trained models are cached either way.",
)
