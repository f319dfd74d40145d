"""End to end: the settings beyond the paper (multi-atlas MDM, organ-wise filter, CT atlas,
diagnosis) on `tiny`.

They run on a copy of the shared tiny demo run, so the stages they share with
the paper's settings (phantom, ASIT, MDM) come from its cache and only the new
stages run. The tiny segmenters train 2 steps, so the filters are set to let
their pseudo-labels through; the numbers are meaningless, the wiring is tested.
"""

from __future__ import annotations

import json
import shutil

from flare_uda.data.datasets import read_dataset
from flare_uda.pipeline import get_preset
from flare_uda.pipeline.config import EXTENDED_SETTINGS, UDAConfig
from flare_uda.pipeline.demo import run_demo
from flare_uda.pipeline.diagnosis import MDM_INPUT

PERMISSIVE = {
    "ablation": [*EXTENDED_SETTINGS, "oracle"],
    "organ_filter": {"name": "organ_wise", "options": {"threshold": 100.0, "prior": False}},
    "ct_atlas": {
        "filter": None,
        "gate_dice": None,
        "max_scale": 100.0,
        "max_shear": 100.0,
        "min_jacobian": -100.0,
        "fusion": {"atlases": 2},
    },
}


def test_extended_settings_run_and_diagnose(tiny_demo_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_demo_run, out)
    config = UDAConfig.from_dict(PERMISSIVE, base=get_preset("tiny"))
    result, report = run_demo(config, out, progress=False, device="cpu")
    assert set(result.rows) | set(result.notes.get("skipped", {})) == {*EXTENDED_SETTINGS, "oracle"}
    assert "asit_mdm_atlas" in result.rows
    stages = {p.name.split("-")[0] for p in (out / "stages").iterdir()}
    assert {"ct_atlas", "train_asit_mdm_atlas", "train_asit_mdm_plf_organ"} <= stages
    assert {"mdm_multi", "self_training_plf_organ", "self_training_atlas_plf"} <= stages
    assert (out / "self_training_plf_organ.json").is_file() and "mdm_multi" in result.notes
    # the CT atlas hands over labels whose annotated organs are the trusted + filled ones
    (atlas,) = (out / "stages").glob("ct_atlas-*")
    notes = json.loads((atlas / "DONE.json").read_text())["cases"]
    for case in read_dataset(atlas / "cases"):
        n = notes[case.case_id]
        assert list(case.annotated) == sorted(set(n["trusted"]) | set(n["filled"]))
        assert set(map(int, case.label.array.ravel())) <= {0, *case.annotated}
        assert len(n["atlases"]) == 2 and all(g == "ok" for g in n["gate"].values())
    # why each row moves: pseudo-labels of every MR-trained setting against the truth
    diagnosis = json.loads((out / "diagnosis.json").read_text())
    assert MDM_INPUT in diagnosis and diagnosis["oracle"]["organs_min"] == 13
    assert diagnosis["oracle"]["dsc_all"] == 1.0
    assert diagnosis["asit_mdm_atlas"]["organs_mean"] >= diagnosis[MDM_INPUT]["organs_mean"]
    text = report.read_text()
    assert "## Why each row moves" in text and "| ASIT + MDM + CT atlas |" in text
