"""oneDNN's ISA ceiling on AMX CPUs (flare_uda/_onednn.py), and a bf16 step that finishes."""

import subprocess
import sys

import pytest

from flare_uda import _onednn

AMX = frozenset({"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"})


def test_amx_cpu_gets_the_avx512_bf16_ceiling():
    env: dict[str, str] = {}
    note = _onednn.cap_isa_on_amx(env, AMX)
    assert env == {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}
    assert "FLARE_UDA_ALLOW_AMX=1" in note


@pytest.mark.parametrize(
    ("env", "flags"),
    [
        ({}, frozenset({"avx512f", "avx512_bf16"})),  # no AMX: nothing to cap
        ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, AMX),  # the user's ceiling wins
        ({"DNNL_MAX_CPU_ISA": "AVX512_CORE"}, AMX),  # also under its older name
        ({"FLARE_UDA_ALLOW_AMX": "1"}, AMX),  # opted out
    ],
)
def test_ceiling_left_alone(env, flags):
    before = dict(env)
    assert _onednn.cap_isa_on_amx(env, flags) is None
    assert env == before


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 amx_tile\n\nprocessor\t: 1\n")
    assert _onednn.cpu_flags(info) == {"fpu", "sse2", "amx_tile"}
    assert _onednn.cpu_flags(tmp_path / "absent") == frozenset()


STEP = """
import torch, flare_uda
from flare_uda.segmentation.config import get_preset
from flare_uda.segmentation.networks import build_network
cfg = get_preset("quick2d")
topo = cfg.network.topology(cfg.patch_size, cfg.spacing)
net = build_network(cfg.network, topo, 1, 14).to(memory_format=torch.channels_last_3d)
x = torch.randn(8, 1, *cfg.patch_size).contiguous(memory_format=torch.channels_last_3d)
for _ in range(2):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
    sum(o.float().mean() for o in out).backward()
print("ok")
"""


def test_bf16_training_step_of_the_quick_net_finishes():
    """The step that hung or segfaulted on an AMX VM before the ceiling (2 steps, ~1 s)."""
    from flare_uda.segmentation.precision import cpu_supports_bf16

    if not cpu_supports_bf16():
        pytest.skip("this CPU has no native bf16: training runs in fp32")
    done = subprocess.run(
        [sys.executable, "-c", STEP], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.strip() == "ok"
