#!/usr/bin/env bash
# Create .venv and install flare_uda with its dependencies.
#
# CPU machines (default): torch is pinned to 2.13.0, the CPU build, and that pin
# is passed as a pip constraint so that nnunetv2 -> timm -> torchvision cannot
# drag torch up to a multi-GB CUDA release.
# GPU machines: FLARE_UDA_GPU=1 bash scripts/install.sh  (lets pip pick the
# CUDA build of torch that your platform resolves to, plus nvidia-ml-py for the
# FLARE GPU memory-time measurement).
# Both install the `distributed` extra (Ray, for the executor "ray"); the
# constraint keeps torch at the CPU build on CPU machines with it too.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
start=$(date +%s)
"$PYTHON" -m venv "$VENV"
if [ "${FLARE_UDA_GPU:-0}" = "1" ]; then
    "$VENV/bin/pip" install -q -e '.[dev,gpu,distributed]'
else
    "$VENV/bin/pip" install -q torch==2.13.0
    "$VENV/bin/pip" install -q -c constraints-cpu.txt -e '.[dev,distributed]'
fi
# torchvision arrives through nnunetv2 -> timm; nothing flare_uda uses imports it.
"$VENV/bin/python" -c "import flare_uda, torch, monai, nnunetv2, SimpleITK, ray; print('flare_uda', flare_uda.__version__, '| torch', torch.__version__, '| ray', ray.__version__)"
echo "installed in $(( $(date +%s) - start )) s into $VENV ($(du -sh "$VENV" | cut -f1))"
