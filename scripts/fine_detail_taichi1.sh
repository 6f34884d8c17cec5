#!/usr/bin/env bash
# docs/RESULTS.md, "Fine detail at 64 px": gen_type 9 on taichi1 with the MediaPipe feature term and with higher
# painting costs, each variant in a data folder of its own (DEEPDANCE_DATA) on one gen_type 3 base, all scored on
# the test block, then side by side. The bilinear rows need the commit before the bicubic default (58260b7).
# Each gen_type 9 run: ~8 min alone on the 2-core CPU, ~25 min with three at once.
set -euo pipefail
cd "$(dirname "$0")/.."
V=../shared/data/taichi1.mp4
R=out/exp-fine-detail

DEEPDANCE_DATA=$R/base python GenVanillaNN.py "$V" false 2                  # gen_type 3, the base of every run
KEY=$(ls "$R/base/checkpoints")                                             # taichi1-<hash>: the cache's key
DEEPDANCE_DATA=$R/base python GenTexture.py "$V"                            # gen_type 9's default
DEEPDANCE_DATA=$R/base python Evaluate.py --video_path "$V" --gen_type 1,3,9 --out $R/eval-base --dump $R/base.npz
for run in "feat2:--lambda_feat 2" "mask1:--lambda_mask 1" "mask2:--lambda_mask 2"; do
  name=${run%%:*}
  mkdir -p "$R/$name/checkpoints/$KEY"
  cp -r "$R/base/cache" "$R/$name/"
  cp -r "$R/base/checkpoints/$KEY/vanilla-image-64" "$R/$name/checkpoints/$KEY/"
  # shellcheck disable=SC2086
  DEEPDANCE_DATA=$R/$name python GenTexture.py "$V" ${run#*:}
  DEEPDANCE_DATA=$R/$name python Evaluate.py --video_path "$V" --gen_type 9 --out "$R/eval-$name" --dump "$R/$name.npz"
done
python -m bench.compare "gen_type 3=$R/base.npz:3" "9 default=$R/base.npz:9" "9 feat 2=$R/feat2.npz:9" \
    "9 mask 1=$R/mask1.npz:9" "9 mask 2=$R/mask2.npz:9" --strip docs/fine_detail_taichi1_64.png
