"""Benchmark pose extraction: frames/s with one process vs all workers, detection rate, the stored square, the
target report's verdict, cached reload; with --baseline, this checkout against another one, back to back.

python -m bench.extract [video]                      # default: ../shared/data/taichi1.mp4 if present, else the sample
python -m bench.extract --baseline /tmp/old --rounds 2   # ABBA runs of both checkouts, 2 workers each

Wall-clock speed depends on what else the machine runs: each run also reports the CPU seconds its extraction
processes used (nearly independent of load) and the load average before and after.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Work in a private data dir: the benchmark forces extractions and must not touch the user's caches.
os.environ.setdefault("DEEPDANCE_DATA", tempfile.mkdtemp(prefix="deepdance-bench-"))

from deepdance import cache
from deepdance.cli import UserError, run_cli
from deepdance.files import ROOT

TAICHI1 = ROOT.parent / "shared" / "data" / "taichi1.mp4"

# One timed extraction by the checkout at sys.argv[1], in a fresh process and data dir: one JSON line.
RUN_ONE = """
import json, os, sys, tempfile, time
root, video, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.environ["DEEPDANCE_DATA"] = tempfile.mkdtemp(prefix="deepdance-bench-")
sys.path.insert(0, root)
import VideoSkeleton
if __name__ == "__main__":
    load = os.getloadavg()[0]
    t = time.perf_counter()
    vs = VideoSkeleton.VideoSkeleton(video, force=True, workers=workers, verbose=False)
    dt = time.perf_counter() - t
    cpu = os.times()
    print(json.dumps({"seconds": dt, "frames": int(len(vs.valid)), "detected": int(vs.valid.sum()),
                      "cpu_workers": cpu.children_user + cpu.children_system, "cpu_main": cpu.user + cpu.system,
                      "load": [load, os.getloadavg()[0]]}))
"""


def run_checkout(root, video, workers):
    """Time one forced extraction by the checkout at `root` (a subprocess): the RUN_ONE dict."""
    proc = subprocess.run([sys.executable, "-c", RUN_ONE, str(root), str(video), str(workers)], capture_output=True,
                          text=True, cwd=root)  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise UserError(f"the extraction by {root} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(lines[-1])


def compare(video, baseline, workers, rounds):
    """ABBA rounds of this checkout and `baseline`; prints each run, the best and the mean."""
    print(f"back to back, {workers} workers, {rounds} ABBA rounds: this checkout (new) vs {baseline} (old)")
    print("| run | checkout | seconds | frames/s | detected | worker CPU s | main CPU s | load before -> after |")
    print("|---:|---|---:|---:|---:|---:|---:|---|")
    runs = {"new": [], "old": []}
    order = [name for _ in range(rounds) for name in ("new", "old", "old", "new")][: 2 * rounds]
    for i, name in enumerate(order, 1):
        r = run_checkout(ROOT if name == "new" else baseline, video, workers)
        runs[name].append(r)
        print(f"| {i} | {name} | {r['seconds']:.1f} | {r['frames'] / r['seconds']:.1f} | "
              f"{r['detected']}/{r['frames']} | {r['cpu_workers']:.1f} | {r['cpu_main']:.1f} | "
              f"{r['load'][0]:.1f} -> {r['load'][1]:.1f} |")  # fmt: skip
    n = runs["new"][0]["frames"]
    fps = {k: [n / r["seconds"] for r in v] for k, v in runs.items()}
    cpu = {k: sum(r["cpu_workers"] + r["cpu_main"] for r in v) / len(v) for k, v in runs.items()}
    # The best run is the one the other jobs disturbed least; the mean, what to expect on this machine now.
    print(f"frames/s best: new {max(fps['new']):.1f}, old {max(fps['old']):.1f}; mean: new "
          f"{sum(fps['new']) / len(fps['new']):.1f}, old {sum(fps['old']) / len(fps['old']):.1f}; mean CPU seconds: "
          f"new {cpu['new']:.1f}, old {cpu['old']:.1f} (ratio {cpu['new'] / cpu['old']:.3f})")  # fmt: skip


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", nargs="?", default=None, help="video to extract (default: taichi1 or the sample)")
    p.add_argument("--frame_skip", type=int, default=1, help="keep 1 frame in k (default 1)")
    p.add_argument("--workers", type=int, default=cache.WORKERS, help=f"parallel workers (default {cache.WORKERS})")
    p.add_argument("--reloads", type=int, default=5, help="cached reloads to time (default 5)")
    p.add_argument("--baseline", default=None, help="another checkout to compare with, back to back (default: none)")
    p.add_argument("--rounds", type=int, default=2, help="with --baseline: runs of each checkout (default 2)")
    a = p.parse_args(argv)
    video = Path(a.video) if a.video else (TAICHI1 if TAICHI1.exists() else cache.default_video())
    print(f"video: {video}  ({os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f})")
    if a.baseline:
        if not (Path(a.baseline) / "VideoSkeleton.py").is_file():
            raise UserError(f"--baseline {a.baseline} is not a DeepDance checkout (no VideoSkeleton.py there)")
        compare(video.resolve(), Path(a.baseline).resolve(), max(1, a.workers), max(1, a.rounds))
        return
    rows = []
    for workers in sorted({1, a.workers}):
        t = time.perf_counter()
        vs = cache.VideoSkeleton(
            video, force=True, frame_skip=a.frame_skip, workers=workers, verbose=False, report=False
        )
        dt = time.perf_counter() - t
        n = len(vs.valid)
        rows.append((workers, n, dt, n / dt, vs.valid.mean(), int(vs.valid.sum())))
    reload = []
    for _ in range(a.reloads):
        t = time.perf_counter()
        vs = cache.VideoSkeleton(video, frame_skip=a.frame_skip, verbose=False)
        _ = vs.skeletons(), vs.frame(len(vs) - 1)
        reload.append(time.perf_counter() - t)
    print("| workers | frames | seconds | frames/s | detected |")
    print("|---:|---:|---:|---:|---:|")
    for w, n, dt, fps, det, k in rows:
        print(f"| {w} | {n} | {dt:.1f} | {fps:.1f} | {det:.1%} ({k}/{n}) |")
    if len(rows) > 1:
        print(f"speed-up with {rows[-1][0]} workers: {rows[-1][3] / rows[0][3]:.2f}x")
    print(f"cached reload: median {sorted(reload)[len(reload) // 2] * 1000:.0f} ms (max {max(reload) * 1000:.0f} ms)")
    x0, y0, side = vs.crop
    xy = vs.skeletons()  # (N, 13, 2) in [0, 1] of the square, frames with a person
    inside = ((xy >= 0.03) & (xy <= 0.97)).all(axis=(1, 2)).mean()
    print(f"stored square: {side} px at ({x0}, {y0}), padding {vs.padding}; whole body inside [0.03, 0.97] in "
          f"{inside:.1%} of the frames with a person")  # fmt: skip
    print(f"target report: {', '.join(p['code'] for p in vs.report['problems']) or 'no problems'}")
    print(f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    run_cli(main)
