"""Pipeline config: YAML round trip, presets, checks on load (names, types, values), legacy."""

from __future__ import annotations

import dataclasses
import warnings

import pytest

from flare_uda.pipeline.cache import StageCache, stage_key
from flare_uda.pipeline.config import SegmentationConfig, UDAConfig
from flare_uda.pipeline.presets import PRESETS, get_preset
from flare_uda.translation import PRESETS as GAN_PRESETS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_yaml_round_trip(tmp_path, name):
    cfg = get_preset(name)
    path = tmp_path / "cfg.yaml"
    cfg.to_yaml(path)
    assert UDAConfig.from_yaml(path) == cfg


def test_partial_dict_keeps_defaults_and_resolves_plugins():
    cfg = UDAConfig.from_dict(
        {
            "self_training": {"rounds": 3, "ensembler": "majority"},
            "mdm": {"registrar": {"name": "sitk", "options": {"iterations": 20}}},
            "executor": {"name": "process", "options": {"workers": 2}},
        }
    )
    assert cfg.self_training.rounds == 3 and cfg.self_training.ensembler.name == "majority"
    assert cfg.mdm.registrar.options.iterations == 20 and cfg.mdm.better == "T1"
    assert cfg.executor.build().workers == 2
    assert cfg.translation == UDAConfig().translation


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        ({"translaton": {}}, KeyError, "unknown config section 'translaton'. Did you mean"),
        ({"translation": {"name": "asitt"}}, KeyError, "unknown translator 'asitt'"),
        (
            {"translation": {"name": "asit", "options": {"gain": 2}}},
            KeyError,
            r"unknown option of translation.options 'gain'",
        ),
        (
            {"translation": {"name": "asit", "options": {"iterations": True}}},
            TypeError,
            r"translation.options.iterations must be an int, got True \(bool\)",
        ),
        (
            {"mdm": {"registrar": {"name": "centroidd"}}},
            KeyError,
            "unknown registrar 'centroidd'",
        ),
        ({"mdm": {"better": "T2"}}, ValueError, "mdm: better and worse sequences must differ"),
        (
            {"self_training": {"rounds": 1}},
            ValueError,
            r"self_training: rounds must be an int >= 2 \(eq. 7",
        ),
        ({"self_training": {"round": 3}}, KeyError, "Did you mean 'rounds'"),
        ({"inference": {"name": "tiles"}}, KeyError, "unknown inferer 'tiles'"),
        (
            {"inference": {"name": "sliding_window", "options": {"step": 0.0}}},
            ValueError,
            r"inference.options: step must be in \(0, 1\]",
        ),
        ({"executor": {"name": "serail"}}, KeyError, "Did you mean 'serial'"),
        ({"ablation": ["asit", "asit+mdm"]}, KeyError, "unknown ablation setting 'asit\\+mdm'"),
        ({"ablation": ["asit", "asit"]}, ValueError, "names a setting twice"),
        ({"data": {"n_ct": 0}}, ValueError, "data: n_ct must be a positive int, got 0"),
        ({"data": {"preset": "huge"}}, KeyError, "unknown phantom preset 'huge'"),
        (
            {"segmentation": {"preset": "quick", "options": {"iterations": True}}},
            TypeError,
            r"segmentation: options.iterations must be an int, got True",
        ),
        (
            {"segmentation": {"options": {"iteration": 3}}},
            KeyError,
            "unknown option of options 'iteration'. Did you mean 'iterations'",
        ),
        (
            {"segmentation": {"options": {"patch_size": [30, 64, 64]}}},
            ValueError,
            "must be divisible by the total stride",
        ),
        ({"segmentation": {"preset": "quik"}}, KeyError, "Did you mean 'quick'"),
    ],
)
def test_every_mistake_fails_on_load(config, error, message):
    with pytest.raises(error, match=message):
        UDAConfig.from_dict(config)


def test_yaml_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected a YAML config file"):
        UDAConfig.from_yaml(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ValueError, match=r"empty.yaml is empty: expected a config mapping"):
        UDAConfig.from_yaml(empty)
    twice = tmp_path / "twice.yaml"
    twice.write_text("self_training:\n  rounds: 2\n  rounds: 3\n")
    with pytest.raises(ValueError, match=r"duplicate key 'rounds' \(first at line 2\)"):
        UDAConfig.from_yaml(twice)
    broken = tmp_path / "broken.yaml"
    broken.write_text("mdm: {better: T1\n")
    with pytest.raises(ValueError, match="broken.yaml is not valid YAML"):
        UDAConfig.from_yaml(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(TypeError, match="must hold a mapping of config sections, got list"):
        UDAConfig.from_yaml(listed)
    typo = tmp_path / "typo.yaml"
    typo.write_text("translation: {name: asit, options: {iterations: true}}\n")
    with pytest.raises(
        TypeError, match=r"typo.yaml: translation.options.iterations must be an int"
    ):
        UDAConfig.from_yaml(typo)


def test_segmentation_section_hands_over_a_train_config():
    section = SegmentationConfig("tiny", {"iterations": 3, "network": {"base_features": 6}})
    cfg = section.train_config()
    assert cfg.iterations == 3 and cfg.normalization == "zscore"  # the pipeline's default
    assert cfg.network.base_features == 6 and cfg.network.max_downsamplings == 2  # merged
    assert SegmentationConfig("tiny", {"normalization": "none"}).train_config().normalization == (
        "none"
    )
    assert section.options == {"iterations": 3, "network": {"base_features": 6}}


def test_cyclegan_setting_shares_the_method_gan_options(tmp_path):
    from flare_uda.pipeline.settings import cyclegan
    from flare_uda.pipeline.uda import UDAPipeline

    config = get_preset("tiny")
    pipe = UDAPipeline(config, tmp_path, progress=False, device="cpu")
    from test_pipeline_uda import _case

    inputs = pipe.inputs([_case("ct", True)], [_case("m", True)], [_case("t", True)])
    gan = cyclegan(config, inputs).upstream[0].upstream[0]  # predict <- train <- translate
    assert gan.spec.name == "cyclegan" and gan.spec.options.iterations == 2
    assert (
        dataclasses.asdict(gan.spec.options).items()
        <= dataclasses.asdict(config.translation.options).items()
    )


def test_legacy_layout_is_read_with_its_meaning():
    old = {
        "seed": 3,
        "translation": {"method": "asit", "preset": "quick", "iterations": 7},
        "segmentation": {"preset": "tiny", "iterations": 2, "patch_size": [16, 48, 48]},
        "pseudolabel": {
            "better_sequence": "T2",
            "registrar": "sitk",
            "mdm_features": "labels",
            "quality_gate": True,
            "rounds": 3,
            "keep_fraction": 0.5,
            "ensemble": "majority",
        },
        "inference": {"mode": "roi", "step": 1.0, "resampling": "torch"},
    }
    with pytest.warns(UserWarning, match="flare_uda 0.1 layout"):
        cfg = UDAConfig.from_dict(old)
    gan = cfg.translation.options
    assert cfg.translation.name == "asit" and (gan.iterations, gan.seed) == (7, 3)
    assert dataclasses.replace(gan, iterations=600, seed=0).width == GAN_PRESETS["quick"].width
    assert cfg.segmentation.train_config().iterations == 2
    assert cfg.segmentation.train_config().seed == 3
    assert (cfg.mdm.better, cfg.mdm.worse, cfg.mdm.gate_dice) == ("T2", "T1", 0.8)
    assert cfg.mdm.registrar.name == "sitk"
    assert cfg.mdm.registrar.options.features == "labels"
    assert cfg.mdm.registrar.options.shrink_factors == (8, 4, 2)
    st = cfg.self_training
    assert (st.rounds, st.filter.options.keep_fraction, st.ensembler.name) == (3, 0.5, "majority")
    assert cfg.inference.name == "roi"
    assert (cfg.inference.options.fine.step, cfg.inference.options.fine.resampling) == (
        1.0,
        "torch",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert UDAConfig.from_dict(cfg.to_dict()) == cfg  # the new layout: no warning


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


def test_unknown_preset_suggests():
    with pytest.raises(KeyError, match="Did you mean 'quick'"):
        get_preset("quik")
    with pytest.raises(TypeError, match="pipeline preset name must be a str, got bool"):
        get_preset(True)


def test_a_partial_config_updates_a_base():
    tiny = get_preset("tiny")
    cfg = UDAConfig.from_dict(
        {
            "data": {"n_ct": 3},
            "mdm": {"registrar": {"name": "sitk"}},
            "segmentation": {"options": {"iterations": 5}},
        },
        base=tiny,
    )
    assert cfg.data == dataclasses.replace(tiny.data, n_ct=3)  # field by field
    assert cfg.mdm.registrar.options.shrink_factors == (4, 2, 1)  # a plug-in: its own defaults
    assert cfg.segmentation.preset == "tiny" and cfg.segmentation.options == {"iterations": 5}
    assert (cfg.translation, cfg.self_training) == (tiny.translation, tiny.self_training)
    with pytest.raises(TypeError, match="base must be a UDAConfig, got dict"):
        UDAConfig.from_dict({}, base={})


def test_legacy_errors_name_the_option():
    with pytest.raises(KeyError, match="Did you mean 'keep_fraction'"):
        UDAConfig.from_dict({"pseudolabel": {"keep_fractoin": 0.5}})
    with pytest.raises(ValueError, match="mdm_features must be"):
        UDAConfig.from_dict({"pseudolabel": {"mdm_features": "images"}})


@pytest.mark.parametrize("name, minutes", [("quick", 2.0), ("cpu", 5.0)])
def test_cpu_presets_train_on_a_wall_clock_budget(name, minutes):
    from flare_uda.pipeline.stages import training_length

    config = get_preset(name)
    for section in (config.segmentation, config.final_segmentation):
        train = section.train_config()
        assert section.preset == "quick2d" and train.network.spatial_dims == 2
        assert train.time_budget_minutes == minutes
        assert training_length(train) == f"for {minutes:g} min"
    # the quick demo leaves the image-space CycleGAN row and the CT-atlas chain to cpu
    extra = {"cyclegan", "asit_mdm_atlas", "asit_mdm_atlas_plf"}
    assert set(PRESETS["cpu"].ablation) - set(config.ablation) <= extra
    assert config.warm_start  # both CPU presets chain their networks' weights


def test_cpu_presets_gate_mdm_and_paper_does_not():
    """The gate is a deviation of the CPU presets; ``paper`` keeps the paper's MDM."""
    for name in ("quick", "cpu"):
        mdm = get_preset(name).mdm
        assert (mdm.gate_organs, mdm.gate_dice) == ((1, 2, 3, 13), 0.5)
        assert get_preset(name).segmentation.train_config().channels_last
    assert get_preset("paper").mdm.gate_dice is None


def test_training_length_in_words():
    from flare_uda.pipeline.stages import training_length
    from flare_uda.segmentation import get_preset as seg_preset

    assert training_length(seg_preset("quick")) == "400 iterations"
    capped = seg_preset("quick", time_budget_minutes=1.5)
    assert training_length(capped) == "400 iterations, at most 1.5 min"
