"""Efficiency measurement of callables and commands; ``flare-uda efficiency``."""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from flare_uda.cli import main
from flare_uda.metrics.efficiency import format_report, measure

NO_GPU = not torch.cuda.is_available()
ALLOC = "import numpy, time; a = numpy.ones(100 * 2**20 // 8); time.sleep(0.5)"


def test_callable_time_memory_and_result():
    def work():
        a = np.ones(150 * 2**20 // 8)  # 150 MB, touched
        time.sleep(0.4)
        return float(a[-1])

    baseline = measure(lambda: time.sleep(0.3))
    report = measure(work, interval=0.05)
    assert report.result == 1.0
    assert report.wall_time_s >= 0.4
    assert report.samples >= 5
    assert report.peak_rss_mb > baseline.peak_rss_mb + 100
    # area = sum of samples * interval: between (min RSS) and (peak RSS) times the sample time
    assert report.cpu_memory_area_mb_s <= report.peak_rss_mb * report.samples * 0.05 + 1e-6
    assert report.cpu_memory_area_mb_s > 0
    assert report.exit_code is None


@pytest.mark.skipif(not NO_GPU, reason="checks the no-GPU case")
def test_gpu_fields_are_absent_without_gpu():
    report = measure(lambda: None)
    assert report.gpu_memory_area_mb_s is None and report.torch_max_allocated_mb is None
    assert report.gpu_peak_mb is None
    assert not any(k.startswith(("gpu", "torch")) for k in report.as_dict())


@pytest.mark.gpu
def test_gpu_fields_on_a_gpu():
    def work():
        x = torch.ones(64 * 2**20 // 4, device="cuda")
        time.sleep(0.3)
        return x.sum().item()

    report = measure(work)
    assert report.torch_max_allocated_mb >= 64
    if report.gpu_memory_area_mb_s is not None:  # NVML importable
        assert report.gpu_memory_area_mb_s > 0


def test_command_memory_and_exit_code():
    report = measure([sys.executable, "-c", ALLOC])
    assert report.exit_code == 0
    assert report.peak_rss_mb > 100
    assert report.wall_time_s >= 0.5
    failed = measure([sys.executable, "-c", "import sys; sys.exit(3)"])
    assert failed.exit_code == 3


def test_error_paths():
    with pytest.raises(ValueError, match="interval must be"):
        measure(lambda: None, interval=0)
    with pytest.raises(TypeError, match="non-empty list of str"):
        measure("echo hi")
    with pytest.raises(TypeError, match="non-empty list of str"):
        measure([])
    with pytest.raises(FileNotFoundError, match="command not found"):
        measure(["surely-not-a-command-flare-uda"])


def test_cli_prints_writes_json_and_returns_the_exit_code(tmp_path):
    out = tmp_path / "eff.json"
    cmd = [sys.executable, "-c", "import sys; sys.exit(4)"]
    result = CliRunner().invoke(main, ["efficiency", "--json", str(out), "--", *cmd])
    assert result.exit_code == 4
    assert "wall_time_s" in result.output and "peak_rss_mb" in result.output
    data = json.loads(out.read_text())
    assert data["command"] == cmd and data["exit_code"] == 4
    assert "gpu_memory_area_mb_s" not in data or not NO_GPU


def test_format_report_is_a_markdown_table():
    text = format_report(measure(lambda: None))
    assert text.splitlines()[0] == "| metric | value |"
    assert "cpu_memory_area_mb_s" in text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernel peak RSS is Linux-only")
def test_peak_shorter_than_the_interval_is_caught():
    import psutil

    before = psutil.Process().memory_info().rss / 2**20
    report = measure(lambda: float(np.ones(200 * 2**20 // 8).sum()), interval=5.0)
    assert report.peak_rss_mb > before + 150
