#!/usr/bin/env bash
# docs/RESULTS.md, "taichi2 as the target", 64 px: gen_types 1, 3, 9 on taichi2's own test block, and its
# 128 px models halved. On a 2-core CPU: about as long as taichi1's (scripts/taichi1_64px.sh: ~5 + 7.5 min),
# plus the 128 px models of scripts/taichi2_128px.sh (~32 min) for the halved rows.
set -euo pipefail
cd "$(dirname "$0")/.."
V=../shared/data/taichi2.mp4

python GenVanillaNN.py "$V" false 2
python GenTexture.py "$V"
python Evaluate.py --video_path "$V" --gen_type 1,3,9 --out out/eval/taichi2-64 --dump out/eval/taichi2/taichi2.npz

python GenVanillaNN.py "$V" false 2 --size 128
python GenTexture.py "$V" --size 128
python Evaluate.py --video_path "$V" --gen_type 3,9 --size 64 --gen_size 128 --out out/eval/taichi2-128-at-64
