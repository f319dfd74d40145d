"""flare_uda.pipeline: the stages composed from one config, cached, with a report.

>>> from flare_uda.pipeline import UDAPipeline, get_preset  # doctest: +SKIP
>>> result = UDAPipeline(get_preset("quick"), "runs/x").run(ct, mr, mr_test)  # doctest: +SKIP
"""

from flare_uda.pipeline.config import UDAConfig
from flare_uda.pipeline.presets import PRESETS, get_preset
from flare_uda.pipeline.uda import UDAPipeline, UDAResult

__all__ = ["PRESETS", "UDAConfig", "UDAPipeline", "UDAResult", "get_preset"]
