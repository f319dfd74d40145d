"""Predict a list of volume files, reading ahead and writing behind the inferer.

Reading a compressed NIfTI is not free: for a 100x400x400 float32 ``.nii.gz``
it took longer than the forward passes over it on a GPU (docs/benchmarks.md,
"Predicting a folder: reading ahead"). SimpleITK releases the GIL while it
reads and writes, so one background thread reads the next case while the
inferer runs on the current one, and another writes
finished label maps; the main thread only infers. At most ``prefetch`` cases
wait in memory beside the one being inferred. Written by hand because
neither nnU-Net's predictor (worker processes that also preprocess) nor
MONAI's loaders fit an :class:`~flare_uda.inference.base.Inferer` that takes
raw volumes; a thread pool is all it needs.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path

from tqdm.auto import tqdm

from flare_uda.inference.base import Inferer
from flare_uda.inference.segmenter import Segmenter
from flare_uda.volume import Volume


def _read(path: Path) -> Volume:
    from flare_uda.data.io import read_volume

    try:
        return read_volume(path)
    except Exception as err:  # say which file; keep the reader's own message
        reason = str(err).replace(f"could not read {path}: ", "")
        named = f": {reason}" if str(path) in reason else f" {path}: {reason}"
        raise RuntimeError(f"could not read input volume{named}") from err


def _infer(inferer: Inferer, segmenter: Segmenter, volume: Volume, path: Path) -> Volume:
    """``inferer(volume, segmenter)``; a plain ValueError/RuntimeError/TypeError names ``path``."""
    try:
        return inferer(volume, segmenter)
    except (ValueError, RuntimeError, TypeError) as err:
        if type(err) not in (ValueError, RuntimeError, TypeError):
            raise  # a subclass may not take a message alone
        raise type(err)(f"predicting {path}: {err}") from err


def _write(labels: Volume, path: Path) -> Path:
    from flare_uda.data.io import write_volume

    return write_volume(labels, path, is_label=True)


def _checked_paths(
    inputs: Sequence[str | os.PathLike], outputs: Sequence[str | os.PathLike]
) -> tuple[list[Path], list[Path]]:
    """Inputs and outputs as paths, one output per input, none overwriting an input."""
    inputs = [Path(p) for p in inputs]
    outputs = [Path(p) for p in outputs]
    if len(inputs) != len(outputs):
        raise ValueError(
            f"expected one output per input, got {len(inputs)} inputs and {len(outputs)} outputs"
        )
    clash = {p.resolve() for p in inputs} & {p.resolve() for p in outputs}
    if clash:
        raise ValueError(f"outputs must not overwrite inputs, got {sorted(map(str, clash))}")
    return inputs, outputs


def predict_files(
    inferer: Inferer,
    segmenter: Segmenter,
    inputs: Sequence[str | os.PathLike],
    outputs: Sequence[str | os.PathLike],
    prefetch: int = 1,
    progress: bool = True,
    read: Callable[[Path], Volume] = _read,
) -> list[Path]:
    """Segment each ``inputs[i]`` and write its label map to ``outputs[i]``.

    Parameters
    ----------
    inferer : Inferer
    segmenter : Segmenter
    inputs, outputs : sequences of paths, same length
        Volume files to read; label files to write (atomically, on each
        input's own grid). An output may not be one of the inputs.
    prefetch : int
        Cases read ahead while the current one is inferred; 0 reads each
        case only when its turn comes (no background reading).
    progress : bool
        tqdm bar over cases.
    read : callable, optional
        ``path -> Volume``; default :func:`~flare_uda.data.io.read_volume`.

    Returns
    -------
    list of Path
        The label files written, in input order.

    Raises
    ------
    ValueError
        Lengths differ, ``prefetch`` < 0, or an output overwrites an input.
    RuntimeError
        A file could not be read (its path is in the message).
    """
    inputs, outputs = _checked_paths(inputs, outputs)
    if int(prefetch) < 0:
        raise ValueError(f"prefetch must be >= 0, got {prefetch}")
    written: list[Future] = []
    with ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(1) as writer:
        pending: deque[tuple[Path, Future]] = deque()
        ahead = iter(inputs)

        def read_next() -> None:
            path = next(ahead, None)
            if path is not None:
                pending.append((path, reader.submit(read, path)))

        for _ in range(int(prefetch) + 1):  # the first case and the ones read ahead
            read_next()
        for out in tqdm(outputs, desc="predict", unit="case", disable=not progress):
            path, future = pending.popleft()
            volume = future.result()
            labels = _infer(inferer, segmenter, volume, path)  # the submitted reads overlap this
            del volume
            written.append(writer.submit(_write, labels, out))
            read_next()
            for done in [f for f in written if f.done()]:
                done.result()  # a failed write stops the run now, not at the end
    return [f.result() for f in written]


def _predict_file(inferer: Inferer, segmenter: Segmenter, paths: tuple[Path, Path]) -> Path:
    """Read, segment and write one case (the per-case work of :func:`predict_files_on`)."""
    path, out = paths
    return _write(_infer(inferer, segmenter, _read(path), path), out)


def predict_files_on(
    executor,
    inferer: Inferer,
    segmenter: Segmenter,
    inputs: Sequence[str | os.PathLike],
    outputs: Sequence[str | os.PathLike],
) -> list[Path]:
    """:func:`predict_files` with one task per case on ``executor`` (process pool, Ray).

    Each task reads its input, segments it and writes its output itself, so on
    a cluster inputs and outputs must lie on storage every node sees (paths are
    made absolute here). The segmenter travels once per worker with a Ray
    executor (its object store), once per task with a process pool.

    Returns
    -------
    list of Path
        The label files written, in input order.
    """
    inputs, outputs = _checked_paths(inputs, outputs)
    pairs = [(i.resolve(), o.resolve()) for i, o in zip(inputs, outputs, strict=True)]
    one = partial(_predict_file, inferer, segmenter)
    return executor.map(one, pairs, desc="predict")
