"""Where does a generator's gap to the real frames lie: on the person, or behind them? (#15)

    python Evaluate.py --video_path ../shared/data/taichi1.mp4 --gen_type 1,3,9 --dump out/eval/taichi1/taichi1.npz
    python bench/background.py out/eval/taichi1/taichi1.npz [--width 0.1]

Evaluate's body box holds the person and what is behind them. Each generated frame of the dump is cut along the
real pose's person mask (Skeleton.person_mask: within --width x body height of a limb, feathered by a pixel) and
put together with the real frame two ways: its person on the real background, and the real person on its
background. The body-box SSIM and sharpness (Evaluate's) of the three say how much of a generator's gap lies on
the person and how much behind them; the first line says how much of the real frames' body box, and of their
gradient energy (the detail sharpness counts), is the person's.
"""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before anything loads OpenMP (as every entry script)

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from Metrics import body_boxes, gradient_energy, image_metrics, sharpness_ratio  # noqa: E402
from Skeleton import PERSON_WIDTH, UserError, person_mask, run_cli  # noqa: E402

FEATHER = 1.0  # px, Gaussian sigma on the mask's edge: a hard cut would add a seam's gradients to both parts


def person_weights(xy, size, width):
    """(N, 13, 2) real joints -> (N, S, S) float32 in [0, 1]: the person, with a soft edge."""
    return np.stack([cv2.GaussianBlur(m, (0, 0), FEATHER) for m in person_mask(xy, size, width)])


def compose(person, background, weights):
    """(N, S, S, 3) uint8 person frames over background frames, by (N, S, S) weights -> (N, S, S, 3) uint8."""
    w = weights[..., None]
    return np.round(w * person + (1.0 - w) * background).astype(np.uint8)


def split_scores(fake, real, xy, weights):
    """{what: (body-box SSIM, sharpness)} for the frames as generated, their person on the real background, and
    the real person on their background."""
    boxes = body_boxes(xy, real.shape[1])
    frames = {
        "as generated": fake,
        "its person, the real background": compose(fake, real, weights),
        "the real person, its background": compose(real, fake, weights),
    }
    return {k: (image_metrics(f, real, xy)["box_ssim"], sharpness_ratio(f, real, boxes)) for k, f in frames.items()}


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
    a = p.parse_args(argv)
    if not 0 < a.width <= 1:
        raise UserError(f"need 0 < --width <= 1, got {a.width}")
    path = Path(a.dump)
    if not path.is_file():
        raise UserError(f"{a.dump}: no such dump (make one with Evaluate.py --dump)")
    try:
        with np.load(path, allow_pickle=False) as d:
            real, xy = d["real"], d["xy"]
            fakes = {k.removeprefix("fake_"): d[k] for k in d.files if k.startswith("fake_")}
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"{a.dump} is not an Evaluate.py dump ({e})") from None
    if not fakes:
        raise UserError(f"{a.dump} holds no generated frames (fake_<gen_type>)")
    weights = person_weights(xy, real.shape[1], a.width)
    area, energy = person_share(real, xy, weights)
    print(f"{path.name}: {len(real)} frames, {real.shape[1]} px; the person (within {a.width:g} body heights of a "
          f"limb) is {area:.0%} of the body box and holds {energy:.0%} of its gradient energy")  # fmt: skip
    print("| gen_type | frames | body SSIM | sharpness |\n|---:|---|---:|---:|")
    for g, fake in fakes.items():
        for what, (ssim, sharp) in split_scores(fake, real, xy, weights).items():
            print(f"| {g} | {what} | {ssim:.3f} | {sharp:.2f} |")
    return 0


if __name__ == "__main__":
    run_cli(main)
