"""Options several commands share, declared once (``@device_option``, ``@quiet_option``:
adapt, demo, train)."""

from __future__ import annotations

import click

device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="Where networks train and run: auto (CUDA when available), cpu, cuda.",
)
quiet_option = click.option("--quiet", is_flag=True, help="No progress output.")
