#!/usr/bin/env bash
# docs/RESULTS.md, "Pose extraction": taichi1's 1300 frames with 1 worker, then 2; detection rate, the stored
# square, the target report's verdict, cached reload. On a 2-core CPU: about a minute (39 s + 21 s + reloads).
# Run it on a quiet machine: its frames/s depend on what else runs (the CPU seconds it prints do not).
set -euo pipefail
cd "$(dirname "$0")/.."

python -m bench.extract ../shared/data/taichi1.mp4
# Against another checkout, back to back (ABBA order, 2 workers): see docs/EXPERIMENTS.md
#   python -m bench.extract --baseline /path/to/previous/checkout --rounds 2
