#!/usr/bin/env bash
# Every GPU-machine measurement of docs/benchmarks.md in one run (not yet run on a GPU: budget a
# 10-minute call for it, and run it once more if a step times out).
#
# Prepare here (the GPU machine has no network and does not see ../shared):
#   echo /.gpu/ >> .git/info/exclude
#   mkdir -p .gpu && cp -r ../shared/wheels/gpu-py312 .gpu/wheels && cp -r ../shared/data/camvid .gpu/camvid
# Then run it there with `.gpu` carried along:
#   bash benchmarks/gpu_suite.sh            # results in $OUT (or ./bench-out) and on stdout
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-bench-out}"
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target .pydeps \
    .gpu/wheels/*.whl
export PYTHONPATH="$PWD/.pydeps:$PWD" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/card.txt"
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/card.txt"
git rev-parse --short HEAD 2>/dev/null | tee -a "$out/card.txt" || true

step() { echo; echo "== $*"; "$@" 2>&1 | tee "$out/$(basename "$2" .py).txt"; }
step python3 benchmarks/loss_bench.py --device cuda --repeats 20
step python3 benchmarks/train_bench.py --camvid .gpu/camvid
step python3 benchmarks/data_bench.py --root .gpu/camvid --workers 4 8 16 --batches 30
step python3 benchmarks/crf_bench.py .gpu/camvid --images 64 --processes 1,2,4,8,16
