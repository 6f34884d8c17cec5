#!/usr/bin/env bash
# docs/RESULTS.md, "Memory on long sources": peak resident memory of the extraction and of the demo on 1080p 25 fps
# clips of 1, 4 and 10 minutes. On a 2-core CPU the 10-minute clip is long (~3.5 GB of frame cache).
set -euo pipefail
cd "$(dirname "$0")/.."

python -m bench.memory --minutes 1 4
python -m bench.memory --minutes 10
