#!/usr/bin/env bash
# docs/RESULTS.md, "The built-in sample at 128 px": gen_types 1, 3, 9 at 128 px, the 64 px models scaled up,
# and the 128 px models halved to 64 px. On a 2-core CPU, one after another: gen_type 3 at 128 px 11.9 min,
# gen_type 9 at 128 px 19.2 min; the 64 px models of scripts/sample_64px.sh (~16 min) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

python GenVanillaNN.py --size 128                     # gen_type 3 on the sample
python GenTexture.py --size 128                       # gen_type 9, the 128 px default
python GenVanillaNN.py
python GenTexture.py

python Evaluate.py --gen_type 1,3,9 --size 128 --out out/eval/sample-128 --dump out/eval/sample-128.npz
python Evaluate.py --gen_type 3,9 --size 128 --gen_size 64 --out out/eval/sample-64-at-128
python Evaluate.py --gen_type 3,9 --size 64 --gen_size 128 --out out/eval/sample-128-at-64
