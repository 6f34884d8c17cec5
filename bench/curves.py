"""Quality against training time, from the runs' own logs: gen_types 3, 4 and 9 at 64 and 128 px.

    python -m bench.curves                                   # taichi1 (../shared/data), the default checkpoints
    python -m bench.curves --video sample --gen_type 3 --size 64 --reach 0.80

Reads each default checkpoint folder's train_log.csv (written by the trainers at every epoch: cumulative seconds
and images, and the validation of the selection block) and prints, per run, what it had reached after each of
--at minutes (the epoch logged by then: body-box SSIM and, where logged, sharpness), its best epoch by body-box
SSIM, and when it first reached --reach body-box SSIM. A GAN fine-tune (gen_type 4) starts from gen_type 3's
best.pth: its minutes are its own, gen_type 3's come first. Minutes are wall time as logged, under whatever load
the machine had; train with the default commands first (a missing run prints its command).
"""

import argparse
import csv

from deepdance.cache import VideoSkeleton, add_framing_arg
from deepdance.cli import UserError, run_cli
from deepdance.files import ROOT
from deepdance.gentypes import GEN_TYPES, checkpoint_dir, train_command_for

VIDEO = ROOT.parent / "shared" / "data" / "taichi1.mp4"
AT = (2.0, 5.0, 10.0, 20.0, 30.0)  # minutes at which each run is read
REACH = 0.70  # body-box SSIM on the selection block whose first epoch is reported


def read_log(path):
    """train_log.csv -> [(minutes, images, val box SSIM, val sharpness or nan)], one per epoch."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    nan = float("nan")
    return [(float(r["seconds"]) / 60, int(float(r["images"])), float(r["val_box_ssim"]),
             float(r.get("val_sharpness") or nan)) for r in rows]  # fmt: skip


def at(log, minutes):
    """The last epoch logged by `minutes` (None if none yet)."""
    done = [row for row in log if row[0] <= minutes]
    return done[-1] if done else None


def cell(row):
    if row is None:
        return "-"
    sharp = f", sharpness {row[3]:.2f}" if row[3] == row[3] else ""
    return f"{row[2]:.3f}{sharp}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", default=str(VIDEO), help="target video, or 'sample' (default ../shared/data/taichi1.mp4)")
    add_framing_arg(p, "the target's square")
    p.add_argument("--gen_type", default="3,4,9", help="comma list of trained gen_types (default 3,4,9)")
    p.add_argument("--size", default="64,128", help="comma list of sizes (default 64,128)")
    p.add_argument("--at", type=float, nargs="+", default=list(AT), help=f"minutes (default {' '.join(map(str, AT))})")
    p.add_argument("--reach", type=float, default=REACH, help=f"body-box SSIM to report reaching (default {REACH})")
    a = p.parse_args(argv)
    try:
        gen_types = [int(g) for g in a.gen_type.split(",")]
        sizes = [int(s) for s in a.size.split(",")]
    except ValueError:
        raise UserError(
            f"--gen_type and --size are comma lists of numbers, got {a.gen_type!r} and {a.size!r}"
        ) from None
    unknown = [g for g in gen_types if GEN_TYPES.get(g) is None or GEN_TYPES[g].train is None]
    if unknown:
        raise UserError(f"--gen_type: {unknown} train nothing; choose among 2-9")
    vs = VideoSkeleton(None if a.video == "sample" else a.video, framing=a.framing, verbose=False)

    print(f"{vs.video_path.name}: selection-block body-box SSIM (and sharpness), from each run's train_log.csv\n")
    print("| gen_type | px | " + " | ".join(f"{m:g} min" for m in a.at) + f" | best epoch | first >= {a.reach:g} |")
    print("|---:|---:|" + "---|" * (len(a.at) + 2))
    missing = []
    for g in gen_types:
        for size in sizes:
            path = checkpoint_dir(vs, g, size) / "train_log.csv"
            if not path.exists():
                missing.append(f"gen_type {g} at {size} px: {train_command_for(vs, g, size)}")
                continue
            log = read_log(path)
            end = log[-1]
            first = next((row for row in log if row[2] >= a.reach), None)
            reach = "never" if first is None else f"{first[0]:.1f} min ({first[1]:,} images)"
            cells = [cell(at(log, m)) if m <= end[0] + 1e-9 else "(ended)" for m in a.at]
            best = max(log, key=lambda row: row[2])
            rate = end[1] / 60 / end[0]
            end_cell = f"{cell(best)} ({best[0]:.1f} min; the run: {end[0]:.1f} min, {end[1]:,} images, {rate:.0f}/s)"
            print(f"| {g} | {size} | " + " | ".join(cells) + f" | {end_cell} | {reach} |")
    for line in missing:
        print(f"- not trained: {line}")


if __name__ == "__main__":
    run_cli(main)
