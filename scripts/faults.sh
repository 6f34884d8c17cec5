#!/usr/bin/env bash
# docs/reliability.md, "Storage faults": every storage fault users hit, on small tmpfs mounts (full, nearly full,
# read-only). Needs root to mount them (skipped otherwise). On a 2-core CPU: about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo "$(command -v python)" -m bench.faults
