"""The plug-in in docs/usage.md is real code: it runs, round-trips and is configured by its YAML."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import yaml

from flare_uda.pipeline import UDAConfig, get_preset
from flare_uda.registration import REGISTRARS, Registrar
from flare_uda.volume import Volume

USAGE = (Path(__file__).parents[1] / "docs" / "usage.md").read_text()


def _blocks(language: str, after: str) -> list[str]:
    text = USAGE[USAGE.index(after) :]
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_the_usage_plugin_runs_round_trips_and_is_configured_from_yaml(monkeypatch):
    code = _blocks("python", "## Writing a plug-in")[0]
    assert len(code.strip().splitlines()) < 30
    monkeypatch.setattr(REGISTRARS, "_items", dict(REGISTRARS._items))  # leave no trace
    namespace: dict = {}
    exec(compile(code, "docs/usage.md", "exec"), namespace)
    registrar = namespace["CentroidRegistrar"](max_shift_mm=30.0)
    config = registrar.to_config()
    assert config["name"] == "centroid" and config["options"]["max_shift_mm"] == 30.0
    assert Registrar.from_config(config).config == registrar.config
    fixed = np.zeros((8, 16, 48), np.uint8)  # blurred label channels stay inside along x
    fixed[2:5, 4:9, 18:23] = 1
    moving = np.roll(fixed, 3, axis=2)
    spacing = (2.0, 1.0, 1.0)
    reg = Registrar.from_config({**config, "options": {**config["options"], "features": "labels"}})
    reg.fit(Volume(moving, spacing), Volume(fixed, spacing))
    np.testing.assert_allclose(reg.matrix_[:3, 3], [0.0, 0.0, 3.0], atol=1e-6)
    entry = yaml.safe_load(_blocks("yaml", "## Writing a plug-in")[0])
    cfg = UDAConfig.from_dict(entry, base=get_preset("tiny"))
    assert cfg.mdm.registrar.name == "centroid" and cfg.mdm.registrar.options.max_shift_mm == 30.0


def test_the_usage_config_example_loads():
    entry = yaml.safe_load(_blocks("yaml", "## The pipeline config")[0])
    cfg = UDAConfig.from_dict(entry)
    assert cfg.executor.name == "process" and cfg.self_training.ensembler.name == "union"


def test_the_usage_training_recipe_loads_over_quick():
    entry = yaml.safe_load(_blocks("yaml", "## Your own data")[0])
    cfg = UDAConfig.from_dict(entry, base=get_preset("quick"))
    train = cfg.final_segmentation.train_config()
    assert cfg.warm_start and train.network.spatial_dims == 2 and train.time_budget_minutes == 20
