"""The ablation settings (the paper's Table 7) as compositions of stages.

A setting is a function ``(config, inputs) -> Stage`` whose stage yields the
labels of the held-out test cases; settings share stages (ASIT's translation
and model serve ``asit``, ``asit_mdm`` and ``asit_mdm_plf``), which the
runner computes once. Register your own composition to run it next to the
paper's (``ablation: [asit, my_setting]`` in the YAML)::

    @SETTINGS.register("asit_no_mdm_plf")
    def asit_no_mdm_plf(config, inputs):
        translate, model = translated_model(config, inputs, config.translation, "asit")
        pseudo = Predict("pseudo_asit", model, inputs.mr, config.inference, space=translate)
        ...

``only_ct``       segmenter trained on CT, applied to MR (no translation)
``cyclegan``      trained on image-space fake MR (CycleGAN, with the translation section's
                  options when it names a CycleGAN, else its defaults)
``asit``          the method's translator slot (``translation``): ASIT, or your translator
``asit_mdm``      ``asit`` pseudo-labels on the unlabelled MR, worse-sequence labels
                  replaced by MDM; retrained on real MR
``asit_mdm_plf``  self-training rounds from the MDM labels, filter, ensemble, final net
``oracle``        trained on the adaptation MR with their true labels (upper bound)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flare_uda.options import fields_of
from flare_uda.pipeline.adaptation import MDM, SelfTraining
from flare_uda.pipeline.runner import Stage
from flare_uda.pipeline.stages import Cases, Predict, Train, Translate
from flare_uda.plugin import PluginSpec, spec
from flare_uda.registry import Registry
from flare_uda.translation import CycleGANConfig

SETTINGS: Registry[Callable[[Any, Inputs], Stage]] = Registry("ablation setting")


@dataclass
class Inputs:
    """The input stages of a run: labelled CT, unlabelled MR for adaptation, the same MR
    with whatever labels they have (oracle only), labelled held-out MR test cases."""

    ct: Cases
    mr: Cases
    mr_labelled: Cases
    test: Cases


def translated_model(config: Any, inputs: Inputs, translator: PluginSpec, name: str):
    """(translation stage, segmenter trained on its fake MR), the first half of a baseline."""
    translate = Translate(translator, inputs.ct, inputs.mr)
    return translate, Train(f"train_{name}", config.segmentation, translate)


def baseline(config: Any, inputs: Inputs, translator: PluginSpec, name: str) -> Predict:
    """Translate, train on the fakes, predict the test cases seen through the translator."""
    translate, model = translated_model(config, inputs, translator, name)
    return Predict(name, model, inputs.test, config.inference, space=translate)


def mdm_model(config: Any, inputs: Inputs) -> tuple[MDM, Train]:
    """ASIT pseudo-labels on the adaptation MR, MDM, and a segmenter trained on the result."""
    translate, model = translated_model(config, inputs, config.translation, "asit")
    pseudo = Predict("pseudo_asit", model, inputs.mr, config.inference, space=translate)
    mdm = MDM(config.mdm, inputs.mr, pseudo)
    init = model if config.warm_start else None
    return mdm, Train("train_asit_mdm", config.segmentation, mdm, drop_empty=True, init=init)


@SETTINGS.register("only_ct")
def only_ct(config: Any, inputs: Inputs) -> Stage:
    return baseline(config, inputs, spec("translator", "identity"), "only_ct")


@SETTINGS.register("cyclegan")
def cyclegan(config: Any, inputs: Inputs) -> Stage:
    """The image-space CycleGAN; it shares the translation section's GAN options when that
    section is a CycleGAN (e.g. ASIT), so the two differ only in the space they work in."""
    options, shared = config.translation.options, {}
    if isinstance(options, CycleGANConfig):
        shared = {name: getattr(options, name) for name in fields_of(CycleGANConfig())}
    return baseline(config, inputs, spec("translator", "cyclegan", **shared), "cyclegan")


@SETTINGS.register("asit")
def asit(config: Any, inputs: Inputs) -> Stage:
    return baseline(config, inputs, config.translation, "asit")


@SETTINGS.register("asit_mdm")
def asit_mdm(config: Any, inputs: Inputs) -> Stage:
    _, model = mdm_model(config, inputs)
    return Predict("asit_mdm", model, inputs.test, config.inference)


@SETTINGS.register("asit_mdm_plf")
def asit_mdm_plf(config: Any, inputs: Inputs) -> Stage:
    mdm, model = mdm_model(config, inputs)
    plf = SelfTraining(
        config.self_training,
        mdm,
        model,
        config.segmentation,
        config.inference,
        warm_start=config.warm_start,
    )
    init = model if config.warm_start else None
    final = Train("train_final", config.final_segmentation, plf, drop_empty=True, init=init)
    return Predict("asit_mdm_plf", final, inputs.test, config.inference)


@SETTINGS.register("oracle")
def oracle(config: Any, inputs: Inputs) -> Stage:
    if not inputs.mr_labelled.cases:
        raise ValueError("the oracle setting needs labelled MR cases, got none")
    model = Train("train_oracle", config.segmentation, inputs.mr_labelled)
    return Predict("oracle", model, inputs.test, config.inference)
