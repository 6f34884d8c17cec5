#!/usr/bin/env bash
# docs/RESULTS.md, "GAN training throughput": iterations/s of gen_types 4-8 at 64 px on synthetic batches, with
# 2 threads and with one. On a 2-core CPU: a few minutes. Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m bench.gan --only throughput
OMP_NUM_THREADS=1 python -m bench.gan --only throughput     # the one-thread column
