"""Warm starts in the pipeline: ASIT + MDM from ASIT, rounds from the previous round,
the final network from ASIT + MDM; the paper's from-scratch training stays the default."""

from __future__ import annotations

import pytest

from flare_uda.pipeline import UDAConfig, get_preset
from flare_uda.pipeline.settings import SETTINGS, Inputs
from flare_uda.pipeline.stages import Cases


def _stages(config: UDAConfig) -> dict:
    """Every stage of the full method's composition, by name."""
    inputs = Inputs(*(Cases(name, []) for name in ("ct", "mr", "mr_labelled", "test")))
    found, todo = {}, [SETTINGS.get("asit_mdm_plf")(config, inputs)]
    while todo:
        stage = todo.pop()
        found[stage.name] = stage
        todo.extend(stage.upstream)
    return found


def test_default_trains_every_network_from_scratch():
    stages = _stages(get_preset("tiny"))
    assert get_preset("tiny").warm_start is False
    assert [u.name for u in stages["train_asit_mdm"].upstream] == ["mdm"]
    assert [u.name for u in stages["train_final"].upstream] == ["self_training"]
    assert "warm_start" not in stages["self_training"].config()


def test_warm_start_chains_the_weights():
    config = UDAConfig.from_dict({"warm_start": True}, base=get_preset("tiny"))
    stages = _stages(config)
    assert [u.name for u in stages["train_asit_mdm"].upstream] == ["mdm", "train_asit"]
    assert [u.name for u in stages["train_final"].upstream] == [
        "self_training",
        "train_asit_mdm",
    ]
    assert stages["self_training"].config()["warm_start"] is True


def test_warm_start_needs_one_network_shape():
    with pytest.raises(ValueError, match="final_segmentation must use the network"):
        UDAConfig.from_dict(
            {"warm_start": True, "final_segmentation": {"preset": "tiny", "options": {
                "network": {"base_features": 8}}}},
            base=get_preset("tiny"),
        )  # fmt: skip
    with pytest.raises(TypeError, match="warm_start must be true or false"):
        UDAConfig.from_dict({"warm_start": 1}, base=get_preset("tiny"))


def test_tiny_demo_with_warm_starts_runs_every_setting(tmp_path):
    from click.testing import CliRunner

    from flare_uda.cli import main

    cfg = tmp_path / "warm.yaml"
    cfg.write_text("warm_start: true\nablation: [asit_mdm, asit_mdm_plf]\n")
    out = tmp_path / "run"
    args = ["demo", "--preset", "tiny", "--quiet", "--device", "cpu", "--config", str(cfg)]
    res = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    report = (out / "report.md").read_text()
    assert "did not run" not in report
    assert "| ASIT + MDM + PLF |" in report or "asit_mdm_plf" in report
    assert "Warm starts: each network after ASIT's starts from the previous one's" in report


def test_the_oracle_starts_from_asit_only_with_warm_starts():
    """Warm-started, the oracle differs from ASIT + MDM only in its labels."""
    inputs = Inputs(*(Cases(name, [1]) for name in ("ct", "mr", "mr_labelled", "test")))
    oracle = SETTINGS.get("oracle")
    cold = oracle(get_preset("tiny"), inputs).upstream[0]
    assert [u.name for u in cold.upstream] == ["mr_labelled"]
    warm = oracle(UDAConfig.from_dict({"warm_start": True}, base=get_preset("tiny")), inputs)
    assert [u.name for u in warm.upstream[0].upstream] == ["mr_labelled", "train_asit"]
