#!/usr/bin/env bash
# docs/RESULTS.md, "The built-in sample at 64 px": gen_types 1, 3, 4, 9 on the sample's test block (90 frames);
# also writes docs/eval_strip.png and docs/eval_chart.png. No footage needed: the sample is rendered on first use.
# On a 2-core CPU, one after another: gen_type 3 4.9 min, gen_type 4 3.8 min more, gen_type 9 6.8 min.
# The trainers start over (true / --force): drop those to keep models already trained.
set -euo pipefail
cd "$(dirname "$0")/.."

python GenVanillaNN.py data/sample/target.mp4 true 2          # gen_type 3 (101 epochs of the 440 training frames)
python GenGAN.py --mode bce --input image --force             # gen_type 4, from gen_type 3
python GenTexture.py --force                                  # gen_type 9, on gen_type 3

python Evaluate.py --gen_type 1,3,4,9 --figures docs/ --out out/eval/sample-64 --dump out/eval/sample.npz
python -m bench.verify_dump out/eval/sample.npz
