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
``anatomy``       trained on CT anatomy-space maps, applied to MR ones (ASIT without the GAN)
``asit``          the method's translator slot (``translation``): ASIT, or your translator
``asit_mdm``      ``asit`` pseudo-labels on the unlabelled MR, worse-sequence labels
                  replaced by MDM; retrained on real MR
``asit_mdm_plf``  self-training rounds from the MDM labels, filter, ensemble, final net
``oracle``        trained on the adaptation MR with their true labels (upper bound; with
                  ``warm_start``, from ASIT's model, as ``asit_mdm``)

Beyond the paper (issue 14):

``asit_mdm_multi``      ``asit_mdm`` with multi-atlas deformable MDM (``mdm_multi``)
``asit_mdm_plf_organ``  ``asit_mdm_plf`` with the organ-wise filter (``organ_filter``)
``asit_mdm_atlas``      ``asit_mdm`` with the organs MR labels lack filled from CT (``ct_atlas``)
``asit_mdm_atlas_plf``  the CT atlas, then self-training with the organ-wise filter

Beyond the paper (issue 19), without a translator:

``synth``          CT with label-conditioned random contrasts (SynthSeg-style, the
                   ``synth`` section), applied to MR as it is
``synth_mdm``      its pseudo-labels on the adaptation MR, MDM, retrained on real MR
``synth_mdm_plf``  then self-training with the paper's filter and a final network
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from flare_uda.options import fields_of
from flare_uda.pipeline.adaptation import MDM, SelfTraining
from flare_uda.pipeline.ct_atlas import CTAtlas
from flare_uda.pipeline.ensemble_model import EnsembleModel, warm_start_stage
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


def mdm_model(
    config: Any,
    inputs: Inputs,
    mdm_config: Any = None,
    name: str = "train_asit_mdm",
    first: tuple[Stage, Stage, str] | None = None,
) -> tuple[MDM, Train]:
    """Pseudo-labels of the first model on the adaptation MR, MDM (``mdm_config``, default
    the ``mdm`` section; another one names its stage after ``name``: ``mdm_multi``), and a
    segmenter ``name`` trained on the result.

    ``first``: (translation stage, model, its name), default ASIT's (``asit``); another
    name prefixes the pseudo-label and MDM stages (``synth``: ``pseudo_synth``,
    ``mdm_synth``). A warm start takes ``model``'s weights, an ensemble's first member's."""
    translate, model, first_name = first or (
        *translated_model(config, inputs, config.translation, "asit"),
        "asit",
    )
    pseudo = Predict(f"pseudo_{first_name}", model, inputs.mr, config.inference, space=translate)
    if mdm_config is None:
        mdm_config = config.mdm
        mdm_name = "mdm" if first_name == "asit" else f"mdm_{first_name}"
    else:
        mdm_name = name.removeprefix("train_asit_")
    mdm = MDM(mdm_config, inputs.mr, pseudo, name=mdm_name)
    init = warm_start_stage(model) if config.warm_start else None
    return mdm, Train(name, config.segmentation, mdm, drop_empty=True, init=init)


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


@SETTINGS.register("anatomy")
def anatomy(config: Any, inputs: Inputs) -> Stage:
    """Anatomy space alone (Sobel maps of CT for training and of MR for testing, no GAN),
    with the translation section's ``sobel_mode`` and ``edge_scale`` when it has them: ASIT
    without its GAN."""
    options = {
        name: getattr(config.translation.options, name)
        for name in ("sobel_mode", "edge_scale")
        if hasattr(config.translation.options, name)
    }
    return baseline(config, inputs, spec("translator", "anatomy", **options), "anatomy")


@SETTINGS.register("asit")
def asit(config: Any, inputs: Inputs) -> Stage:
    return baseline(config, inputs, config.translation, "asit")


@SETTINGS.register("asit_mdm")
def asit_mdm(config: Any, inputs: Inputs) -> Stage:
    _, model = mdm_model(config, inputs)
    return Predict("asit_mdm", model, inputs.test, config.inference)


@SETTINGS.register("asit_mdm_multi")
def asit_mdm_multi(config: Any, inputs: Inputs) -> Stage:
    """``asit_mdm`` with the ``mdm_multi`` section: several atlases, a deformable registrar."""
    _, model = mdm_model(config, inputs, config.mdm_multi, "train_asit_mdm_multi")
    return Predict("asit_mdm_multi", model, inputs.test, config.inference)


def self_trained(
    config: Any,
    inputs: Inputs,
    cases: Stage,
    model: Stage,
    filter: PluginSpec | None,
    name: str,
    train_name: str | None = None,
    stage_name: str = "self_training",
) -> Predict:
    """Self-training (stage ``stage_name``) from ``cases`` (round 1: ``model``) with
    ``filter``, a final net, test; with ``warm_start``, each round from the previous one and
    the final net from ``model``."""
    st = replace(config.self_training, filter=filter)
    plf = SelfTraining(
        st,
        cases,
        model,
        config.segmentation,
        config.inference,
        warm_start=config.warm_start,
        source=inputs.ct,
        name=stage_name,
    )
    init = model if config.warm_start else None
    final = Train(
        train_name or f"train_{name}", config.final_segmentation, plf, drop_empty=True, init=init
    )
    return Predict(name, final, inputs.test, config.inference)


def atlas_model(config: Any, inputs: Inputs) -> tuple[CTAtlas, Train]:
    """MDM's cases with the organs they lack filled from CT, and a segmenter trained on them
    (with ``warm_start``, from ASIT's model, as ASIT + MDM's)."""
    mdm, mdm_train = mdm_model(config, inputs)
    atlas = CTAtlas(config.ct_atlas, mdm, inputs.ct)
    init = mdm_train.upstream[1] if config.warm_start else None  # Train: (cases, init)
    train = Train("train_asit_mdm_atlas", config.segmentation, atlas, drop_empty=True, init=init)
    return atlas, train


@SETTINGS.register("asit_mdm_plf")
def asit_mdm_plf(config: Any, inputs: Inputs) -> Stage:
    mdm, model = mdm_model(config, inputs)
    st_filter = config.self_training.filter
    return self_trained(config, inputs, mdm, model, st_filter, "asit_mdm_plf", "train_final")


def organ_self_trained(config: Any, inputs: Inputs, cases: Stage, model: Stage, name: str):
    """:func:`self_trained` with ``organ_filter``, in a stage named apart from the paper's
    (``asit_mdm_plf_organ``: ``self_training_plf_organ``)."""
    stage = f"self_training_{name.removeprefix('asit_mdm_')}"
    return self_trained(config, inputs, cases, model, config.organ_filter, name, stage_name=stage)


@SETTINGS.register("asit_mdm_plf_organ")
def asit_mdm_plf_organ(config: Any, inputs: Inputs) -> Stage:
    mdm, model = mdm_model(config, inputs)
    return organ_self_trained(config, inputs, mdm, model, "asit_mdm_plf_organ")


@SETTINGS.register("asit_mdm_atlas")
def asit_mdm_atlas(config: Any, inputs: Inputs) -> Stage:
    _, model = atlas_model(config, inputs)
    return Predict("asit_mdm_atlas", model, inputs.test, config.inference)


@SETTINGS.register("asit_mdm_atlas_plf")
def asit_mdm_atlas_plf(config: Any, inputs: Inputs) -> Stage:
    atlas, model = atlas_model(config, inputs)
    return organ_self_trained(config, inputs, atlas, model, "asit_mdm_atlas_plf")


def synth_model(config: Any, inputs: Inputs) -> tuple[Translate, Stage, str]:
    """(CT as it is, a segmenter trained on it with label-conditioned random contrasts for
    longer (the ``synth`` section), ``"synth"``): the first model of the ``synth*`` settings.

    With ``synth.members`` > 1 the model is the mean probability of that many such
    networks (stages ``train_synth``, ``train_synth_member2``, ...), one seed each."""
    translate = Translate(spec("translator", "identity"), inputs.ct, inputs.mr)
    sections = config.synth.member_segmentations(config.segmentation)
    names = ["train_synth", *(f"train_synth_member{i + 1}" for i in range(1, len(sections)))]
    members = [Train(n, s, translate) for n, s in zip(names, sections, strict=True)]
    model = members[0] if len(members) == 1 else EnsembleModel("synth", members)
    return translate, model, "synth"


@SETTINGS.register("synth")
def synth(config: Any, inputs: Inputs) -> Stage:
    translate, model, _ = synth_model(config, inputs)
    return Predict("synth", model, inputs.test, config.inference, space=translate)


def synth_mdm_model(config: Any, inputs: Inputs) -> tuple[MDM, Train]:
    """:func:`mdm_model` from the ``synth`` model: its pseudo-labels, MDM, a segmenter."""
    return mdm_model(config, inputs, name="train_synth_mdm", first=synth_model(config, inputs))


@SETTINGS.register("synth_mdm")
def synth_mdm(config: Any, inputs: Inputs) -> Stage:
    _, model = synth_mdm_model(config, inputs)
    return Predict("synth_mdm", model, inputs.test, config.inference)


@SETTINGS.register("synth_mdm_plf")
def synth_mdm_plf(config: Any, inputs: Inputs) -> Stage:
    mdm, model = synth_mdm_model(config, inputs)
    st_filter = config.self_training.filter
    return self_trained(
        config, inputs, mdm, model, st_filter, "synth_mdm_plf", stage_name="self_training_synth"
    )


@SETTINGS.register("oracle")
def oracle(config: Any, inputs: Inputs) -> Stage:
    if not inputs.mr_labelled.cases:
        raise ValueError("the oracle setting needs labelled MR cases, got none")
    # With warm_start the oracle starts from ASIT's weights, like ASIT + MDM, so the two
    # differ only in their labels (true vs pseudo) and not in how long their line of
    # networks has trained; from scratch it would be the one network with a single
    # budget against the chain's several.
    init = (
        translated_model(config, inputs, config.translation, "asit")[1]
        if config.warm_start
        else None
    )
    model = Train("train_oracle", config.segmentation, inputs.mr_labelled, init=init)
    return Predict("oracle", model, inputs.test, config.inference)
