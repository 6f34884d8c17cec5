"""Benchmark pose extraction: frames/s with one process vs all workers, detection rate, cached reload.

python bench/extract.py [video]      # default: ../shared/data/taichi1.mp4 if present, else the sample
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Work in a private data dir: the benchmark forces extractions and must not touch the user's caches.
os.environ.setdefault("DEEPDANCE_DATA", tempfile.mkdtemp(prefix="deepdance-bench-"))

import VideoSkeleton  # noqa: E402
from Skeleton import run_cli  # noqa: E402

TAICHI1 = ROOT.parent / "shared" / "data" / "taichi1.mp4"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", nargs="?", default=None, help="video to extract (default: taichi1 or the sample)")
    p.add_argument("--frame_skip", type=int, default=1, help="keep 1 frame in k (default 1)")
    p.add_argument(
        "--workers", type=int, default=VideoSkeleton.WORKERS, help=f"parallel workers (default {VideoSkeleton.WORKERS})"
    )
    p.add_argument("--reloads", type=int, default=5, help="cached reloads to time (default 5)")
    a = p.parse_args(argv)
    video = Path(a.video) if a.video else (TAICHI1 if TAICHI1.exists() else VideoSkeleton.default_video())
    print(f"video: {video}  ({os.cpu_count()} CPU cores)")
    rows = []
    for workers in sorted({1, a.workers}):
        t = time.perf_counter()
        vs = VideoSkeleton.VideoSkeleton(video, force=True, frame_skip=a.frame_skip, workers=workers, verbose=False)
        dt = time.perf_counter() - t
        n = len(vs.valid)
        rows.append((workers, n, dt, n / dt, vs.valid.mean()))
    reload = []
    for _ in range(a.reloads):
        t = time.perf_counter()
        vs = VideoSkeleton.VideoSkeleton(video, frame_skip=a.frame_skip, verbose=False)
        _ = vs.skeletons(), vs.frame(len(vs) - 1)
        reload.append(time.perf_counter() - t)
    print("| workers | frames | seconds | frames/s | detected |")
    print("|---:|---:|---:|---:|---:|")
    for w, n, dt, fps, det in rows:
        print(f"| {w} | {n} | {dt:.1f} | {fps:.1f} | {det:.1%} |")
    if len(rows) > 1:
        print(f"speed-up with {rows[-1][0]} workers: {rows[-1][3] / rows[0][3]:.2f}x")
    print(f"cached reload: median {sorted(reload)[len(reload) // 2] * 1000:.0f} ms (max {max(reload) * 1000:.0f} ms)")


if __name__ == "__main__":
    run_cli(main)
