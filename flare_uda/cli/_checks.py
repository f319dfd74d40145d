"""Checks of command-line values made before any work starts (usage errors, exit code 2)."""

from __future__ import annotations

import os
from pathlib import Path

import click


def output_dir(path: str | os.PathLike, option: str) -> Path:
    """An output folder that exists (created if needed) and is writable.

    Stale temporaries of a killed earlier run are removed from it.

    Raises
    ------
    click.BadParameter
        If ``path`` is an existing file, or the folder cannot be created or written.
    """
    from flare_uda._atomic import require_writable_dir

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise click.BadParameter(
            f"expected an output folder, got the existing file {path}", param_hint=option
        )
    try:
        return require_writable_dir(path)
    except PermissionError as err:
        raise click.BadParameter(str(err), param_hint=option) from None


def output_file(path: str | os.PathLike, option: str) -> Path:
    """An output file path whose folder is writable and that is not a folder itself."""
    path = Path(path)
    if path.is_dir():
        raise click.BadParameter(f"expected a file path, got the folder {path}", param_hint=option)
    output_dir(path.parent, option)
    return path


def device(value: str | None, option: str = "--device") -> str | None:
    """``value`` if torch can use it on this machine ("auto", "cpu", "cuda", "cuda:1", ...)."""
    from flare_uda._device import resolve_device

    try:
        resolve_device(value)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint=option) from None
    return value


def not_input(out: str | os.PathLike, option: str, *inputs: str | os.PathLike | None) -> None:
    """Refuse an output folder that is, holds or lies inside one of the inputs."""
    from flare_uda._atomic import require_not_input

    try:
        require_not_input(out, *inputs)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint=option) from None


def yaml_syntax(path: str | os.PathLike, option: str) -> None:
    """Refuse a file that is not valid YAML, naming its line and column."""
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            yaml.safe_load(fh)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise click.BadParameter(
            f"expected valid YAML in {path}, got a syntax error: {err.problem or err.context}"
            f"{where}",
            param_hint=option,
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        reason = " ".join(str(err).split())
        raise click.BadParameter(
            f"expected a YAML text file, got {path} ({reason})", param_hint=option
        ) from None
