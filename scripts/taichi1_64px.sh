#!/usr/bin/env bash
# docs/RESULTS.md, "taichi1 at 64 px": gen_types 1, 3, 4, 9 on taichi1's test block (194 frames).
# On a 2-core CPU, each training alone: gen_type 3 ~5 min, gen_type 4 ~5 min more, gen_type 9 ~7.5 min,
# plus the pose extraction on first use (~20 s) and Evaluate. A gen_type already trained is reported and kept:
# `true` instead of `false` (GenVanillaNN.py) or --force (GenGAN.py, GenTexture.py) to train it again.
set -euo pipefail
cd "$(dirname "$0")/.."
V=../shared/data/taichi1.mp4

python GenVanillaNN.py "$V" false 2                   # gen_type 3: 42,240 images, 44 epochs (5.1 min)
python GenGAN.py "$V" --mode bce --input image        # gen_type 4: from gen_type 3, 13,440 images (4.7 min)
python GenTexture.py "$V"                             # gen_type 9: on gen_type 3, 33,600 images (7.3 min)

python Evaluate.py --video_path "$V" --gen_type 1,3,4,9 --out out/eval/taichi1-64 \
    --dump out/eval/taichi1/taichi1.npz
python -m bench.verify_dump out/eval/taichi1/taichi1.npz   # every number again, with an independent SSIM
