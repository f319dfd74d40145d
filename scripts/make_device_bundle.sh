#!/usr/bin/env bash
# Packs what a bare GPU machine (Python 3.12 + CUDA torch, no network) lacks to run
# flare_uda and its peers into .dev/ (git-ignored): pure-Python packages from this
# checkout's .venv (and pytest) as one xz tarball, cp312 wheels of the compiled ones,
# SimpleITK's abi3 library xz-compressed. Used by benchmarks/gpu_run.sh. Run from the repository root.
set -euo pipefail
SP=.venv/lib/python3.11/site-packages
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
rm -rf .dev && mkdir -p .dev/whl "$STAGE/SimpleITK"
grep -qx "/.dev/" .git/info/exclude 2>/dev/null || echo "/.dev/" >> .git/info/exclude
# the libraries, and pytest for the GPU-marked tests
for p in monai nnunetv2 batchgenerators batchgeneratorsv2 acvl_utils \
         dynamic_network_architectures nibabel yacs \
         pytest _pytest pluggy iniconfig pygments packaging; do
  cp -r "$SP/$p" "$STAGE/"
  cp -r "$SP"/"$p"-*.dist-info "$STAGE/" 2>/dev/null || true
done
cp "$SP"/py.py "$STAGE/"
cp "$SP"/SimpleITK/*.py "$SP"/SimpleITK/py.typed "$STAGE/SimpleITK/"
find "$STAGE" \( -name __pycache__ -o -name tests \) -prune -exec rm -rf {} +
tar -C "$STAGE" -cf - . | xz -T0 -9 > .dev/site.tar.xz
xz -T0 -9 -c "$SP/SimpleITK/_SimpleITK.abi3.so" > .dev/_SimpleITK.abi3.so.xz
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 -d .dev/whl blosc2==4.14.1 ndindex==1.10.1 numexpr==2.14.2
du -sh .dev
