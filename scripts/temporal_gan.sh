#!/usr/bin/env bash
# docs/RESULTS.md, "Temporal GAN: flicker": gen_type 8 against gen_type 4 on continuous footage (taichi2, and the
# sample's existing checkpoints). Trains what is missing for 8 minutes each (gen_type 3, then 4 and 8 from it):
# on a 2-core CPU up to ~25 min for taichi2, as much again for the sample when it has no models.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m bench.gan --only temporal --taichi2 --budget 8
