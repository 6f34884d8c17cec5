"""Benchmark GenVanillaNN training: both variants for a fixed time budget, then GenNearest, on the same val block.

    python -m bench.train                          # taichi1 (when ../shared/data has it), else the built-in sample
    python -m bench.train --minutes 7 --variants 2
    python -m bench.train --video data/sample/target.mp4 --minutes 3

Prints, per variant: training throughput (images/s over the optimisation steps), the data pipeline's share
of step time, epochs reached, and validation L1 (pixels in [0, 1]) / PSNR / SSIM / body-box SSIM of the
final model (no checkpoint picked on the val block) and of best.pth (the one picked by val body-box SSIM).
Timings depend on what else runs on the machine: the load average is printed with them.
"""

import argparse
import os
import time
from pathlib import Path

from deepdance import gentypes, metrics, trainer, vanilla
from deepdance.cache import VideoSkeleton
from deepdance.cli import UserError, run_cli
from deepdance.distributed import pick_device
from deepdance.files import ROOT

import torch

TAICHI = ROOT.parent / "shared" / "data" / "taichi1.mp4"
MINUTES = 7.0  # training budget per variant: the bar for variant 2
OUT = ROOT / "out" / "bench-train"  # checkpoints, logs and sample grids of the runs (never the user's models)


def nearest_metrics(vs, train_pos, val_xy, val_real, size):
    """GenNearest restricted to the training block, answering the val block's poses."""
    from deepdance.nearest import GenNearest

    gen = GenNearest(vs, size=size, positions=train_pos)
    return metrics.image_metrics(gen.generate_batch(val_xy), val_real, val_xy)


def row(name, m, extra=""):
    return f"| {name} | {m['l1']:.4f} | {m['psnr']:.2f} | {m['ssim']:.3f} | {m['box_ssim']:.3f} | {extra} |"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", default=None, help="target video (default: taichi1 if present, else the sample)")
    p.add_argument("--minutes", type=float, default=MINUTES, help=f"training budget per variant (default {MINUTES})")
    p.add_argument("--variants", type=int, nargs="+", default=[2, 1], choices=(1, 2), help="default: 2 1")
    p.add_argument("--size", type=int, default=gentypes.SIZE, choices=(64, 128), help=f"default {gentypes.SIZE}")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="default auto")
    p.add_argument("--seed", type=int, default=trainer.SEED, help=f"default {trainer.SEED}")
    p.add_argument("--out", default=str(OUT), help=f"where runs are written (default {OUT.relative_to(ROOT)})")
    a = p.parse_args(argv)
    if a.minutes <= 0:
        raise UserError(f"--minutes must be > 0, got {a.minutes}")
    video = a.video or (TAICHI if TAICHI.exists() else None)
    vs = VideoSkeleton(video, verbose=False)
    train_pos, val_pos, _ = vs.split()  # the trainers validate on the selection block: so does this bench
    val = vs.dataset(val_pos, a.size)
    val_real, val_xy = val.images.permute(0, 2, 3, 1).numpy(), val.xy.numpy()
    device = pick_device(a.device)
    print(
        f"{vs}: train frames {train_pos[0]}-{train_pos[-1]}, selection {val_pos[0]}-{val_pos[-1]} ({len(val_pos)}); "
        f"{a.size} px, {a.minutes:g} min per variant on {device} ({torch.get_num_threads()} threads, "
        f"{os.cpu_count()} cores, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, "
        f"load average {os.getloadavg()[0]:.2f})"
    )
    lines = []
    for variant in a.variants:
        cfg = vanilla.VanillaConfig(variant=variant, size=a.size, time_budget=a.minutes, seed=a.seed, device=a.device)
        out = Path(a.out) / vs.key / f"vanilla-{vanilla.VARIANTS[variant]}-{a.size}"
        t0 = time.perf_counter()
        s = vanilla.train(vs, cfg, out=out)
        wall = time.perf_counter() - t0
        ips = s["images"] / s["step_seconds"]
        share = s["data_seconds"] / s["step_seconds"]
        print(
            f"variant {variant}: {s['epoch']} epochs, {s['images']} images in {wall / 60:.1f} min "
            f"({s['parameters'] / 1e6:.2f}M parameters): {ips:.1f} images/s over the steps, "
            f"data {100 * share:.1f}% of step time; load average now {os.getloadavg()[0]:.2f}"
        )
        last = {k[4:]: v for k, v in s["last"].items() if k.startswith("val_")}
        info = f"{s['epoch']} epochs, {ips:.0f} img/s, data {100 * share:.1f}%"
        lines.append(row(f"variant {variant} (gen_type {vanilla.gen_type_of_variant(variant)}), final", last, info))
        lines.append(row(f"variant {variant}, best.pth (epoch {s['best']['epoch']})", s["best"], "picked on val"))
    t0 = time.perf_counter()
    near = nearest_metrics(vs, train_pos, val_xy, val_real, a.size)
    lines.append(row("GenNearest (train block)", near, f"{len(val_pos) / (time.perf_counter() - t0):.0f} frames/s"))
    print(f"\nselection block of {vs.video_path.name} ({len(val_pos)} frames, {a.size} px, L1 of pixels in [0, 1]):\n")
    print("| model | L1 | PSNR | SSIM | body-box SSIM | notes |")
    print("|---|---|---|---|---|---|")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    run_cli(main)
