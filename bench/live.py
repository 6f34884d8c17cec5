"""Benchmark live mode: a 25 fps file played in real time, headless, as if it were a camera.

    python -m bench.live                               # the sample, and taichi2 (at 25 fps) -> taichi1 when present
    python -m bench.live --cases sample --gen_types 1
    python -m bench.live --train_epochs 2              # gen_type 3 without a checkpoint: train a quick one first

Each run is `python DanceDemo.py --live --source <25 fps clip> --video_path <target> --gen_type G --window off`
in a subprocess (targets cached beforehand, so only the live loop is measured: the clip plays in real time whatever
happens before). It reports the script's last line (frames in, shown, dropped, fps shown, latency median and p95,
capture to display), its latency split, and the load average around the run: on a shared machine other work
takes CPU from the loop, so figures measured under load are pessimistic.
Targets: gen_type 1 >= 22 frames/s shown with median latency <= 80 ms; gen_type 3 (64 px) >= 15.
"""

import argparse
import os
import re
import subprocess
import sys
import time

from deepdance.cache import VideoSkeleton
from deepdance.cli import UserError, run_cli
from deepdance.files import DATA_DIR, ROOT
from deepdance.gentypes import checkpoint_dir, train_command
from deepdance.video import VideoWriter, iter_frames, probe_video

import cv2

SHARED = ROOT.parent / "shared" / "data"
CASES = ("sample", "taichi")
FPS = 25.0  # the rate every source is played at (the measure)
TARGETS = {1: (22.0, 80.0), 3: (15.0, None)}  # gen_type: (min fps shown, max median latency ms or None)
LAST_LINE = re.compile(
    r"live: (\d+) frames in, (\d+) shown, (\d+) dropped, ([\d.]+) fps shown, latency median (\d+) ms, p95 (\d+) ms"
)


def at_fps(src, out, fps=FPS):
    """src resampled to fps by keeping the frame shown at each of out's instants (nearest earlier frame): out."""
    if out.exists():
        return out
    _, src_fps, _, _ = probe_video(src)
    step = src_fps / fps
    with VideoWriter(out, fps, crf=18) as writer:
        k = 0
        for i, frame in iter_frames(src):
            while int(k * step) == i:  # every output instant that falls on this source frame
                writer.write(frame)
                k += 1
    return out


def clips(case):
    """(name, target, 25 fps source) of a case, or None when its footage is absent."""
    if case == "taichi":
        target, source = SHARED / "taichi1.mp4", SHARED / "taichi2.mp4"
        if not (target.exists() and source.exists()):
            return None
        return "taichi2 (25 fps) -> taichi1", target, at_fps(source, DATA_DIR / "bench" / "taichi2-25fps.mp4")
    from deepdance import mannequin

    source = mannequin.ensure_sample("source")
    _, fps, _, _ = probe_video(source)
    if abs(fps - FPS) > 0.01:
        source = at_fps(source, DATA_DIR / "bench" / "sample-source-25fps.mp4")
    return "sample source -> sample target", mannequin.ensure_sample("target"), source


def has_checkpoint(vs, gen_type, size=64):
    return (checkpoint_dir(vs, gen_type, size) / "best.pth").exists()


def run(target, source, gen_type, *, size=64, record=None):
    """One live run in a subprocess, headless: (parsed last line, latency split line, load before, load after, wall)."""
    cmd = [sys.executable, str(ROOT / "DanceDemo.py"), "--live", "--source", str(source), "--video_path", str(target),
           "--gen_type", str(gen_type), "--size", str(size), "--window", "off"]  # fmt: skip
    if record:
        cmd += ["--out", str(record)]
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    wall = time.perf_counter() - t
    load1 = os.getloadavg()[0]
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines or not LAST_LINE.fullmatch(lines[-1]):
        why = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"live run failed ({' '.join(cmd[1:])}): {why}")
    split = next((line for line in lines if line.startswith("latency split")), "")
    return LAST_LINE.fullmatch(lines[-1]), split, load0, load1, wall


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES, help="clips to play (default: both)")
    p.add_argument("--gen_types", nargs="+", type=int, default=[1, 3], choices=(1, 3), help="(default: 1 3)")
    p.add_argument(
        "--train_epochs",
        type=int,
        default=0,
        help="gen_type 3 without a checkpoint: train one for this many epochs first (default 0: skip it)",
    )
    p.add_argument("--record", action="store_true", help="also record each run with --out (default: no recording)")
    p.add_argument("--repeat", type=int, default=1, help="runs per case and gen_type (default 1)")
    a = p.parse_args(argv)
    cpu = os.cpu_count()
    print(f"{cpu} CPUs; every source played at {FPS:g} fps, headless; load average = 1-min, before/after each run")
    rows = []
    for case in a.cases:
        found = clips(case)
        if found is None:
            print(f"{case}: footage not found under {SHARED}, skipped")
            continue
        name, target, source = found
        vs = VideoSkeleton(target, verbose=False)  # cached now: the live run then measures only the loop
        n, fps, w, h = probe_video(source)
        print(f"{name}: {n} frames of {w}x{h} at {fps:g} fps ({n / fps:.1f} s)")
        for g in a.gen_types:
            if g == 3 and not has_checkpoint(vs, 3):
                if a.train_epochs <= 0:
                    how = train_command(3, target)
                    print(f"  gen_type 3: no checkpoint, skipped (train: {how}, or use --train_epochs)")
                    continue
                cmd = [sys.executable, str(ROOT / "GenVanillaNN.py"), str(target), "false", "2",
                       "--epochs", str(a.train_epochs)]  # fmt: skip
                print(f"  gen_type 3: training a quick checkpoint: {' '.join(cmd[1:])}")
                r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
                if r.returncode != 0:
                    raise UserError(f"training failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
            for k in range(a.repeat):
                record = DATA_DIR / "bench" / f"live-{case}-{g}.mp4" if a.record else None
                m, split, load0, load1, wall = run(target, source, g, record=record)
                frames_in, shown, dropped, fps_shown, med, p95 = m.groups()
                min_fps, max_med = TARGETS[g]
                ok = float(fps_shown) >= min_fps and (max_med is None or int(med) <= max_med)
                cpu = re.search(r"CPU (\d+) ms", split)
                cpu = cpu[1] if cpu else "?"
                load = f"{load0:.1f}/{load1:.1f}"
                rows.append((case, g, frames_in, shown, dropped, fps_shown, med, p95, cpu, load, ok))
                print(f"  gen_type {g} run {k + 1}: {m[0]}  (load {load0:.1f} -> {load1:.1f}, {wall:.1f} s)")
                print(f"    {split}" + (f"; recorded {record}" if record else ""))
    if rows:
        print()
        head = ("clip", "gen_type", "in", "shown", "dropped", "fps shown", "latency median ms", "p95 ms",
                "CPU ms/frame", "load", "goal")  # fmt: skip
        print("| " + " | ".join(head) + " |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for case, g, *figures, ok in rows:
            goal = f">= {TARGETS[g][0]:g} fps" + (f", <= {TARGETS[g][1]:g} ms" if TARGETS[g][1] else "")
            cells = " | ".join(map(str, (case, g, *figures, f"{goal}: {'met' if ok else 'MISSED'}")))
            print(f"| {cells} |")
    print(f"OpenCV {cv2.__version__}; the load average counts every process on the machine (others' included)")


if __name__ == "__main__":
    run_cli(main)
