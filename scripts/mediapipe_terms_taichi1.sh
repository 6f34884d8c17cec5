#!/usr/bin/env bash
# docs/EXPERIMENTS.md, "MediaPipe's nets as loss terms": gen_type 3 trained with the pose-net feature term on taichi1,
# scored on the test block. Each training goes into a data folder of its own (DEEPDANCE_DATA), so the default
# command's model elsewhere is untouched. On a 2-core CPU shared with other work: 64 px ~25 min, 128 px ~35 min.
set -euo pipefail
cd "$(dirname "$0")/.."
V=../shared/data/taichi1.mp4
export DEEPDANCE_DATA=${DEEPDANCE_DATA:-out/exp-mediapipe-terms/data}

python -m bench.perceptual --video taichi1 --size 64                       # what each term rates blur and shift at
python GenVanillaNN.py "$V" false 2 --lambda_feat 1                        # 64 px, features at weight 1
python Evaluate.py --video_path "$V" --gen_type 1,3 --out out/exp-mediapipe-terms/eval-64
python GenVanillaNN.py "$V" false 2 --size 128 --lambda_feat 0.5           # 128 px, features at weight 0.5
python Evaluate.py --video_path "$V" --gen_type 1,3 --size 128 --out out/exp-mediapipe-terms/eval-128
