"""The pipeline's configuration: one section per stage, YAML in and out, checked on load.

Each section is the stage's own configuration, under the stage's own names:

=====================  ==========================================================
``data``               :class:`DataConfig`: the phantom cohort (demo only)
``translation``        a translator plug-in ``{name, options}`` (the method's slot)
``segmentation``       :class:`SegmentationConfig`: a segmentation preset and
                       options overriding its :class:`~flare_uda.segmentation.TrainConfig`
``final_segmentation`` the same, for the final small network
``inference``          an inferer plug-in ``{name, options}``
``mdm``                :class:`~flare_uda.registration.MDMConfig` (matcher and
                       registrar plug-ins, sequences, gate)
``self_training``      :class:`~flare_uda.pseudolabel.SelfTrainingConfig`
                       (rounds, filter and ensembler plug-ins)
``mdm_multi``          :class:`~flare_uda.registration.MDMConfig` of the setting
                       ``asit_mdm_multi`` (default: the deformable registrar,
                       3 atlases per case fused by a locally weighted vote)
``organ_filter``       the filter plug-in of the organ-wise settings (``*_organ``,
                       ``asit_mdm_atlas_plf``), replacing ``self_training.filter``
``ct_atlas``           :class:`~flare_uda.registration.CTAtlasConfig` (registrar,
                       atlases and fusion, trusted-organ filter, gate)
``synth``              :class:`SynthConfig`: the first network of the ``synth*``
                       settings (CT with label-conditioned random contrasts)
``executor``           an executor plug-in ``{name, options}`` for per-case work
``ablation``           names of the settings to run (:data:`~flare_uda.pipeline.settings.SETTINGS`)
``warm_start``         start each adaptation stage's network from the previous stage's
                       weights (ASIT + MDM from ASIT, each self-training round from
                       the previous round, the final network from ASIT + MDM); the
                       paper retrains every network from scratch (``false``)
=====================  ==========================================================

Loading resolves every plug-in name (with a did-you-mean), checks every option
against the plug-in's ``config_class`` (names and types; ``bool`` is not an
``int``), builds every training configuration and checks the setting names,
so a typo anywhere fails before any work. YAML parsing lives here, at the
edge; the stages see dataclasses. Configs of flare_uda 0.1 are read too
(:mod:`flare_uda.pipeline.legacy`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from flare_uda._atomic import write_text
from flare_uda._validation import class_range, require_int
from flare_uda.options import added_option, build_config, to_plain
from flare_uda.plugin import PluginSpec, plugin_field, resolve_plugin_fields, spec
from flare_uda.pseudolabel import SelfTrainingConfig
from flare_uda.registration import CTAtlasConfig, MDMConfig
from flare_uda.registration.fusion import FusionConfig

ABLATION_SETTINGS = ("only_ct", "cyclegan", "asit", "asit_mdm", "asit_mdm_plf", "oracle")
"""The paper's Table 7, in order (the default ``ablation``)."""
EXTENDED_SETTINGS = (
    "asit_mdm_multi",
    "asit_mdm_plf_organ",
    "asit_mdm_atlas",
    "asit_mdm_atlas_plf",
)
"""Built-in settings beyond the paper (issue 14): multi-atlas deformable MDM, organ-wise
filtering, the CT atlas."""


def _multi_atlas_mdm() -> MDMConfig:
    """MDM with the deformable registrar (on the anatomy-space images, as the paper's) and
    3 atlases per case: the best variant of ``benchmarks/probe_organ_fill.py mdm``."""
    registrar = spec("registrar", "deformable", shrink_factors=(8, 4, 2))
    return MDMConfig(registrar=registrar, fusion=FusionConfig(atlases=3))


@dataclass(frozen=True)
class DataConfig:
    """Phantom cohort used when no data folders are given.

    ``n_mr`` unlabelled MR cases are used for adaptation; ``n_mr_test`` further
    MR subjects (labels used for evaluation only) are held out for scoring.
    """

    preset: str = "quick"
    n_ct: int = 8
    n_mr: int = 8
    n_mr_test: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        from flare_uda.data.phantom import PHANTOM_PRESETS
        from flare_uda.registry import unknown_name_error

        if self.preset not in PHANTOM_PRESETS:
            raise unknown_name_error("phantom preset", str(self.preset), list(PHANTOM_PRESETS))
        for name in ("n_ct", "n_mr", "n_mr_test"):
            require_int(getattr(self, name), name, minimum=1)
        require_int(self.seed, "seed", minimum=0)


@dataclass(frozen=True)
class SegmentationConfig:
    """A training stage: a segmentation preset and options overriding its fields.

    Parameters
    ----------
    preset : str
        A :func:`flare_uda.segmentation.get_preset` name.
    options : dict
        Any :class:`~flare_uda.segmentation.TrainConfig` field (nested ones,
        e.g. ``network: {base_features: 16}``, override field by field).
        The pipeline trains every segmenter with per-image z-score
        normalisation unless ``normalization`` is set here (see docs/design.md).
    """

    preset: str = "quick"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", to_plain(dict(self.options)))
        config = self.train_config()  # names, types and values are checked now, not at training
        config.network.topology(config.patch_size, config.spacing)  # the patch fits the network

    def train_config(self):
        """The :class:`~flare_uda.segmentation.TrainConfig` this section describes."""
        from flare_uda.segmentation import TrainConfig, get_preset

        base = get_preset(self.preset)
        return build_config(
            TrainConfig, {"normalization": "zscore", **self.options}, "options", base
        )


@dataclass(frozen=True)
class SynthConfig:
    """The first network of the ``synth*`` settings: trained on CT whose samples are, with
    probability ``label_contrast``, redrawn from their label maps with random contrasts
    (:mod:`flare_uda.segmentation.label_contrast`), for ``budget_factor`` times the
    ``segmentation`` section's budget (its time budget, else its iterations): random
    contrasts are learned more slowly (real data, 2 vs 6 minutes: kidneys 0 vs 68-71
    DSC; 6 vs 12 minutes with split organs: liver 55 vs 63, docs/results.md).
    ``organ_classes``: each organ of those images is split into this many (low, high)
    generation classes by random quantiles of its intensities, so that an organ with
    inner structure (the vessels of a T2 liver) is still that organ
    (:func:`~flare_uda.segmentation.label_contrast.generation_classes`). The default
    ``(1, 1)`` keeps organs uniform: at 12 minutes, ``(1, 3)`` gave the same CHAOS T2
    mean and a lower spleen in 4 + 3 whole-chain runs (docs/results.md). Every later
    network of those settings trains on real MR pseudo-labels with the ``segmentation``
    section as it is.

    ``members``: how many such first networks are trained, each with its own seed
    (the ``segmentation`` section's seed, + 1, + 2, ...; the first is the single
    network of ``members: 1``); their mean probability
    (:class:`~flare_uda.inference.ensemble_segmenter.EnsembleSegmenter`) labels the
    adaptation MR and the ``synth`` test cases, and a warm start takes the first
    member's weights. Each member costs the whole budget again. The default 2: on
    real MR (CHAOS T2) in three paired runs it raised the whole chain from 66.7 /
    70.2 / 69.9 to 71.4 / 71.9 / 72.9, and in four runs its first network beat
    the average of its members every time; a weak member still pulls it down
    (a fourth run: 65.9, liver 51.7; docs/results.md, "Two first networks").
    """

    label_contrast: float = 0.8
    budget_factor: float = 6.0
    organ_classes: tuple[int, int] = (1, 1)
    members: int = 2

    def __post_init__(self) -> None:
        p = self.label_contrast
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1:
            raise ValueError(f"synth.label_contrast must be a probability in (0, 1], got {p!r}")
        f = self.budget_factor
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not f > 0:
            raise ValueError(f"synth.budget_factor must be a number > 0, got {f!r}")
        organ = class_range("synth.organ_classes", self.organ_classes)
        object.__setattr__(self, "organ_classes", organ)
        m = self.members
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ValueError(f"synth.members must be an integer >= 1, got {m!r}")

    def segmentation(self, base: SegmentationConfig) -> SegmentationConfig:
        """``base`` with random contrasts on and its budget scaled."""
        train = base.train_config()
        options = dict(base.options)
        options["augment"] = {
            **dict(options.get("augment", {})),
            "label_contrast": self.label_contrast,
            "label_contrast_organ_classes": self.organ_classes,
        }
        if train.time_budget_minutes is not None:
            options["time_budget_minutes"] = train.time_budget_minutes * self.budget_factor
        else:
            options["iterations"] = max(1, round(train.iterations * self.budget_factor))
        return SegmentationConfig(base.preset, options)

    def member_segmentations(self, base: SegmentationConfig) -> list[SegmentationConfig]:
        """One :meth:`segmentation` per member; member ``i`` with seed ``base seed + i``
        (member 0's section is :meth:`segmentation`'s, unchanged)."""
        first = self.segmentation(base)
        seed = first.train_config().seed
        rest = [
            SegmentationConfig(first.preset, {**first.options, "seed": seed + i})
            for i in range(1, self.members)
        ]
        return [first, *rest]


def _check_warm_start(first: SegmentationConfig, final: SegmentationConfig) -> None:
    """Warm starts carry weights from stage to stage: one network shape throughout."""
    a, b = first.train_config(), final.train_config()
    differ = [
        name
        for name in ("network", "patch_size", "spacing", "num_classes", "head")
        if getattr(a, name) != getattr(b, name)
    ]
    if differ:
        raise ValueError(
            "warm_start carries weights from stage to stage, so final_segmentation must use "
            f"the network of segmentation; they differ in {differ} (set warm_start: false or "
            "use the same network)"
        )


@dataclass(frozen=True)
class UDAConfig:
    """A whole run of the method (and its ablation); see the module docstring."""

    data: DataConfig = field(default_factory=DataConfig)
    translation: PluginSpec = plugin_field("translator", "asit")
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    final_segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    inference: PluginSpec = plugin_field("inferer", "sliding_window")
    mdm: MDMConfig = field(default_factory=MDMConfig)
    self_training: SelfTrainingConfig = field(default_factory=SelfTrainingConfig)
    mdm_multi: MDMConfig = field(default_factory=_multi_atlas_mdm)
    organ_filter: PluginSpec = plugin_field("filter", "organ_wise")
    ct_atlas: CTAtlasConfig = field(default_factory=CTAtlasConfig)
    synth: SynthConfig = added_option(SynthConfig())
    executor: PluginSpec = plugin_field("executor", "serial")
    ablation: tuple[str, ...] = ABLATION_SETTINGS
    warm_start: bool = False

    def __post_init__(self) -> None:
        resolve_plugin_fields(self)
        if not isinstance(self.warm_start, bool):
            raise TypeError(f"warm_start must be true or false, got {self.warm_start!r}")
        if self.warm_start:
            _check_warm_start(self.segmentation, self.final_segmentation)
        from flare_uda.pipeline.settings import SETTINGS

        object.__setattr__(self, "ablation", tuple(self.ablation))
        if not self.ablation:
            raise ValueError("ablation must name at least one setting, got none")
        for name in self.ablation:
            SETTINGS.get(name)  # an unknown name raises with a did-you-mean
        if len(set(self.ablation)) != len(self.ablation):
            raise ValueError(f"ablation names a setting twice: {list(self.ablation)}")

    # ------------------------------------------------------------- (de)serialise
    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON data: every section, every option."""
        return to_plain(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], base: UDAConfig | None = None) -> UDAConfig:
        """Build from a (possibly partial) nested dict; every name and value is checked.

        Sections left out keep ``base``'s (default: the defaults); a section given
        updates ``base``'s field by field, except plug-in entries and segmentation
        ``options``, which are replaced whole (a plug-in starts from its own defaults).

        Raises
        ------
        KeyError
            Unknown sections, options or plug-in names (with the closest known one).
        TypeError, ValueError
            Values of the wrong type or out of range, naming where they sit.
        """
        from flare_uda.pipeline.legacy import upgrade

        if not isinstance(d, dict):
            raise TypeError(f"config must be a mapping of sections, got {type(d).__name__}")
        if base is not None and not isinstance(base, UDAConfig):
            raise TypeError(f"base must be a UDAConfig, got {type(base).__name__}")
        return build_config(cls, upgrade(d), "", base=base)

    def to_yaml(self, path: str | os.PathLike | None = None) -> str:
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        if path is not None:
            write_text(path, text)
        return text

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, base: UDAConfig | None = None) -> UDAConfig:
        """Read and check a YAML config (errors name the file and the place in it);
        ``base``: see :meth:`from_dict`."""
        from flare_uda._yaml import read_yaml_mapping

        data = read_yaml_mapping(path)
        try:
            return cls.from_dict(data, base)
        except (KeyError, ValueError, TypeError) as err:
            raise type(err)(f"{path}: {err}") from None
