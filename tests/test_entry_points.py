"""Third-party plug-ins: a package with a ``flare_uda.plugins`` entry point, used from the CLI.

The package is built in a temporary folder as an installed distribution
(its module plus a ``.dist-info`` with ``entry_points.txt``, what ``pip
install`` leaves) and put on the path of a fresh ``flare-uda`` process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flare_uda.registry import PluginLoadError, discover

ROOT = Path(__file__).parents[1]

PLUGIN = textwrap.dedent(
    '''
    from dataclasses import dataclass

    import numpy as np

    from flare_uda.translation import TRANSLATORS, Translator


    @dataclass(frozen=True)
    class GainOptions:
        gain: float = 1.0


    @TRANSLATORS.register("gain")
    class GainTranslator(Translator):
        """CT -> "MR" by a gain on the z-scored image (a stand-in for a real method)."""

        config_class = GainOptions

        def _fit(self, source, target):
            pass

        def _translate(self, volume, direction):
            a = volume.array.astype(np.float32)
            return self.config.gain * (a - a.mean()) / max(float(a.std()), 1e-6)
    '''
)


def install(site: Path, module: str, source: str, entry: str) -> None:
    """Lay out ``module`` as an installed distribution with one flare_uda.plugins entry point."""
    (site / f"{module}.py").write_text(source)
    info = site / f"{module}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[flare_uda.plugins]\n{entry} = {module}\n")


def flare_uda(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    return subprocess.run(
        [sys.executable, "-m", "flare_uda", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_an_installed_plugin_runs_in_the_demo_with_options_from_yaml(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    install(site, "gain_plugin", PLUGIN, "gain")
    config = tmp_path / "plugin.yaml"
    config.write_text("translation: {name: gain, options: {gain: 2.0}}\nablation: [asit]\n")
    out = tmp_path / "run"
    done = flare_uda(site, "demo", "--preset", "tiny", "--config", str(config), "--out", str(out))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (out / "report.md").is_file()
    listed = flare_uda(site, "plugins", "translator", "--options")
    assert listed.returncode == 0 and "gain_plugin.GainTranslator" in listed.stdout
    assert "gain: 1.0" in listed.stdout
    saved = json.loads(next(out.glob("stages/translate_gain-*/model/translator.json")).read_text())
    assert (saved["name"], saved["options"]) == ("gain", {"gain": 2.0})
    # a typo in the plug-in's options fails on load, naming the option the plug-in has
    config.write_text("translation: {name: gain, options: {gian: 2.0}}\n")
    done = flare_uda(site, "demo", "--config", str(config), "--out", str(tmp_path / "x"))
    assert done.returncode == 2
    assert "unknown option of translation.options 'gian'. Did you mean 'gain'" in done.stderr
    assert not (tmp_path / "x").exists()


def test_a_broken_plugin_is_an_error_not_a_silent_skip(tmp_path, monkeypatch):
    install(tmp_path, "broken_plugin", "raise ImportError('needs torch 9')\n", "broken")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginLoadError, match=r"'broken' \(broken_plugin\): ImportError: needs"):
        discover()
    from flare_uda.translation import TRANSLATORS

    assert TRANSLATORS.get("asit")  # a known name needs no discovery
    with pytest.raises(PluginLoadError, match="needs torch 9"):
        TRANSLATORS.get("histogramm")  # an unknown one looks for plug-ins, and says what failed
