"""Why each row moves (pseudo-labels against the truth) and selecting the new plug-ins in YAML."""

from __future__ import annotations

import numpy as np
import pytest

from flare_uda.pipeline import get_preset
from flare_uda.pipeline.adaptation import SelfTraining
from flare_uda.pipeline.config import UDAConfig
from flare_uda.pipeline.diagnosis import MDM_INPUT, case_diagnosis, summarize_cases
from flare_uda.pipeline.report import diagnosis_table
from flare_uda.pipeline.settings import SETTINGS, Inputs
from flare_uda.pipeline.stages import Cases
from flare_uda.pseudolabel import OrganWiseFilter
from flare_uda.registration import CTAtlasConfig, DeformableRegistrar
from flare_uda.volume import Volume


def _label(*organs_and_columns) -> Volume:
    arr = np.zeros((1, 4, 12), np.uint8)
    for organ, cols in organs_and_columns:
        arr[0, :, cols] = organ
    return Volume(arr)


def test_case_diagnosis_counts_held_organs_only():
    truth = _label((1, slice(0, 4)), (2, slice(4, 8)), (3, slice(8, 12)))
    pseudo = _label((1, slice(0, 4)), (2, slice(4, 6)), (5, slice(8, 12)))
    d = case_diagnosis(pseudo, (1, 2, 3), truth)  # organ 5 is there but not annotated
    assert d["held"] == [1, 2]
    assert d["dsc_held"] == pytest.approx((1.0 + 2 * 8 / (8 + 16)) / 2)
    assert d["dsc_all"] == pytest.approx((1.0 + 2 * 8 / 24) / 13)
    assert case_diagnosis(_label(), (1,), truth)["dsc_held"] is None
    with pytest.raises(ValueError, match="differs from the truth's"):
        case_diagnosis(Volume(np.zeros((1, 4, 11), np.uint8)), (1,), truth)


def test_summaries_and_the_report_table():
    truth = {"a": _label((1, slice(0, 6))), "b": _label((1, slice(0, 6)), (2, slice(6, 12)))}
    labels = {"a": (truth["a"], (1,)), "b": (truth["b"], (1, 2)), "x": (truth["a"], (1,))}
    s = summarize_cases(labels, truth)  # "x" has no truth: left out
    assert (s["cases"], s["organs_mean"], s["organs_min"], s["dsc_held"]) == (2, 1.5, 1, 1.0)
    assert summarize_cases({"x": labels["x"]}, truth) is None
    lines = diagnosis_table({MDM_INPUT: s, "asit_mdm": s}, {"asit": 0.2, "asit_mdm": 0.3})
    text = "\n".join(lines)
    assert "| ASIT pseudo-labels (MDM input) | 2 | 1.5 (1) | 100.0 |" in text
    assert "| ASIT |  | n/a | n/a | n/a | 20.0 |" in text
    assert "| ASIT + MDM | 2 | 1.5 (1) | 100.0 | 11.5 | 30.0 |" in text


def test_new_plugins_and_settings_are_selected_from_yaml():
    config = UDAConfig.from_dict(
        {
            "mdm": {"registrar": {"name": "demons"}, "fusion": {"atlases": 3}},
            "organ_filter": {"name": "organ_wise", "options": {"keep_fraction": 0.75}},
            "ct_atlas": {"registrar": {"name": "deformable", "options": {"smoothness": 0.05}}},
            "self_training": {"filter": {"name": "organ_wise"}},
            "ablation": ["asit_mdm", "asit_mdm_plf_organ", "asit_mdm_atlas_plf"],
        },
        base=get_preset("tiny"),
    )
    assert config.mdm.registrar.name == "demons" and config.mdm.fusion.atlases == 3
    assert config.organ_filter.build().config.keep_fraction == 0.75
    assert isinstance(config.ct_atlas, CTAtlasConfig)
    assert isinstance(config.ct_atlas.registrar.build(), DeformableRegistrar)
    assert isinstance(config.self_training.filter.build(), OrganWiseFilter)
    again = UDAConfig.from_dict(config.to_dict())
    assert again.to_dict() == config.to_dict()
    with pytest.raises(KeyError, match="Did you mean 'grid_spacing_mm'"):
        UDAConfig.from_dict(
            {"ct_atlas": {"registrar": {"name": "deformable", "options": {"grid_spacing": 1}}}}
        )
    with pytest.raises(KeyError, match="Did you mean 'asit_mdm_atlas'"):
        UDAConfig.from_dict({"ablation": ["asit_mdm_atlass"]})
    with pytest.raises(ValueError, match="ct_atlas: measure must be one of"):
        UDAConfig.from_dict({"ct_atlas": {"measure": "organs"}})


def test_a_filter_with_a_prior_needs_the_source_stage():
    config = UDAConfig.from_dict(
        {"self_training": {"filter": {"name": "organ_wise"}}}, base=get_preset("tiny")
    )
    mr = Cases("mr", [])
    with pytest.raises(ValueError, match="learns a prior from the labelled source cases: pass"):
        SelfTraining(config.self_training, mr, mr, config.segmentation, config.inference)
    inputs = Inputs(ct=Cases("ct", []), mr=mr, mr_labelled=mr, test=Cases("t", []))
    final = SETTINGS.get("asit_mdm_plf")(config, inputs)  # the setting passes the CT stage
    plf = final.upstream[0].upstream[0]
    assert isinstance(plf, SelfTraining) and plf.upstream[2] is inputs.ct


def test_the_new_settings_warm_start_like_the_papers():
    config = UDAConfig.from_dict({"warm_start": True}, base=get_preset("tiny"))
    inputs = Inputs(*(Cases(name, []) for name in ("ct", "mr", "mr_labelled", "test")))
    final = SETTINGS.get("asit_mdm_atlas_plf")(config, inputs)
    train_final = final.upstream[0]
    assert [u.name for u in train_final.upstream] == [
        "self_training_atlas_plf",
        "train_asit_mdm_atlas",
    ]
    atlas_train = train_final.upstream[1]
    assert [u.name for u in atlas_train.upstream] == ["ct_atlas", "train_asit"]
    plf = train_final.upstream[0]
    assert plf.warm_start and [u.name for u in plf.upstream] == [
        "ct_atlas",
        "train_asit_mdm_atlas",
        "ct",
    ]


def test_multi_atlas_mdm_is_a_setting_of_its_own():
    config = UDAConfig.from_dict(
        {"mdm_multi": {"fusion": {"atlases": 2}}, "ablation": ["asit_mdm", "asit_mdm_multi"]},
        base=get_preset("tiny"),
    )
    assert config.mdm_multi.registrar.name == "deformable" and config.mdm_multi.fusion.atlases == 2
    assert config.mdm.registrar.name == "torch" and config.mdm.fusion.atlases == 1  # the paper's
    inputs = Inputs(*(Cases(name, []) for name in ("ct", "mr", "mr_labelled", "test")))
    paper = SETTINGS.get("asit_mdm")(config, inputs).upstream[0]
    multi = SETTINGS.get("asit_mdm_multi")(config, inputs).upstream[0]
    assert (paper.name, multi.name) == ("train_asit_mdm", "train_asit_mdm_multi")
    mdm, mdm_multi = paper.upstream[0], multi.upstream[0]
    assert (mdm.name, mdm_multi.name) == ("mdm", "mdm_multi")
    assert mdm_multi.mdm is config.mdm_multi and mdm.mdm is config.mdm
    assert mdm_multi.upstream[1].name == mdm.upstream[1].name == "predict_pseudo_asit"
    with pytest.raises(ValueError, match="atlases must be"):
        UDAConfig.from_dict({"mdm_multi": {"fusion": {"atlases": 0}}})


def test_the_usage_example_of_the_new_settings_loads():
    import re
    from pathlib import Path

    import yaml

    usage = (Path(__file__).parents[1] / "docs" / "usage.md").read_text()
    text = usage[usage.index("## Pseudo-labels that find every organ") :]
    block = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)[0]
    config = UDAConfig.from_dict(yaml.safe_load(block))
    assert config.mdm_multi.fusion.atlases == 3 and config.mdm_multi.registrar.name == "deformable"
    assert config.mdm.fusion.atlases == 1  # the paper's MDM stays in asit_mdm
    assert config.ct_atlas.filter.options.threshold is None
    assert "asit_mdm_atlas_plf" in config.ablation


def test_stage_and_config_errors():
    from flare_uda.pipeline.ct_atlas import CTAtlas
    from flare_uda.pipeline.stages import NoPseudoLabels, usable
    from flare_uda.registration import MDMConfig

    with pytest.raises(TypeError, match="expected a CTAtlasConfig, got dict"):
        CTAtlas({}, Cases("mr", []), Cases("ct", []))
    with pytest.raises(NoPseudoLabels, match="no case left to train on"):
        usable([], "train_x")
    with pytest.raises(TypeError, match="fusion must be a FusionConfig or a mapping, got int"):
        MDMConfig(fusion=3)
