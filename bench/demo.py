"""Benchmark the motion transfer: end-to-end frames/s of DanceDemo.py (gen_type 1, source extraction
included, target cached) and the jitter of plain vs temporally coherent nearest neighbours.

    python -m bench.demo                  # taichi2 -> taichi1 (when ../shared/data has them) and the sample
    python -m bench.demo --cases sample
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Work in a private data dir: the benchmark deletes the source's cache and must not touch the user's.
os.environ.setdefault("DEEPDANCE_DATA", tempfile.mkdtemp(prefix="deepdance-bench-"))

from deepdance import cache, files, metrics, nearest, transfer, video
from deepdance.cli import UserError, run_cli
from deepdance.files import ROOT
from deepdance.skeleton import body_height

import numpy as np

SHARED = ROOT.parent / "shared" / "data"
CASES = ("taichi", "sample")


def clips(case):
    """(target, source) videos of a case, or None when its footage is absent."""
    if case == "taichi":
        pair = SHARED / "taichi1.mp4", SHARED / "taichi2.mp4"
        return pair if all(p.exists() for p in pair) else None
    from deepdance import mannequin

    return mannequin.ensure_sample("target"), mannequin.ensure_sample("source")


def end_to_end(target, source, out):
    """Time `python DanceDemo.py --gen_type 1 ...` with the source uncached: (wall s, CPU s, frames, last line)."""
    cache.VideoSkeleton(target, verbose=False)  # the target is cached, as in the measure
    source_cache, _ = cache.load_cache(video.check_video_path(source), cache.extraction_params())
    shutil.rmtree(source_cache, ignore_errors=True)
    cmd = [sys.executable, str(ROOT / "DanceDemo.py"), "--gen_type", "1", "--video_path", str(target),
           "--source", str(source), "--out", str(out)]  # fmt: skip
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise UserError(f"DanceDemo.py failed: {r.stderr.strip().splitlines()[-1]}")
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu, video.count_frames(out), r.stdout.strip().splitlines()[-1]


def jitter_rows(target, source):
    """Jitter and pose error of plain NN (raw and smoothed poses) and of the coherent path, as table rows."""
    tv, sv = cache.VideoSkeleton(target, verbose=False), cache.VideoSkeleton(source, verbose=False)
    gen = nearest.GenNearest(tv)
    rows = []
    for label, smooth, coherent in (
        ("plain, raw poses", False, False),
        ("plain", True, False),
        (f"coherent (k={nearest.K}, jump_weight={nearest.JUMP_WEIGHT:g})", True, True),
    ):
        _, query, _ = transfer.prepare_poses(
            sv.ske_all, sv.valid, sv.fps, tv.skeletons(), smooth=smooth, times=sv.times
        )
        picks = gen.match(query, coherent=coherent)
        j = nearest.jitter(picks, gen.images[picks], gen.times)
        rows.append((label, j["jump_s"] * tv.fps, j["frame_diff"], metrics.pose_error(query, gen.xy[picks])))
    return rows


def smoothing_line(case, source):
    """Keypoint jitter (mean |2nd difference|) before and after smoothing; on the sample also the error to the truth."""
    sv = cache.VideoSkeleton(source, verbose=False)
    raw = transfer.fill_missing(sv.ske_all[..., :2], sv.valid, sv.fps, times=sv.times)  # as transfer.transfer
    smooth = transfer.smooth_poses(raw, sv.fps, times=sv.times)
    h = float(np.median(body_height(raw)))

    def jitter(xy):
        return 100 * float(np.linalg.norm(np.diff(xy, 2, axis=0), axis=-1).mean()) / h

    line = f"keypoint jitter (% of body height per frame): raw {jitter(raw):.3f} -> smoothed {jitter(smooth):.3f}"
    if case == "sample":
        from deepdance import mannequin

        truth = mannequin.sample_joints("source")[sv.frame_indices] / np.float32((mannequin.FRAME_W, mannequin.FRAME_H))
        truth = video.frame_to_square(truth, (mannequin.FRAME_H, mannequin.FRAME_W))
        bias = np.median(raw - truth, axis=0)  # MediaPipe's joints sit a little off the renderer's: not noise

        def error(xy):
            return 100 * float(np.linalg.norm(xy - bias - truth, axis=-1).mean()) / h

        line += f" (truth {jitter(truth):.3f}); error to the true joints: raw {error(raw):.3f}"
        line += f" -> smoothed {error(smooth):.3f}"
    return line


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES, help="what to run (default: both)")
    a = p.parse_args(argv)
    print(f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at start; data in {files.DATA_DIR}")
    out_dir = Path(tempfile.mkdtemp(prefix="deepdance-bench-out-"))
    for case in a.cases:
        pair = clips(case)
        if pair is None:
            print(f"\n## {case}: skipped ({SHARED} has no taichi1.mp4 / taichi2.mp4)")
            continue
        target, source = pair
        print(f"\n## {case}: {source.name} -> {target.name}")
        wall, cpu, frames, line = end_to_end(target, source, out_dir / f"{case}.mp4")
        print(f"DanceDemo.py --gen_type 1, source extraction included: {frames} frames in {wall:.1f} s = "
              f"{frames / wall:.1f} frames/s end to end ({cpu:.1f} CPU s over all processes; "
              f"load average now {os.getloadavg()[0]:.1f})")  # fmt: skip
        print(f"  its own report: {line}")
        print(f"  {smoothing_line(case, source)}")
        rows = jitter_rows(target, source)
        print(
            "\n| nearest neighbour | mean jump (target frames) | frame-to-frame diff (/255) | joint error (body h.) |"
        )
        print("|---|---:|---:|---:|")
        for label, jump, diff, err in rows:
            print(f"| {label} | {jump:.2f} | {diff:.2f} | {100 * err:.2f}% |")
        (_, jp, dp, ep), (_, jc, dc, ec) = rows[1], rows[2]
        print(
            f"coherent vs plain: mean jump -{100 * (1 - jc / jp):.0f}%, "
            f"frame-to-frame diff -{100 * (1 - dc / dp):.0f}%, joint error {100 * (ec / ep - 1):+.0f}%"
        )
    shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    run_cli(main)
