#!/usr/bin/env bash
# docs/RESULTS.md, "Several users at once": 4 default demos at once on a fresh data folder, as threads of one
# process (as Streamlit sessions) and as processes; every file left is read back. On a 2-core CPU: ~3 min.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m bench.load --runs 4
