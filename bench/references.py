"""How much of gen_type 9's gap to the real frames is its choice of reference?

    python -m bench.references                                     # taichi1 (../shared/data), default best.pth
    python -m bench.references --checkpoint path/to/best.pth --k 8

gen_type 9 renders a pose from its nearest training frame. Here every held-out pose (the test block, as Evaluate)
is rendered from each of its --k nearest training frames by the same trained net, and the body-box SSIM and
sharpness (Evaluate's) are printed for three ways of choosing among them:
  nearest   the nearest pose: what the generator does;
  guided    the output closest (L1 in the body box) to gen_type 3's frame for the pose: a choice a generator could
            make, since gen_type 3 needs only the pose;
  oracle    the output with the highest SSIM against the real frame: an upper bound, since no generator has it.
If even the oracle stays below a target, no way of picking references reaches it with this net. The last line
says how much of the person the net shows as real pixels moved from the nearest frame, and how much it paints.
"""

import argparse
from pathlib import Path

from deepdance.cache import VideoSkeleton, add_framing_arg
from deepdance.checkpoints import best_checkpoint, check_same_data
from deepdance.cli import UserError, run_cli
from deepdance.evaluation import held_out_set
from deepdance.files import ROOT
from deepdance.metrics import body_boxes, box_l1, image_metrics, sharpness_ratio
from deepdance.skeleton import PERSON_WIDTH, person_mask
from deepdance.texture import GEN_TYPE, VANILLA_TYPE, GenTexture
from deepdance.vanilla import load_generator as load_vanilla

import numpy as np

VIDEO = ROOT.parent / "shared" / "data" / "taichi1.mp4"
K = 8  # references tried per pose, nearest first: each costs one render of the whole block
BLOCKS = ("test", "select")


def choose(outputs, es, guide, boxes):
    """outputs (K, N, S, S, 3) -> {way: (N,) index of the reference chosen for each pose}."""
    n = outputs.shape[1]
    ssim = np.stack([image_metrics(o, es.real, es.xy, reduce=False)["box_ssim"] for o in outputs])  # (K, N)
    return {
        "nearest": np.zeros(n, np.int64),
        "guided": np.stack([box_l1(o, guide, boxes) for o in outputs]).argmin(0),  # (K, N) -> (N,)
        "oracle": ssim.argmax(0),
    }


def compare(gen, guide_gen, es, k=K):
    """gen (a GenTexture), guide_gen (gen_type 3, same size), es (Evaluate's EvalSet) -> {way: (body-box SSIM,
    sharpness, share of poses not rendered from their nearest frame)}."""
    rows = gen.nearest.candidates(es.xy_in, k)  # (N, k) nearest first
    outputs = np.stack([gen.generate_from(es.xy_in, rows[:, j]) for j in range(rows.shape[1])])  # (k, N, S, S, 3)
    boxes = body_boxes(es.xy, es.size)
    out = {}
    for way, pick in choose(outputs, es, guide_gen.generate_batch(es.xy_in), boxes).items():
        fake = outputs[pick, np.arange(len(pick))]
        out[way] = (image_metrics(fake, es.real, es.xy)["box_ssim"], sharpness_ratio(fake, es.real, boxes),
                    float(np.mean(pick > 0)))  # fmt: skip
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", default=str(VIDEO), help="target video, or 'sample' (default ../shared/data/taichi1.mp4)")
    add_framing_arg(p, "the target's square")
    p.add_argument("--size", type=int, default=64, choices=(64, 128, 256), help="the models' size (default 64)")
    p.add_argument("--checkpoint", help=f"a gen_type {GEN_TYPE} checkpoint (default: the target's best.pth)")
    p.add_argument("--k", type=int, default=K, help=f"references tried per pose, nearest first (default {K})")
    p.add_argument("--block", default="test", choices=BLOCKS, help="held-out block scored (default test)")
    a = p.parse_args(argv)
    if a.k < 1:
        raise UserError(f"--k must be >= 1, got {a.k}")
    vs = VideoSkeleton(None if a.video == "sample" else a.video, framing=a.framing)
    path = Path(a.checkpoint) if a.checkpoint else best_checkpoint(vs, GEN_TYPE, a.size)
    gen = GenTexture(path, vs, "cpu", gen_type=GEN_TYPE, size=a.size)
    check_same_data(gen, vs)
    guide_gen = load_vanilla(vs, VANILLA_TYPE, size=a.size, device="cpu")
    es, _ = held_out_set(vs, a.size, a.block)
    k = min(a.k, len(gen.positions))
    print(f"{vs}: {a.block} block ({len(es)} frames, {a.size} px), {path}, {k} references per pose")
    print("| choice | body SSIM | sharpness | not the nearest |\n|---|---:|---:|---:|")
    for way, (ssim, sharp, moved) in compare(gen, guide_gen, es, k).items():
        print(f"| {way} | {ssim:.3f} | {sharp:.2f} | {moved:.0%} |")
    person = person_mask(es.xy, es.size)  # (N, S, S) in {0, 1}
    share = float((gen.moved(es.xy_in) * person).sum() / person.sum())
    print(
        f"from the nearest frame, the net shows that frame's pixels moved on {share:.0%} of the person (its mask, "
        f"within {PERSON_WIDTH:g} body heights of a limb) and paints the rest"
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
