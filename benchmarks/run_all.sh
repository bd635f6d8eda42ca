#!/usr/bin/env bash
# Runs every CPU benchmark in turn (about 15 minutes on 2 cores) and prints what BENCHMARKS.md records.
# Run on a quiet machine: other load on the cores changes every figure.  bash benchmarks/run_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
echo "# $(date -u +%F) $(nproc) cores, $(python -c 'import torch; print("torch", torch.__version__)')"
python benchmarks/bench_model.py --pamr-only --threads 2
python benchmarks/bench_model.py --backbone resnet38 --size 321 --batch 2 --threads 2 --steps 3 --flops
python benchmarks/bench_train.py --threads 1 2
python benchmarks/bench_loader.py
python benchmarks/bench_crf.py --images 16 --processes 1 2
python benchmarks/bench_eval.py --workers 1 0
python benchmarks/bench_inference.py --backbone mini --images 3
python benchmarks/bench_inference.py --backbone resnet38 --images 1 --warmup 0
