"""Peak memory of pose extraction and of the demo on long 1080p source clips: it must stay flat as clips grow.

    python -m bench.memory                          # 1- and 4-minute 1080p clips (25 fps)
    python -m bench.memory --minutes 1 4 10         # ... and 10 (~3.5 GB of frame cache, long on 2 cores)
    python -m bench.memory --root /tmp/old          # measure another checkout's scripts (e.g. an older commit)

The clips are the built-in sample source (mannequin B) upscaled to 1920x1080 and looped with ffmpeg's stream copy,
so a long clip costs seconds to make. For each length it runs, as a user would,

    python VideoSkeleton.py <clip>                                              (pose extraction, 2 workers)
    python DanceDemo.py --gen_type 1 --video_path <target> --source <clip> ...  (the demo, the source's poses cached)

and reports each run's peak resident memory as /usr/bin/time -v does (wait4's ru_maxrss: the largest single
process of the run, workers and ffmpeg included), and the peak of the whole process tree's resident memory summed
at the same instant (sampled from /proc every 0.2 s). Everything goes to a private data folder, removed at the end.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from deepdance.cli import UserError, run_cli
from deepdance.files import ROOT
from deepdance.video import VideoWriter

import cv2

MINUTES = (1.0, 4.0)
FPS = 25  # the sample's frame rate
WIDTH, HEIGHT = 1920, 1080
TARGET_FRAMES = 150  # the demo's target: a short clip, its size does not depend on the source's length
SAMPLE_EVERY = 0.2  # s between /proc samples of the process tree
FLAT = 0.10  # "flat": the longest clip's peak within this share (or 64 MiB) of the shortest's


# --------------------------------------------------------------------------- clips


def ffmpeg():
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def upscale(frame):
    """A 320x256 sample frame -> 1920x1080: scaled to the full height, the sides filled with its edge columns."""
    h, w = frame.shape[:2]
    big = cv2.resize(frame, (round(w * HEIGHT / h), HEIGHT), interpolation=cv2.INTER_LINEAR)
    pad = WIDTH - big.shape[1]
    return cv2.copyMakeBorder(big, 0, 0, pad // 2, pad - pad // 2, cv2.BORDER_REPLICATE)


def make_clips(work, minutes):
    """The demo's target (the sample target's first frames) and one 1080p source clip per length: paths."""
    from deepdance import mannequin

    target = work / "target.mp4"
    frames, _ = mannequin.render_clip("target", range(TARGET_FRAMES))
    with VideoWriter(target, mannequin.FPS) as w:
        for f in frames:
            w.write(f)
    base = work / "base_1080p.mp4"
    frames, _ = mannequin.render_clip("source")  # 400 frames: 16 s
    with VideoWriter(base, mannequin.FPS, crf=23) as w:
        for f in frames:
            w.write(upscale(f))
    clips = {}
    for m in minutes:
        clip = work / f"source_{m:g}min_1080p.mp4"
        cmd = [ffmpeg(), "-v", "error", "-y", "-stream_loop", "-1", "-i", str(base), "-t", f"{60 * m:g}",
               "-c", "copy", str(clip)]  # fmt: skip
        subprocess.run(cmd, check=True)
        clips[m] = clip
    return target, clips


# --------------------------------------------------------------------------- measuring


def tree_rss(root_pid):
    """Resident memory (bytes) of a process and all its descendants, now (from /proc)."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    pids, frontier = {root_pid}, [root_pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in pids]
        pids.update(kids)
        frontier += kids
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def measure(cmd, env, log):
    """Run cmd to completion: {seconds, max_rss (largest process, bytes), tree_rss (bytes), last (stdout line)}."""
    peak = [0]
    with open(log, "wb") as out:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        done = threading.Event()

        def sample():
            while not done.wait(SAMPLE_EVERY):
                peak[0] = max(peak[0], tree_rss(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)  # what /usr/bin/time -v reads
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
        seconds = time.perf_counter() - t
    text = Path(log).read_bytes().decode(errors="replace").replace("\r", "\n")
    lines = [line for line in text.splitlines() if line.strip()]
    if proc.returncode != 0:
        raise UserError(f"{Path(cmd[1]).name} failed ({proc.returncode}): {lines[-1] if lines else ''}")
    return {"seconds": seconds, "max_rss": usage.ru_maxrss * 1024, "tree_rss": peak[0], "last": lines[-1]}


def mib(n):
    return f"{n / 2**20:.0f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, nargs="+", default=list(MINUTES), help="clip lengths (default 1 4)")
    p.add_argument("--root", default=str(ROOT), help="checkout whose scripts are run (default: this one)")
    p.add_argument("--work", default=None, help="folder for the clips and caches (default: a temp dir, removed)")
    p.add_argument("--skip_extract", action="store_true", help="only time the demo (it then extracts the source)")
    a = p.parse_args(argv)
    if any(m <= 0 for m in a.minutes):
        raise UserError("--minutes must be > 0")
    scripts = Path(a.root).expanduser().resolve()
    if not (scripts / "DanceDemo.py").exists():
        raise UserError(f"--root {a.root} has no DanceDemo.py")
    work = Path(a.work).expanduser().resolve() if a.work else Path(tempfile.mkdtemp(prefix="deepdance-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DEEPDANCE_DATA": str(work / "data")}  # private caches: never the user's data/
    py = [sys.executable]
    try:
        t = time.perf_counter()
        target, clips = make_clips(work, sorted(a.minutes))
        print(f"clips made in {time.perf_counter() - t:.0f} s under {work} ({os.cpu_count()} CPU cores)")
        measure([*py, str(scripts / "VideoSkeleton.py"), str(target)], env, work / "target.log")
        rows = []
        for m, clip in clips.items():
            size = clip.stat().st_size
            ex = None
            if not a.skip_extract:
                ex = measure([*py, str(scripts / "VideoSkeleton.py"), str(clip)], env, work / f"extract_{m:g}.log")
            demo_cmd = [*py, str(scripts / "DanceDemo.py"), "--gen_type", "1", "--video_path", str(target),
                        "--source", str(clip), "--out", str(work / f"demo_{m:g}.mp4")]  # fmt: skip
            demo = measure(demo_cmd, env, work / f"demo_{m:g}.log")
            frames = int(cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FRAME_COUNT))
            rows.append((m, frames, size, ex, demo))
            print(f"{m:g} min: {frames} frames; extraction {mib(ex['max_rss']) if ex else '-'} MiB, "
                  f"demo {mib(demo['max_rss'])} MiB (largest process); {demo['last']}", flush=True)  # fmt: skip
        print()
        print(f"scripts: {scripts}")
        print("| source clip | frames | VideoSkeleton.py peak RSS (largest process / whole tree) | s "
              "| DanceDemo.py peak RSS (largest process / whole tree) | s |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|")
        for m, frames, size, ex, demo in rows:
            ex_cells = f"{mib(ex['max_rss'])} / {mib(ex['tree_rss'])} MiB | {ex['seconds']:.0f}" if ex else "- | -"
            print(f"| {m:g} min 1080p ({size / 2**20:.1f} MB) | {frames} | {ex_cells} | "
                  f"{mib(demo['max_rss'])} / {mib(demo['tree_rss'])} MiB | {demo['seconds']:.0f} |")  # fmt: skip
        if len(rows) > 1:
            (m0, _, _, ex0, d0), (m1, _, _, ex1, d1) = rows[0], rows[-1]
            for name, a0, a1 in (("extraction", ex0, ex1), ("demo", d0, d1)):
                if a0 is None:
                    continue
                growth = a1["max_rss"] - a0["max_rss"]
                verdict = "flat" if growth <= max(FLAT * a0["max_rss"], 64 * 2**20) else "GROWS with the clip"
                change = f"{growth / 2**20:+.0f} MiB ({100 * growth / a0['max_rss']:+.1f}%)"
                print(f"{name}: {m0:g} -> {m1:g} min changes the peak by {change}: {verdict}")
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    run_cli(main)
