#!/usr/bin/env bash
# docs/RESULTS.md, "Live": each clip played at 25 fps in real time, headless, no recording; targets cached first;
# gen_type 3 = a 64 px checkpoint trained for 2 epochs (its speed does not depend on its quality).
# On a 2-core CPU: a few minutes (every clip plays in real time: 16 s for the sample, 30 s for taichi2).
# Figures depend on the machine's load: the bench prints the load average next to them.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m bench.live --train_epochs 2
