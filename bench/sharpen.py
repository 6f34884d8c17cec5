"""What an unsharp mask does to Evaluate's body SSIM and sharpness: how far a filter that adds no detail moves them.

    python Evaluate.py --video_path ../shared/data/taichi1.mp4 --gen_type 1,3,4,9 --dump out/eval/taichi1/taichi1.npz
    python -m bench.sharpen out/eval/taichi1/taichi1.npz [--radius 1 2 5] [--amount 0.2 0.4 0.6] [--pose]

Sharpness (Evaluate) is the share of the real frames' gradient energy a generator keeps in the body box: the detail
a viewer misses. An unsharp mask, frame + amount x (frame - Gaussian blur of radius sigma), adds none: it amplifies
what the frame already has. Each generated frame of the dump is filtered at every radius and amount (radii in px of a
64 px frame, scaled with the dump's size) and scored against the real frames as Evaluate does; --pose also runs
MediaPipe on the filtered frames (pose consistency, for dumps of 128 px and up). What the filter buys is what the
sharpness figure cannot tell from detail.
"""

import argparse
from pathlib import Path

from deepdance.cli import UserError, run_cli

import cv2
import numpy as np

from bench.background import split_scores
from bench.verify_dump import generated, load_dump

RADII = (1.0, 2.0, 5.0)  # Gaussian sigma, px of a 64 px frame: fine detail .. the limbs' width
AMOUNTS = (0.2, 0.4, 0.6)


def unsharp(frames, sigma, amount):
    """(N, S, S, 3) uint8 -> the same, each frame + amount x (frame - its Gaussian blur of sigma px)."""
    f = frames.astype(np.float32)
    blur = np.stack([cv2.GaussianBlur(x, (0, 0), sigma) for x in f])
    return np.clip(np.round(f + amount * (f - blur)), 0, 255).astype(np.uint8)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dump", help="an Evaluate.py --dump file (.npz)")
    p.add_argument("--radius", type=float, nargs="+", default=RADII, help=f"sigmas, px at 64 px (default {RADII})")
    p.add_argument("--amount", type=float, nargs="+", default=AMOUNTS, help=f"amounts (default {AMOUNTS})")
    p.add_argument("--pose", action="store_true", help="also MediaPipe on the filtered frames (128 px and up)")
    a = p.parse_args(argv)
    if min(a.radius) <= 0 or min(a.amount) <= 0:
        raise UserError(f"need --radius and --amount > 0, got {a.radius} and {a.amount}")
    data = load_dump(a.dump, required=("real", "xy"))
    real, xy = data["real"], data["xy"]
    scale = real.shape[1] / 64
    print(f"{Path(a.dump).name}: {len(real)} frames, {real.shape[1]} px; radii scaled by {scale:g}")
    print(
        "| gen_type | radius (px at 64) | amount | body SSIM | body L1 | sharpness |"
        + " pose found | found near |" * a.pose
    )
    print("|---:|---:|---:|---:|---:|---:|" + "---:|---:|" * a.pose)
    for g, fake in generated(data).items():
        frames = {("-", "-"): fake} | {(r, m): unsharp(fake, r * scale, m) for r in a.radius for m in a.amount}
        for (r, m), s in split_scores(frames, real, xy, a.pose).items():
            print(f"| {g} | {r} | {m} | {s[0]:.3f} | {s[1]:.4f} | {s[2]:.2f} |" + "".join(f" {v:.0%} |" for v in s[3:]))
    return 0


if __name__ == "__main__":
    run_cli(main)
