"""flare_uda.pipeline: the stages composed from one config, cached, with a report.

Run the paper's ablation from a config::

    from flare_uda.pipeline import UDAPipeline, get_preset
    result = UDAPipeline(get_preset("quick"), "runs/x").run(ct, mr, mr_test)

or chain stages yourself (:mod:`~flare_uda.pipeline.stages`,
:mod:`~flare_uda.pipeline.adaptation`) and let a :class:`Runner` cache them::

    translate = Translate(config.translation, Cases("ct", ct), Cases("mr", mr))
    model = Train("train_mine", config.segmentation, translate)
    labels = Runner("runs/x").get(Predict("mine", model, Cases("test", test),
                                          config.inference, space=translate))
"""

from flare_uda.pipeline.adaptation import MDM, SelfTraining
from flare_uda.pipeline.config import SegmentationConfig, UDAConfig
from flare_uda.pipeline.presets import PRESETS, get_preset
from flare_uda.pipeline.runner import Runner, Stage, StageRecord
from flare_uda.pipeline.settings import SETTINGS, Inputs
from flare_uda.pipeline.stages import Cases, Predict, Train, Translate
from flare_uda.pipeline.uda import UDAPipeline, UDAResult

__all__ = [
    "MDM",
    "PRESETS",
    "SETTINGS",
    "Cases",
    "Inputs",
    "Predict",
    "Runner",
    "SegmentationConfig",
    "SelfTraining",
    "Stage",
    "StageRecord",
    "Train",
    "Translate",
    "UDAConfig",
    "UDAPipeline",
    "UDAResult",
    "get_preset",
]
