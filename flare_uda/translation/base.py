"""The :class:`Translator` ABC: learn CT <-> MR mappings, apply them on a volume's own grid.

Subclasses implement two methods, :meth:`Translator._fit` and
:meth:`Translator._translate`, and declare their options as ``config_class``
(the plug-in contract, :mod:`flare_uda.plugin`); the base class validates
inputs (types, empty case lists, NaN), keeps the output geometry identical to
the input, and saves/loads a translator as a folder::

    DIR/translator.json   {"format": "flare_uda.translator", "version": 2,
                           "name": <registry name>, "options": {...}}
    DIR/...               whatever the subclass writes (weights)

Every translator also takes three runtime keywords that do not change what it
computes, so they are not options: ``work_dir`` (checkpoints), ``device``
and ``progress``.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from flare_uda._atomic import replace_dir, write_json
from flare_uda._validation import require_finite
from flare_uda.plugin import Plugin
from flare_uda.registry import Registry
from flare_uda.volume import Case, Volume

TRANSLATORS: Registry[type[Translator]] = Registry("translator")
FORMAT = "flare_uda.translator"
FORMAT_VERSION = 2
META_FILE = "translator.json"
DIRECTIONS = ("to_target", "to_source")


def as_volumes(cases: Sequence[Case | Volume], what: str) -> list[Volume]:
    """Images of ``cases`` (Case or Volume items), checked non-empty, 3D and finite.

    Raises
    ------
    TypeError
        If ``cases`` is not a sequence of Case/Volume.
    ValueError
        If it is empty or an image holds NaN/inf.
    """
    if isinstance(cases, (Case, Volume)) or not isinstance(cases, Sequence):
        raise TypeError(f"{what} must be a list of Case or Volume, got {type(cases).__name__}")
    if len(cases) == 0:
        raise ValueError(f"{what} must hold at least one case, got an empty list")
    volumes = []
    for i, item in enumerate(cases):
        if isinstance(item, Case):
            volume, name = item.image, f"{what}[{i}] ({item.case_id})"
        elif isinstance(item, Volume):
            volume, name = item, f"{what}[{i}]"
        else:
            raise TypeError(f"{what}[{i}] must be a Case or Volume, got {type(item).__name__}")
        require_finite(volume.array, name)
        volumes.append(volume)
    return volumes


class Translator(Plugin, ABC):
    """Unpaired image translation between a source (CT) and a target (MR) domain.

    Subclasses implement :meth:`_fit` and :meth:`_translate`; to persist
    learned state they override :meth:`_save_state` / :meth:`_load_state`.

    Parameters
    ----------
    config, **options
        The options (``config_class``), see :class:`~flare_uda.plugin.Plugin`.
    work_dir : path-like or None
        Where a translator that trains writes its checkpoints (and resumes from).
    device : str or None
        Where networks run (``None``: CUDA when available).
    progress : bool
        Show training progress.
    """

    kind = "translator"

    def __init__(
        self,
        config: Any = None,
        *,
        work_dir: str | os.PathLike | None = None,
        device: str | None = None,
        progress: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(config, **options)
        self.work_dir = work_dir
        self.device = device
        self.progress = progress

    # ------------------------------------------------------------ abstract
    @abstractmethod
    def _fit(self, source: list[Volume], target: list[Volume]) -> None:
        """Learn from validated, non-empty lists of finite volumes."""

    @abstractmethod
    def _translate(self, volume: Volume, direction: str) -> np.ndarray:
        """Translate one validated volume; return an array ``"z y x"`` of its shape."""

    # -------------------------------------------------------------- public
    def fit(self, source_cases: Sequence[Case | Volume], target_cases: Sequence[Case | Volume]):
        """Learn source <-> target translation from unpaired cases (labels unused).

        Parameters
        ----------
        source_cases, target_cases : sequence of Case or Volume
            Non-empty; images must be finite.

        Returns
        -------
        self
        """
        source = as_volumes(source_cases, "source_cases")
        target = as_volumes(target_cases, "target_cases")
        self._fit(source, target)
        self.is_fitted_ = True
        return self

    def to_target(self, volume: Volume) -> Volume:
        """A fake target-domain image of ``volume`` on exactly its grid (float32)."""
        return self._apply(volume, "to_target")

    def to_source(self, volume: Volume) -> Volume:
        """A fake source-domain image of ``volume`` on exactly its grid (float32)."""
        return self._apply(volume, "to_source")

    def to_space(self, volume: Volume) -> Volume:
        """``volume`` in the space the translator works in (e.g. anatomy space), untranslated.

        Segmenters trained on :meth:`to_target` outputs see real target images through this.
        The default is the volume itself.
        """
        self._check_volume(volume)
        return volume

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the translator into ``directory`` (created); returns it.

        The folder is swapped in whole (:func:`~flare_uda._atomic.replace_dir`): a
        kill while saving leaves the previous translator, never half of each;
        other files already in the folder are kept.
        """
        self._check_fitted()
        out = Path(directory)
        with replace_dir(out, keep_others=True) as new:
            self._save_state(new)
            meta = {"format": FORMAT, "version": FORMAT_VERSION, **self.to_config()}
            write_json(new / META_FILE, meta)
        return out

    @classmethod
    def load(cls, directory: str | os.PathLike, **runtime: Any) -> Translator:
        """Read a translator written by :meth:`save` (``runtime``: ``device``, ``progress``, ...).

        ``Translator.load`` returns whichever registered translator was saved;
        ``CycleGAN.load`` additionally checks that the saved one is a CycleGAN.

        Raises
        ------
        FileNotFoundError
            If ``directory`` does not exist.
        ValueError
            If it is not a saved translator, or holds another method than ``cls``.
        """
        root = Path(directory)
        if not root.is_dir():
            raise FileNotFoundError(f"expected a saved translator folder, got {root} (no folder)")
        meta_path = root / META_FILE
        try:
            meta = json.loads(meta_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError) as err:
            raise ValueError(
                f"{root} is not a saved translator: expected a valid {META_FILE} in it ({err})"
            ) from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"{meta_path} is not a saved translator: expected format {FORMAT!r}")
        spec = _saved_spec(meta, meta_path)
        klass = TRANSLATORS.get(spec["name"])
        if not issubclass(klass, cls):
            raise ValueError(
                f"{root} holds a {spec['name']!r} translator, expected a {cls.__name__}"
            )
        translator = klass.from_config(spec, **{"progress": False, **runtime})
        translator._load_state(root)
        translator.is_fitted_ = True
        return translator

    # ------------------------------------------------------------- hooks
    def _save_state(self, directory: Path) -> None:
        """Write learned state into ``directory`` (default: nothing)."""
        return None

    def _load_state(self, directory: Path) -> None:
        """Read the learned state written by :meth:`_save_state` (default: nothing)."""
        return None

    # ----------------------------------------------------------- helpers
    def _check_fitted(self) -> None:
        if not getattr(self, "is_fitted_", False):
            raise ValueError(f"{type(self).__name__} is not fitted: call fit() or load() first")

    @staticmethod
    def _check_volume(volume: Volume) -> None:
        if not isinstance(volume, Volume):
            raise TypeError(f"expected a Volume, got {type(volume).__name__}")
        require_finite(volume.array, "volume to translate")

    def _apply(self, volume: Volume, direction: str) -> Volume:
        self._check_fitted()
        self._check_volume(volume)
        array = np.asarray(self._translate(volume, direction), dtype=np.float32)
        if array.shape != volume.shape:  # a subclass bug, not a user error
            raise RuntimeError(
                f"{type(self).__name__}._translate returned shape {array.shape}, "
                f"expected {volume.shape}"
            )
        return volume.with_array(array)


def _saved_spec(meta: dict, meta_path: Path) -> dict:
    """``{"name", "options"}`` of a saved translator (format 2, or the format 1 of 0.1.0)."""
    version = meta.get("version")
    if version == FORMAT_VERSION:
        return {"name": meta.get("name", ""), "options": meta.get("options", {})}
    if version == 1:  # {"method": ..., "config": {"cyclegan": {...}, "sobel_mode": ...}}
        config = dict(meta.get("config", {}))
        return {"name": meta.get("method", ""), "options": {**config.pop("cyclegan", {}), **config}}
    raise ValueError(
        f"{meta_path}: expected translator format version {FORMAT_VERSION} (or 1), got {version!r}"
    )


def get_translator(name: str, **kwargs: Any) -> Translator:
    """The translator registered as ``name`` built with ``kwargs`` (options, ``config``,
    runtime keywords); an unknown name raises a did-you-mean ``KeyError``."""
    return TRANSLATORS.get(name)(**kwargs)
