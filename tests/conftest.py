"""Shared fixtures: small seeded volumes, the real-data folder, single-threaded torch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(
    os.environ.get("FLARE_UDA_SHARED_DATA", Path(__file__).parents[1] / ".." / "shared" / "data")
)


def pytest_configure(config: pytest.Config) -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def shared_data() -> Path:
    """The real public volumes folder; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA.resolve()


@pytest.fixture(scope="session")
def ray_runtime():
    """One local Ray runtime (2 CPUs) shared by every test that needs Ray; skips without Ray.

    Its workers import this checkout and the test modules (functions defined in
    tests pickle by reference), so both go on their ``PYTHONPATH``.
    """
    ray = pytest.importorskip("ray")
    from flare_uda.ray_executor import RayOptions, connect

    here = Path(__file__).parent
    paths = [str(here), str(here.parent), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    connect(RayOptions(workers=2, object_store_mb=128))
    yield ray
    ray.shutdown()


TINY_DEMO = ["demo", "--preset", "tiny", "--quiet", "--device", "cpu"]
"""The demo command of :func:`tiny_demo_run` (CPU: bit-identical reruns)."""


@pytest.fixture(scope="session")
def tiny_demo_run(tmp_path_factory) -> Path:
    """One uninterrupted ``flare-uda demo --preset tiny`` run, shared by the tests reading it."""
    from click.testing import CliRunner

    from flare_uda.cli import main

    out = tmp_path_factory.mktemp("tiny_demo") / "run"
    res = CliRunner().invoke(main, [*TINY_DEMO, "--out", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return out


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)
