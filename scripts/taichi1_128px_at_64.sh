#!/usr/bin/env bash
# docs/RESULTS.md, "Halved: 128 px models shown at 64 px": each frame made at 128 px and halved (bilinear), scored on
# taichi1's 64 px test block next to the 64 px models.
# Needs the models of scripts/taichi1_64px.sh and scripts/taichi1_128px.sh (~50 min on a 2-core CPU if none
# exist; the trainers below skip what is trained); the Evaluate runs themselves take a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
V=../shared/data/taichi1.mp4

python GenVanillaNN.py "$V" false 2
python GenTexture.py "$V"
python GenVanillaNN.py "$V" false 2 --size 128
python GenTexture.py "$V" --size 128

python Evaluate.py --video_path "$V" --gen_type 3,9 --out out/eval/taichi1-64                  # the 64 px rows
python Evaluate.py --video_path "$V" --gen_type 3,9 --size 64 --gen_size 128 --out out/eval/taichi1-128-at-64
