"""flare_uda: unsupervised CT -> MRI domain adaptation for abdominal organ segmentation.

Data flows through stages, each behind one small ABC:
``data`` -> ``translation`` -> ``segmentation`` -> ``inference`` ->
``registration`` + ``pseudolabel`` -> ``metrics``; ``pipeline`` composes them.
Arrays and spacings are (z, y, x) everywhere.
"""

from flare_uda.volume import Case, Volume

__version__ = "0.1.0"
__all__ = ["Case", "Volume", "__version__"]
