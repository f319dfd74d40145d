"""Every script in examples/ runs, on the tiny phantom (a smoke test each, in a fresh process).

The examples are what a new user copies first; each runs here with the
arguments its docstring gives for a short run. A new example without an
entry in ``ARGS`` fails :func:`test_every_example_has_a_smoke_test`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "examples"
ARGS = {
    "quickstart.py": [],
    "custom_translator.py": ["--preset", "tiny", "--out", "{out}"],
    "custom_registrar.py": ["--preset", "tiny", "--out", "{out}"],
    "calibrate_phantom.py": [
        *("--preset", "tiny", "--n-ct", "2", "--n-mr", "4", "--iterations", "2"),
        *("--threads", "1", "--out", "{out}"),
    ],
    "measure_translation.py": [
        *("--preset", "tiny", "--n-ct", "2", "--n-mr", "2", "--iterations", "2"),
        *("--out", "{out}"),
    ],
    "reproduce_paper.py": [
        *("--preset", "tiny", "--ct", "{data}/ct", "--mr", "{data}/mr"),
        *("--mr-test", "{data}/mr_test", "--config", "{data}/only_ct.yaml", "--out", "{out}"),
    ],
    "adapt_shared_data.py": [
        *("--data", "{shared}", "--preset", "tiny", "--settings", "asit_mdm_plf"),
        *("--device", "cpu", "--out", "{out}"),
    ],
    "real_ct_to_mri.py": [
        *("--data", "{shared}", "--preset", "tiny", "--settings", "only_ct"),
        *("--iterations", "1", "--out", "{out}"),
    ],
}


def run_example(name: str, tmp_path: Path, **paths: Path) -> str:
    args = [a.format(out=tmp_path / "out", **paths) for a in ARGS[name]]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_every_example_has_a_smoke_test():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(ARGS)


def test_quickstart(tmp_path):
    assert "DSC" in run_example("quickstart.py", tmp_path)


@pytest.mark.parametrize("name", ["custom_translator.py", "custom_registrar.py"])
def test_user_plugins_in_the_pipeline_with_options_from_yaml(name, tmp_path):
    run_example(name, tmp_path)
    out = tmp_path / "out"
    assert (out / "report.md").is_file()
    if name == "custom_translator.py":  # the translator, with its option, reloads from the cache
        saved = next((out / "stages").glob("translate_histogram-*/model/translator.json"))
        assert '"quantiles": 51' in saved.read_text()
    else:
        (mdm,) = (out / "stages").glob("mdm-*")
        assert (mdm / "DONE.json").is_file()
        assert "centroid" in (out / "config.yaml").read_text()


def test_calibrate_phantom(tmp_path):
    run_example("calibrate_phantom.py", tmp_path)
    assert (tmp_path / "out" / "table.md").is_file()


def test_measure_translation(tmp_path):
    out = run_example("measure_translation.py", tmp_path)
    assert "| asit |" in out and (tmp_path / "out" / "translation_example.png").is_file()


def test_reproduce_paper_on_dataset_folders(tmp_path):
    from flare_uda.data.datasets import write_dataset
    from flare_uda.data.phantom import generate_cohort

    data = tmp_path / "data"
    ct, mr = generate_cohort("tiny", 2, 4, seed=0)
    _, test = generate_cohort("tiny", 0, 2, seed=1)
    for name, cases in (("ct", ct), ("mr", mr), ("mr_test", test)):
        write_dataset(cases, data / name, progress=False)
    (data / "only_ct.yaml").write_text("ablation: [only_ct]\n")
    run_example("reproduce_paper.py", tmp_path, data=data)
    assert (tmp_path / "out" / "report.md").is_file()


@pytest.mark.realdata
def test_real_ct_to_mri(tmp_path, shared_data):
    run_example("real_ct_to_mri.py", tmp_path, shared=shared_data)
    assert (tmp_path / "out" / "report.md").is_file()


@pytest.mark.realdata
@pytest.mark.slow  # the ASIT translation of the full-size real CT: minutes on 2 cores
def test_adapt_shared_data(tmp_path, shared_data):
    printed = run_example("adapt_shared_data.py", tmp_path, shared=shared_data)
    assert printed.startswith("flare-uda adapt --source ") and "model: " in printed
    out = tmp_path / "out"
    assert (out / "model" / "weights.pt").is_file() and (out / "report.md").is_file()
    assert len(list((out / "labels").glob("*.nii.gz"))) == 6
    assert (tmp_path / "out_inputs" / "ct_total" / "totalseg_ct_dicom").is_symlink()


def test_adapt_shared_data_puts_the_settings_over_a_recipe(tmp_path):
    import importlib.util

    import yaml

    spec = importlib.util.spec_from_file_location(
        "adapt_example", EXAMPLES / "adapt_shared_data.py"
    )
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("warm_start: true\nablation: [asit]\n")
    written = example.write_config(str(recipe), None, tmp_path / "a.yaml")
    assert yaml.safe_load(written.read_text()) == {"warm_start": True, "ablation": ["asit"]}
    written = example.write_config(str(recipe), "only_ct,asit_mdm", tmp_path / "b.yaml")
    assert yaml.safe_load(written.read_text())["ablation"] == ["only_ct", "asit_mdm"]
    recipe.write_text("warm_start: true\n")
    written = example.write_config(str(recipe), None, tmp_path / "c.yaml")
    assert yaml.safe_load(written.read_text())["ablation"] == list(example.SETTINGS)
    assert recipe.read_text() == "warm_start: true\n"  # the recipe itself is never written
    recipe.write_text("- a list\n")
    with pytest.raises(SystemExit, match="expected a YAML mapping"):
        example.write_config(str(recipe), None, tmp_path / "d.yaml")
