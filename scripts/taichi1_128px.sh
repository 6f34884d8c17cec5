#!/usr/bin/env bash
# docs/RESULTS.md, "taichi1 at 128 px": gen_types 1, 3, 9 trained at 128 px, and the 64 px models scaled up,
# on taichi1's test block with pose consistency (MediaPipe on every generated frame).
# On a 2-core CPU, alone: gen_type 3 at 128 px ~13 min, gen_type 9 at 128 px ~21 min; the 64 px models
# (scripts/taichi1_64px.sh, ~17 min) when they are missing; then two Evaluate runs.
set -euo pipefail
cd "$(dirname "$0")/.."
V=../shared/data/taichi1.mp4

python GenVanillaNN.py "$V" false 2 --size 128        # gen_type 3: 42,240 images (12.6 min, ~69-80 images/s)
python GenTexture.py "$V" --size 128                  # gen_type 9: on gen_type 3's 128 px frame (20.6 min)

python GenVanillaNN.py "$V" false 2                   # the 64 px models, for the "scaled up" rows
python GenGAN.py "$V" --mode bce --input image
python GenTexture.py "$V"

python Evaluate.py --video_path "$V" --gen_type 1,3,9 --size 128 --out out/eval/taichi1-128 \
    --dump out/eval/taichi1-128/taichi1-128.npz
python Evaluate.py --video_path "$V" --gen_type 3,4,9 --size 128 --gen_size 64 --out out/eval/taichi1-64-at-128
