"""The ``synth*`` settings (CT with label-conditioned random contrasts, then MDM and PLF)
end to end on `tiny`, and their config section.

They run on a copy of the shared tiny demo run, so Only CT's translation comes
from its cache; the numbers are meaningless (2-step trainings), the wiring is
tested: the first network trains with random contrasts for ``budget_factor``
times the steps, the later ones on MR pseudo-labels as the section says.
"""

from __future__ import annotations

import json
import shutil

import pytest

from flare_uda.pipeline import SegmentationConfig, UDAConfig, get_preset
from flare_uda.pipeline.config import SynthConfig
from flare_uda.pipeline.demo import run_demo
from flare_uda.pipeline.ensemble_model import EnsembleModel
from flare_uda.pipeline.settings import Inputs, synth_mdm_model, synth_model

SETTINGS = ["only_ct", "synth", "synth_mdm", "synth_mdm_plf"]


def _stage(out, name):
    (folder,) = (out / "stages").glob(f"{name}-*")
    return folder


def test_synth_settings_run_with_random_contrasts_first(tiny_demo_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_demo_run, out)
    config = UDAConfig.from_dict(
        {"ablation": SETTINGS, "synth": {"budget_factor": 2.0}}, base=get_preset("tiny")
    )
    result, report = run_demo(config, out, progress=False, device="cpu")
    assert set(result.rows) | set(result.notes.get("skipped", {})) == set(SETTINGS)
    assert {"synth", "synth_mdm"} <= set(result.rows)
    stages = {p.name.split("-")[0] for p in (out / "stages").iterdir()}
    assert {"train_synth", "predict_pseudo_synth", "mdm_synth", "train_synth_mdm"} <= stages
    assert "self_training_synth" in stages
    # the tiny preset trains 2 steps: the synth network 4, MR networks 2
    first = json.loads((_stage(out, "train_synth") / "work" / "history.json").read_text())
    later = json.loads((_stage(out, "train_synth_mdm") / "work" / "history.json").read_text())
    assert (first["iterations_done"], later["iterations_done"]) == (4, 2)
    assert "| CT, random contrasts |" in report.read_text()


def test_synth_members_train_one_seed_each_and_label_by_their_mean(tiny_demo_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_demo_run, out)
    settings = ["synth", "synth_mdm"]
    config = UDAConfig.from_dict(
        {"ablation": settings, "synth": {"members": 2}}, base=get_preset("tiny")
    )
    result, _ = run_demo(config, out, progress=False, device="cpu")
    assert set(result.rows) | set(result.notes.get("skipped", {})) == set(settings)
    steps = config.synth.segmentation(config.segmentation).train_config().iterations
    for name in ("train_synth", "train_synth_member2"):  # both trained, the synth budget
        history = json.loads((_stage(out, name) / "work" / "history.json").read_text())
        assert history["iterations_done"] == steps == 12  # 6 x the tiny pipeline's 2
    inputs = _inputs()
    _, model, _ = synth_model(config, inputs)
    assert [m.train_config.seed for m in model.members] == [0, 1]
    # the warm start of the MR network takes the first member's weights
    warm = {"ablation": settings, "warm_start": True}
    config_one = UDAConfig.from_dict({**warm, "synth": {"members": 1}}, base=get_preset("tiny"))
    config_two = UDAConfig.from_dict({**warm, "synth": {"members": 2}}, base=get_preset("tiny"))
    _, one = synth_mdm_model(config_one, inputs)
    _, two = synth_mdm_model(config_two, inputs)
    assert one.upstream[1].name == two.upstream[1].name == "train_synth"
    pseudo_two = two.upstream[0].upstream[1]  # MDM: (mr, pseudo-labels)
    assert isinstance(pseudo_two.upstream[0], EnsembleModel)
    assert [m.name for m in pseudo_two.upstream[0].members] == [
        "train_synth",
        "train_synth_member2",
    ]


def _inputs() -> Inputs:
    from flare_uda.pipeline.stages import Cases

    return Inputs(*(Cases(name, []) for name in ("ct", "mr", "mr_labelled", "test")))


def test_synth_members_share_the_section_but_not_the_seed():
    base = SegmentationConfig("tiny", {"seed": 5})
    first, second, third = SynthConfig(members=3).member_segmentations(base)
    assert first == SynthConfig().segmentation(base)  # member 0: the single network's
    seeds = [s.train_config().seed for s in (first, second, third)]
    assert seeds == [5, 6, 7]
    assert second.train_config().augment == first.train_config().augment
    assert SynthConfig(members=1).member_segmentations(base) == [first]
    assert len(SynthConfig().member_segmentations(base)) == 2  # the default: two seeds


def test_synth_section_scales_the_budget_and_turns_contrasts_on():
    timed = SegmentationConfig(
        "quick2d", {"time_budget_minutes": 2.0, "augment": {"scaling": [1, 1]}}
    )
    section = SynthConfig(label_contrast=0.5, budget_factor=3.0).segmentation(timed)
    train = section.train_config()
    assert train.time_budget_minutes == 6.0 and train.augment.label_contrast == 0.5
    assert train.augment.scaling == (1.0, 1.0)  # the section's other options are kept
    assert train.augment.label_contrast_organ_classes == (1, 1)  # uniform organs by default
    split = SynthConfig(organ_classes=(1, 3)).segmentation(timed).train_config()
    assert split.augment.label_contrast_organ_classes == (1, 3)  # organs with inner parts
    # the split is part of the first network's stage key; uniform organs leave it out
    assert "label_contrast_organ_classes" in split.to_dict()["augment"]
    assert "label_contrast_organ_classes" not in train.to_dict()["augment"]
    counted = SynthConfig(budget_factor=2.5).segmentation(SegmentationConfig("tiny"))
    assert counted.train_config().iterations == round(2.5 * get_preset_iterations("tiny"))
    # left out of a written config at its default, so older run folders keep their keys
    assert "synth" not in get_preset("quick").to_dict()


def get_preset_iterations(name: str) -> int:
    from flare_uda.segmentation import get_preset as segmentation_preset

    return segmentation_preset(name).iterations


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"label_contrast": 0.0}, "synth.label_contrast must be a probability"),
        ({"label_contrast": 1.5}, "synth.label_contrast must be a probability"),
        ({"budget_factor": 0}, "synth.budget_factor must be a number > 0"),
        ({"budget_factor": True}, "synth.budget_factor must be a number"),
        ({"organ_classes": [0, 2]}, "synth.organ_classes must be \\(low, high\\)"),
        ({"organ_classes": [3, 2]}, "synth.organ_classes must be \\(low, high\\)"),
        ({"organ_classes": [1, 2, 3]}, "synth.organ_classes must be a list of 2 ints"),
        ({"members": 0}, "synth.members must be an integer >= 1, got 0"),
        ({"members": 1.5}, "synth.members must be an int, got 1.5"),
        ({"members": True}, "synth.members must be an int, got True"),
    ],
)
def test_bad_synth_section_is_refused(values, match):
    with pytest.raises((ValueError, TypeError), match=match):
        UDAConfig.from_dict({"synth": values})
