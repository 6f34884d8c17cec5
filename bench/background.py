"""Where does a generator's gap to the real frames lie: on the person, or behind them?

    python Evaluate.py --video_path ../shared/data/taichi1.mp4 --gen_type 1,3,9 --dump out/eval/taichi1/taichi1.npz
    python -m bench.background out/eval/taichi1/taichi1.npz [--width 0.1] [--pose]

Evaluate's body box holds the person and what is behind them. Each generated frame of the dump is cut along the
real pose's person mask (Skeleton.person_mask: within --width x body height of a limb, feathered by a pixel) and
put together with the real frame two ways: its person on the real background, and the real person on its
background. The body-box SSIM, L1 and sharpness (Evaluate's) of the three say how much of a generator's gap lies on
the person and how much behind them; the first line says how much of the real frames' body box, and of their
gradient energy (the detail sharpness counts), is the person's. --pose also runs MediaPipe on each (Evaluate's pose
consistency, for dumps of 128 px and up): whether the person or the background keeps it from finding anyone.
"""

import argparse
from pathlib import Path

from deepdance.cli import UserError, run_cli
from deepdance.metrics import (
    POSE_NEAR,
    body_boxes,
    box_l1,
    gradient_energy,
    image_metrics,
    pose_consistency,
    sharpness_ratio,
)
from deepdance.pose import EVAL_MARGIN, detect_poses
from deepdance.skeleton import PERSON_WIDTH, person_mask

import cv2
import numpy as np

from bench.verify_dump import generated, load_dump

FEATHER = 1.0  # px, Gaussian sigma on the mask's edge: a hard cut would add a seam's gradients to both parts


def person_weights(xy, size, width):
    """(N, 13, 2) real joints -> (N, S, S) float32 in [0, 1]: the person, with a soft edge."""
    return np.stack([cv2.GaussianBlur(m, (0, 0), FEATHER) for m in person_mask(xy, size, width)])


def compose(person, background, weights):
    """(N, S, S, 3) uint8 person frames over background frames, by (N, S, S) weights -> (N, S, S, 3) uint8."""
    w = weights[..., None]
    return np.round(w * person + (1.0 - w) * background).astype(np.uint8)


def composites(fake, real, weights):
    """{what: (N, S, S, 3) uint8}: the frames as generated, their person on the real background, and the real
    person on their background."""
    return {
        "as generated": fake,
        "its person, the real background": compose(fake, real, weights),
        "the real person, its background": compose(real, fake, weights),
    }


def split_scores(frames, real, xy, pose=False):
    """{what: [body-box SSIM, body L1 (pixels in [0, 1]), sharpness(, pose found, found near)]} of each of a dict of
    frame sets (composites(), bench/sharpen.py's filtered frames) against the real frames, as Evaluate scores them;
    pose: also the shares of them where MediaPipe finds a person, and finds one near the input skeleton (Evaluate's
    pose consistency, at 128 px and up)."""
    boxes = body_boxes(xy, real.shape[1])
    out = {}
    for k, f in frames.items():
        out[k] = [image_metrics(f, real, xy)["box_ssim"], float(box_l1(f, real, boxes).mean())]
        out[k].append(sharpness_ratio(f, real, boxes))
        if pose:
            found = pose_consistency(detect_poses(f, desc=f"MediaPipe, {k}", margin=EVAL_MARGIN), xy)
            out[k] += [found["pose_found"], found["pose_near"]]
    return out


def person_share(real, xy, weights):
    """(share of the body boxes' pixels, share of their gradient energy) on the person, over all frames."""
    boxes = body_boxes(xy, real.shape[1])
    area = np.mean([weights[i, y0:y1, x0:x1].mean() for i, (x0, y0, x1, y1) in enumerate(boxes)])
    return float(area), float(gradient_energy(real, boxes, weights).sum() / gradient_energy(real, boxes).sum())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dump", help="an Evaluate.py --dump file (.npz)")
    p.add_argument("--width", type=float, default=PERSON_WIDTH,
                   help=f"the person: within this x body height of a limb (default {PERSON_WIDTH})")  # fmt: skip
    p.add_argument("--pose", action="store_true",
                   help="also MediaPipe on every composite: which part keeps it from finding the person")  # fmt: skip
    a = p.parse_args(argv)
    if not 0 < a.width <= 1:
        raise UserError(f"need 0 < --width <= 1, got {a.width}")
    data = load_dump(a.dump, required=("real", "xy"))
    real, xy, path = data["real"], data["xy"], Path(a.dump)
    weights = person_weights(xy, real.shape[1], a.width)
    area, energy = person_share(real, xy, weights)
    print(f"{path.name}: {len(real)} frames, {real.shape[1]} px; the person (within {a.width:g} body heights of a "
          f"limb) is {area:.0%} of the body box and holds {energy:.0%} of its gradient energy")  # fmt: skip
    if a.pose:
        found = pose_consistency(detect_poses(real, desc="MediaPipe, the real frames", margin=EVAL_MARGIN), xy)
        print(f"MediaPipe finds the person in {found['pose_found']:.0%} of the real frames ({found['pose_near']:.0%} "
              f"within {POSE_NEAR:g} body heights of the skeleton)")  # fmt: skip
    print("| gen_type | frames | body SSIM | body L1 | sharpness |" + " pose found | found near |" * a.pose)
    print("|---:|---|---:|---:|---:|" + "---:|---:|" * a.pose)
    for g, fake in generated(data).items():
        for what, s in split_scores(composites(fake, real, weights), real, xy, a.pose).items():
            print(f"| {g} | {what} | {s[0]:.3f} | {s[1]:.4f} | {s[2]:.2f} |" + "".join(f" {v:.0%} |" for v in s[3:]))
    return 0


if __name__ == "__main__":
    run_cli(main)
