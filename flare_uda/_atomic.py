"""Atomic file output: write to a temporary sibling, then rename over the target.

A killed run therefore never leaves a half-written file behind, and readers see
either the old or the new content.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``.

    The temporary name keeps the full suffix (``.nii.gz``, ``.png``) so that
    writers choosing a format from the extension still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name
    stem, dot, rest = name.partition(".")
    tmp = path.with_name(f".{stem}.{uuid.uuid4().hex[:8]}.tmp{dot}{rest}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write ``text`` to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def require_not_input(out: str | os.PathLike, *inputs: str | os.PathLike | None) -> None:
    """Raise ``ValueError`` if the output folder is, or contains, one of the inputs.

    ``--out`` must never overwrite an input.
    """
    out_r = Path(out).resolve()
    for inp in inputs:
        if inp is None:
            continue
        in_r = Path(inp).resolve()
        if out_r == in_r or in_r.is_relative_to(out_r) or out_r.is_relative_to(in_r):
            raise ValueError(
                f"--out {out} overlaps the input {inp}; choose an output folder outside the inputs"
            )
