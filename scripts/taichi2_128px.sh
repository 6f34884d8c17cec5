#!/usr/bin/env bash
# docs/RESULTS.md, "taichi2 as the target", 128 px: gen_types 1, 3, 9 at 128 px and the 64 px models scaled up,
# with pose consistency. On a 2-core CPU: gen_type 3 at 128 px 15.3 min and gen_type 9 17.0 min (measured while
# other work shared the CPU), plus the 64 px models of scripts/taichi2_64px.sh when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
V=../shared/data/taichi2.mp4

python GenVanillaNN.py "$V" false 2 --size 128
python GenTexture.py "$V" --size 128
python GenVanillaNN.py "$V" false 2
python GenTexture.py "$V"

python Evaluate.py --video_path "$V" --gen_type 1,3,9 --size 128 --out out/eval/taichi2-128
python Evaluate.py --video_path "$V" --gen_type 3,9 --size 128 --gen_size 64 --out out/eval/taichi2-64-at-128
