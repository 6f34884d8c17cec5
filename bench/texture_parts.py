"""Where gen_type 9's detail goes: its output against its two parts, the moved reference and the painted colours.

    python -m bench.texture_parts --video ../shared/data/taichi1.mp4 [--size 64] [--block test]

gen_type 9 returns mask x (the reference frame moved by its flow) + (1 - mask) x (painted colours). On the chosen
block this prints, for the output and for the moved reference alone, Evaluate's body SSIM, sharpness and fine
detail against the real frames, and the mask's mean inside the body box (the share of the box drawn from real
pixels). A moved reference that keeps its detail under a mask that seldom uses it says the detail is lost to
painting, not to the move. The model is the target's trained best.pth (GenTexture.py), in DEEPDANCE_DATA.
"""

import argparse

from deepdance import gentypes, metrics
from deepdance.cache import VideoSkeleton, default_video
from deepdance.cli import UserError, run_cli

import numpy as np


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", default=None, help="target video (default: the built-in sample target)")
    p.add_argument("--size", type=int, default=64, choices=(64, 128, 256), help="frame side in px (default 64)")
    p.add_argument("--block", default="test", choices=("test", "select"), help="poses scored (default test)")
    a = p.parse_args(argv)
    vs = VideoSkeleton(a.video or default_video(), verbose=False)
    split = vs.split()
    rows = split.test if a.block == "test" else split.select
    if len(rows) == 0:
        raise UserError(f"{vs.key}: its {a.block} block is empty (too few frames)")
    gen = gentypes.load_generator(vs, 9, size=a.size, device="cpu")
    xy = vs.skeletons()[rows]
    real = vs.frames(a.size)[rows]
    out = gen.generate_batch(xy)
    warped, mask = gen.parts(xy)
    boxes = metrics.body_boxes(xy, a.size)
    inside = np.mean([mask[i, y0:y1, x0:x1].mean() for i, (x0, y0, x1, y1) in enumerate(boxes)])
    print(f"{vs.key}, {a.block} block, {len(rows)} frames, {a.size} px; mask mean in the body box {inside:.2f}")
    print("| frames | body SSIM | sharpness | fine detail |\n|---|---:|---:|---:|")
    for name, frames in (("output", out), ("moved reference alone", warped)):
        ssim = metrics.image_metrics(frames, real, xy, metrics.BOX_MARGIN)["box_ssim"]
        sharp, fine = metrics.sharpness_ratio(frames, real, boxes), metrics.fine_detail_ratio(frames, real, boxes)
        print(f"| {name} | {ssim:.3f} | {sharp:.2f} | {fine:.2f} |")
    return 0


if __name__ == "__main__":
    run_cli(main)
