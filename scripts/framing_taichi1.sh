#!/usr/bin/env bash
# docs/RESULTS.md, "Framing: person-centred square against centre crop": both framings scored in the source
# video's own pixels. On a 2-core CPU: gen_type 3 trained once per framing (~5 min each; 4.4 min alone for the
# centre crop), the second extraction (~20 s), then the bench (a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
V=../shared/data/taichi1.mp4

python GenVanillaNN.py "$V" false 2                       # the person-centred square (default)
python GenVanillaNN.py "$V" false 2 --framing center      # the course's centre crop, same blocks
python -m bench.framing                                   # taichi1, gen_types 1 and 3, 64 px
python -m bench.framing --gen_type 1 --size 256
python -m bench.framing --video sample --gen_type 1       # the built-in sample
