#!/usr/bin/env bash
# docs/RESULTS.md, "Motion transfer": DanceDemo's frames/s end to end (gen_type 1, source poses included, target
# cached) and the jitter of plain against coherent nearest neighbours, taichi2 -> taichi1 and the sample.
# On a 2-core CPU: a few minutes (the taichi2 -> taichi1 transfer itself ~24 s).
set -euo pipefail
cd "$(dirname "$0")/.."

python -m bench.demo                    # taichi2 -> taichi1 (needs ../shared/data) and the sample
# the transfer it times, as a user runs it:
#   python DanceDemo.py --gen_type 1 --video_path ../shared/data/taichi1.mp4 --source ../shared/data/taichi2.mp4
