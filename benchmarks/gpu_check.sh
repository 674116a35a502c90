#!/usr/bin/env bash
# One prepared GPU session (a lent H100/H200 has minutes, not hours): the `gpu`-marked tests,
# then benchmarks/reconcile.py on the CUDA backend at rate 0.02, n = 10^6 — decoder speed,
# plain decoding (flooding and layered) and decoding with disclosure. Every stage has its own
# time limit and writes its log under $OUT (default /tmp/cvqkd-gpu), so one failing stage
# costs only its own minutes.
#
#   OUT=/tmp/gpu bash benchmarks/gpu_check.sh          # on the GPU machine, from the repo root
#
# A lent machine may get the working tree with an older checkout's git metadata: pass the
# commit the tree is, e.g. `CVQKD_COMMIT=6187829 OUT=$OUT bash benchmarks/gpu_check.sh`
# (benchmarks/provenance.py prints it instead of `git rev-parse`).
#
# Needs python3 with numpy, numba, cupy and pytest (the `[gpu]` and `dev` extras); runs from
# the source tree (PYTHONPATH=src), so no install step.
set -u
OUT=${OUT:-/tmp/cvqkd-gpu}
PY=${PYTHON:-python3}
FRAMES=${FRAMES:-96}
BACKEND=${BACKEND:-cuda}  # numba: a dry run of this script on a machine without a GPU
N=${N:-1000000}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD" PYTHONUNBUFFERED=1
stage() {  # stage NAME SECONDS CMD...
    local name=$1 secs=$2
    shift 2
    echo "### $name ($(date -u +%T))" | tee -a "$OUT/summary.txt"
    timeout "$secs" "$@" >"$OUT/$name.txt" 2>&1
    echo "### $name: exit $? ($(date -u +%T))" | tee -a "$OUT/summary.txt"
    tail -n 30 "$OUT/$name.txt"
}
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv \
        | tee "$OUT/gpu.txt"
fi
$PY -c "import numba, numpy; print('numba', numba.__version__, 'numpy', numpy.__version__)" \
    | tee -a "$OUT/gpu.txt"
$PY -c "import cupy; print('cupy', cupy.__version__)" | tee -a "$OUT/gpu.txt"
BENCH=(benchmarks/reconcile.py --backend "$BACKEND" --rates 0.02 --n "$N" --batch 64)
stage tests 180 $PY -m pytest -o addopts= -p no:cacheprovider -m gpu -q -rs \
    tests/unit/test_decoder_cuda.py tests/unit/test_privacy.py
stage speed 120 $PY "${BENCH[@]}" --skip-family
stage disclosure_layered 150 $PY "${BENCH[@]}" --skip-speed --schedule layered --beta 0.95 \
    --frames "$FRAMES" --target-errors "$FRAMES" \
    --reveal-step 100 --max-reveal 800 --first-iter 150 --retry-iter 150
stage disclosure_flooding 150 $PY "${BENCH[@]}" --skip-speed --schedule flooding --beta 0.95 \
    --frames "$FRAMES" --target-errors "$FRAMES" \
    --reveal-step 100 --max-reveal 800 --first-iter 250 --retry-iter 200
stage plain_flooding 100 $PY "${BENCH[@]}" --skip-speed --schedule flooding --beta 0.93 \
    --frames 64 --target-errors 64
