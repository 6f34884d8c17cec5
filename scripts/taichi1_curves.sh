#!/usr/bin/env bash
# docs/RESULTS.md, "Quality against training time": read from the default runs' own train_log.csv
# (selection block; wall minutes as logged). Needs gen_types 3, 4, 9 at 64 and 128 px on taichi1:
# on a 2-core CPU, one at a time, ~5 + 5 + 7.5 min at 64 px and ~13 + 13.5 + 21 min at 128 px.
set -euo pipefail
cd "$(dirname "$0")/.."
V=../shared/data/taichi1.mp4

for size in 64 128; do
    python GenVanillaNN.py "$V" false 2 --size "$size"
    python GenGAN.py "$V" --mode bce --input image --size "$size"
    python GenTexture.py "$V" --size "$size"
done
python -m bench.curves --at 1 2 5 10
