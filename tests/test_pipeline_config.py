"""Pipeline config: YAML round trip, presets, validation errors; stage-cache keys."""

from __future__ import annotations

import pytest

from flare_uda.pipeline.cache import StageCache, stage_key
from flare_uda.pipeline.config import UDAConfig
from flare_uda.pipeline.presets import PRESETS, get_preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_yaml_round_trip(tmp_path, name):
    cfg = get_preset(name)
    path = tmp_path / "cfg.yaml"
    cfg.to_yaml(path)
    assert UDAConfig.from_yaml(path) == cfg


def test_partial_dict_keeps_defaults():
    cfg = UDAConfig.from_dict({"pseudolabel": {"rounds": 3}})
    assert cfg.pseudolabel.rounds == 3
    assert cfg.translation == UDAConfig().translation


def test_unknown_preset_suggests():
    with pytest.raises(KeyError, match="Did you mean 'quick'"):
        get_preset("quik")


def test_unknown_section_and_option():
    with pytest.raises(KeyError, match="config section"):
        UDAConfig.from_dict({"translaton": {}})
    with pytest.raises(KeyError, match="Did you mean 'rounds'"):
        UDAConfig.from_dict({"pseudolabel": {"round": 3}})


def test_invalid_values():
    with pytest.raises(ValueError, match="rounds must be >= 2"):
        UDAConfig.from_dict({"pseudolabel": {"rounds": 1}})
    with pytest.raises(KeyError, match="ablation setting"):
        UDAConfig(ablation=("asit", "asit+mdm"))
    with pytest.raises(FileNotFoundError, match="YAML"):
        UDAConfig.from_yaml("/nonexistent/cfg.yaml")


def test_stage_keys_chain(tmp_path):
    cache = StageCache(tmp_path)
    a = cache.stage("translate", {"method": "asit"})
    b = cache.stage("train", {"iters": 2}, upstream=(a,))
    a2 = cache.stage("translate", {"method": "cyclegan"})
    b2 = cache.stage("train", {"iters": 2}, upstream=(a2,))
    assert a.key != a2.key and b.key != b2.key
    assert stage_key("train", {"iters": 2}, (a.key,)) == b.key
    assert not b.done
    b.mark_done({"n": 1})
    assert cache.stage("train", {"iters": 2}, upstream=(a,)).done
    assert b.info()["n"] == 1


def test_mdm_and_self_training_keys_split_the_pseudolabel_fields():
    import dataclasses

    from flare_uda.pipeline.config import MDM_FIELDS, PLF_FIELDS, PseudoLabelConfig

    names = {f.name for f in dataclasses.fields(PseudoLabelConfig)}
    # every field belongs to exactly one stage's key (a new field must be placed)
    assert set(MDM_FIELDS) | set(PLF_FIELDS) == names
    assert not set(MDM_FIELDS) & set(PLF_FIELDS)
    a, b = PseudoLabelConfig(), PseudoLabelConfig(ensemble="majority")
    assert a.mdm_key() == b.mdm_key()  # a new ensemble does not redo MDM
    assert a.self_training_key() != b.self_training_key()
    assert a.mdm_key() != PseudoLabelConfig(registrar="sitk").mdm_key()


def test_inference_config_builds_its_inferer_and_validates():
    from flare_uda.inference import CoarseToFineInferer, SlidingWindowInferer
    from flare_uda.pipeline.config import InferenceConfig

    plain = InferenceConfig().inferer()
    assert isinstance(plain, SlidingWindowInferer) and plain.config.resampling == "auto"
    roi = InferenceConfig(mode="roi", step=1.0, resampling="torch").inferer()
    assert isinstance(roi, CoarseToFineInferer)
    assert (roi.config.fine.step, roi.config.fine.resampling) == (1.0, "torch")
    with pytest.raises(KeyError, match="inference mode"):
        UDAConfig.from_dict({"inference": {"mode": "tiles"}})
    with pytest.raises(KeyError, match="inference resampling"):
        InferenceConfig(resampling="cubic")
    with pytest.raises(ValueError, match=r"step must be in \(0, 1\]"):
        InferenceConfig(step=0.0)


def test_inference_cache_key_keeps_old_keys_for_defaults():
    """Runs cached before ``mode``/``resampling`` were keyed keep their prediction stages."""
    from flare_uda.pipeline.config import InferenceConfig

    assert InferenceConfig(step=0.5).cache_key() == {"step": 0.5}
    assert InferenceConfig(mode="roi", resampling="torch").cache_key() == {
        "step": 0.5,
        "mode": "roi",
        "resampling": "torch",
    }
