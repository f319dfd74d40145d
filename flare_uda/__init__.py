"""flare_uda: unsupervised CT -> MRI domain adaptation for abdominal organ segmentation.

Data flows through stages, each behind one small ABC:
``data`` -> ``translation`` -> ``segmentation`` -> ``inference`` ->
``registration`` + ``pseudolabel`` -> ``metrics``; ``pipeline`` composes them.
``flare_uda.adapt(source, target, out=...)`` runs the whole method on your own folders.
Arrays and spacings are (z, y, x) everywhere.
"""

from flare_uda import _onednn  # noqa: F401  (before any torch kernel: see its docstring)
from flare_uda.volume import Case, Volume

__version__ = "0.1.0"
__all__ = ["AdaptResult", "Case", "Volume", "__version__", "adapt"]

_LAZY = {"adapt": "flare_uda.pipeline.adapt", "AdaptResult": "flare_uda.pipeline.adapt"}
"""Public names imported on first use (``import flare_uda`` stays light: no torch)."""


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'flare_uda' has no attribute {name!r}")
