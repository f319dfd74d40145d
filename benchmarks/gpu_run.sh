#!/usr/bin/env bash
# The GPU checks, as one script for a lent GPU machine (docs/benchmarks.md, "GPU").
# Needs the bundle from scripts/make_device_bundle.sh in .dev/ (a bare machine has
# CUDA torch but not monai/nnunetv2/SimpleITK). Writes logs and results to $OUT
# (default ./gpu_out). Parts, each under its own time limit:
#   0. the GPU-marked tests (pytest -m gpu: CUDA paths against the CPU ones);
#   1. flare-uda demo --preset cpu --device cuda (the ablation at 1000 steps/model);
#      its run folder comes back as run.tar.gz.* (finished stages without their
#      training checkpoints) so an unfinished run resumes elsewhere;
#   2. bench_registration: torch solver on the GPU vs SimpleITK on all CPU cores;
#   3. bench_inference: paper scale, ~100x400x400 input, weights trained here; the
#      torch-path rows and the floor are also timed INF_REPEAT more times (steady state);
#      then profile_inference_steps.py breaks one call of the ROI torch path into steps.
# PARTS picks the parts (default "tests demo registration inference"; e.g. PARTS=inference
# spends the whole budget on the inference benchmark).
set -u
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=20
START=$(date +%s); BUDGET=${BUDGET:-540}
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
SITE=/tmp/site; mkdir -p $SITE/SimpleITK
if [ -d .dev ] && [ -z "${NO_BUNDLE:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target $SITE .dev/whl/*.whl
  xz -T0 -dc .dev/site.tar.xz | tar -C $SITE -xf -
  xz -T0 -dc .dev/_SimpleITK.abi3.so.xz > $SITE/SimpleITK/_SimpleITK.abi3.so
fi
export PYTHONPATH=$SITE:$PWD
PY=${PY:-python3}
DEV=${DEV:-cuda}
RUN=${RUN:-/tmp/run_demo}
$PY -c "import torch, numpy, monai, nnunetv2, SimpleITK, flare_uda; print('torch', torch.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())" 2>&1 | tee "$OUT/env.txt"
echo "cpus $(nproc)" | tee -a "$OUT/env.txt"

PARTS=" ${PARTS:-tests demo registration inference} "
if [[ $PARTS == *" tests "* ]]; then
echo "== 0 GPU-marked tests ($(left) s left)"
timeout ${T_TESTS:-150} $PY -m pytest -q -m gpu -p no:cacheprovider tests > "$OUT/tests_gpu.txt" 2>&1
echo "rc=$?"; tail -5 "$OUT/tests_gpu.txt"
fi

if [[ $PARTS == *" demo "* ]]; then
echo "== 1 demo ($(left) s left)"
timeout ${T_DEMO:-280} $PY -m flare_uda demo --preset ${DEMO_PRESET:-cpu} --device "$DEV" \
  --out "$RUN" > "$OUT/demo.log" 2>&1
echo "rc=$?"; grep -a "flare-uda\]\|mean DSC\|not run\|report\|Error" "$OUT/demo.log" | tail -30
for d in "$RUN"/stages/*/; do [ -f "$d/DONE.json" ] && rm -rf "$d/work"; done
tar -C "$(dirname "$RUN")" --exclude "*/stages/phantom*" -czf - "$(basename "$RUN")" \
  | split -b 15m - "$OUT/run.tar.gz."
fi

if [[ $PARTS == *" registration "* ]]; then
echo "== 2 registration ($(left) s left)"
timeout ${T_REG:-90} $PY benchmarks/bench_registration.py --device "$DEV" --threads 1 \
  --sitk-threads "$(nproc)" --presets ${REG_PRESETS:-quick paper} --pairs ${REG_PAIRS:-3} \
  --no-real > "$OUT/bench_registration.txt" 2>&1
echo "rc=$?"; grep "^|\|torch on" "$OUT/bench_registration.txt" | tail -14
fi

if [[ $PARTS == *" inference "* ]]; then
T_INF=$(( $(left) - 10 ))
echo "== 3 inference, ${T_INF} s"
timeout $T_INF $PY benchmarks/bench_inference.py --device "$DEV" --scale ${INF_SCALE:-1} \
  --iterations ${INF_ITERS:-400} --optimizer adam --lr 0.01 --input-shape ${INF_SHAPE:-100 400 400} \
  --methods ${INF_METHODS:-nnunet_mirror,nnunet_nomirror,monai,ours_plain,ours_plain_torch,ours_roi_body_torch_s1.0,floor} \
  --repeat ${INF_REPEAT:-3} --repeat-methods ${INF_REPEATED:-ours_plain_torch,ours_roi_body_torch_s1.0,floor} \
  --work /tmp/bench_inf > "$OUT/bench_inference.txt" 2>&1
echo "rc=$?"; grep "^|\|^input\|^{\|Error" "$OUT/bench_inference.txt" | tail -20
$PY benchmarks/plot_inference.py /tmp/bench_inf/results.json "$OUT/inference_gpu.png" \
  --title "GPU, paper scale, phantom MR 100x400x400" || echo "no figure (matplotlib?)"
MODEL=$(ls -d /tmp/bench_inf/model_* 2>/dev/null | head -1)
if [ -n "$MODEL" ] && [ "$(left)" -gt 20 ]; then
  echo "== 3b step profile ($(left) s left)"
  (cd benchmarks && timeout $(( $(left) - 5 )) $PY profile_inference_steps.py --device "$DEV" \
    --model "$MODEL" --image /tmp/bench_inf/mr_t1_100.nii.gz \
    --method ${PROFILE_METHOD:-ours_roi_body_torch_s1.0}) > "$OUT/profile_steps.txt" 2>&1
  echo "rc=$?"; cat "$OUT/profile_steps.txt" | tail -20
fi
fi
ls -la "$OUT"; echo "total $(( $(date +%s) - START )) s"
