"""Atomic output: write a temporary sibling, then rename it over the target.

A killed run therefore never leaves a half-written file or folder behind, and
readers see either the old or the new content. Temporaries are hidden and
carry the writer's process id, ``.NAME.<pid>-<hex>.tmp<suffix>``, so that the
next write into the same folder can tell a leftover of a killed process (its
pid is gone) from the work of a live one, and remove it
(:func:`clean_stale_temporaries`). Input discovery skips them
(:func:`is_hidden_or_temporary`). One machine is assumed (pids are local).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_TEMPORARY = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)-)?[0-9a-f]{8}\.(?P<kind>tmp|old)")
"""Our temporaries; names without a pid come from older versions and are always stale."""

TEMPORARY_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".crdownload", ".swp", "~")
"""Endings of files other programs are still writing; never read as inputs."""

_CLEANED: set[Path] = set()
"""Folders this process has already cleaned of stale temporaries."""


def is_hidden_or_temporary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is hidden (``.name``, e.g. our temporaries) or a partial download."""
    name = Path(path).name
    return name.startswith(".") or name.lower().endswith(TEMPORARY_SUFFIXES)


def _tag() -> str:
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _alive(pid: str | None) -> bool:
    if pid is None:
        return False
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process: leave it alone
        return True
    return True


def _recover_swap(old: Path, target: Path, new: Path | None) -> None:
    """Finish or undo a :func:`replace_dir` swap that a kill interrupted."""
    if not target.exists():
        with contextlib.suppress(FileNotFoundError):  # another process got there first
            os.replace(new if new is not None else old, target)
    for leftover in (old, new):
        if leftover is not None:
            _remove(leftover)


def _remove(path: Path) -> bool:
    """Delete a file, link or folder tree; ``False`` if it was already gone."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return False
    return True


def clean_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove temporaries that killed processes left in ``folder``; returns what went.

    A folder swap cut between its two renames (:func:`replace_dir`) is
    completed when its new content was whole, else undone. Temporaries of live
    processes stay.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = {}
    for entry in folder.iterdir():
        match = _TEMPORARY.match(entry.name)
        if match and match["pid"] is None and match["kind"] == "old":
            continue  # swaps always carry a pid: not ours
        if match and not _alive(match["pid"]):
            stale[entry] = match
    olds = {e: m for e, m in stale.items() if m["kind"] == "old"}
    for old, match in olds.items():
        new = old.with_name(old.name[: -len("old")] + "tmp")
        _recover_swap(old, folder / match["name"], new if new.exists() else None)
        stale.pop(new, None)
    removed = list(olds)
    for entry in stale.keys() - olds.keys():
        if _remove(entry):
            removed.append(entry)
    return removed


def _clean_once(folder: Path) -> None:
    key = folder.resolve()
    if key not in _CLEANED:
        _CLEANED.add(key)
        clean_stale_temporaries(folder)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``.

    The temporary name keeps the full suffix (``.nii.gz``, ``.png``) so that
    writers choosing a format from the extension still work. The first write
    of a process into a folder removes stale temporaries there.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_once(path.parent)
    stem, dot, rest = path.name.partition(".")
    tmp = path.with_name(f".{stem}.{_tag()}.tmp{dot}{rest}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link ``src`` (a file or folder tree) to ``dst``; copies where links fail."""

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, copy_function=link, symlinks=True)
    else:
        link(str(src), str(dst))


@contextlib.contextmanager
def replace_dir(target: str | os.PathLike, keep_others: bool = False) -> Iterator[Path]:
    """Yield a new folder beside ``target``; on success it replaces ``target`` by renames.

    The old folder is renamed away, the new one renamed into place, then the
    old one deleted: a kill at any point leaves the old or the new content
    (a kill between the two renames is finished by the next
    :func:`clean_stale_temporaries` of the parent folder).

    Parameters
    ----------
    target : path-like
        Folder to create or replace.
    keep_others : bool
        Carry entries of the old folder that the new one lacks over into it
        (hard links, no copies), e.g. checkpoints beside a saved model.
    """
    target = Path(target)
    if target.is_symlink():  # swap the folder it points to; the link stays
        target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(target.parent)
    tag = _tag()
    new = target.with_name(f".{target.name}.{tag}.tmp")
    old = target.with_name(f".{target.name}.{tag}.old")
    new.mkdir()
    try:
        yield new
        if keep_others and target.is_dir():
            for entry in target.iterdir():
                if not (new / entry.name).exists():
                    _link_tree(entry, new / entry.name)
        if target.exists():
            os.rename(target, old)
        try:
            os.rename(new, target)
        except OSError:
            if old.exists():
                os.rename(old, target)
            raise
    finally:
        _remove(new)
    _remove(old)


def require_writable_dir(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and prove it writable (a probe file); clean stale temporaries.

    Raises
    ------
    PermissionError
        If the folder cannot be created or written (read-only, a file in the
        way, no permission), with the folder and the reason in the message.
    """
    folder = Path(folder)
    probe = folder / f".write-test.{_tag()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as err:
        raise PermissionError(
            f"expected a writable folder, got {folder} ({err.strerror or err})"
        ) from None
    clean_stale_temporaries(folder)
    return folder


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write ``text`` to ``path`` as UTF-8 (whatever the locale says)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """Atomically ``torch.save`` ``obj`` to ``path``, byte-identical for identical ``obj``.

    ``torch.save`` to a *path* names the zip archive inside after the file, so
    the random temporary name would make every checksum differ; saving through
    an open file uses torch's fixed inner name ``archive``.
    """
    import torch

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(obj, fh)
    return Path(path)


def load_torch(path: str | os.PathLike, what: str, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; a damaged file raises a clear ``ValueError``.

    The reading counterpart of :func:`save_torch`: zip, pickle and end-of-file
    errors of a truncated or corrupt file become one clear message.
    """
    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # zipfile/pickle/EOF/RuntimeError: all mean a damaged file
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        if not zipfile.is_zipfile(path):  # torch's fallback to old pickles says nothing useful
            reason = "no zip archive (cut short, or not written by torch.save)"
        raise ValueError(
            f"{what} {path} is not a readable torch file (truncated or corrupt?): "
            f"expected a torch.save archive, got '{reason}'"
        ) from err


def require_not_input(out: str | os.PathLike, *inputs: str | os.PathLike | None) -> None:
    """Raise ``ValueError`` if the output folder is, or contains, one of the inputs.

    An output must never overwrite an input.
    """
    out_r = Path(out).resolve()
    for inp in inputs:
        if inp is None:
            continue
        in_r = Path(inp).resolve()
        if out_r == in_r or in_r.is_relative_to(out_r) or out_r.is_relative_to(in_r):
            raise ValueError(
                f"output {out} overlaps the input {inp}; expected an output folder outside "
                "the inputs, so that no input is overwritten"
            )
