"""gen_type 9, a generator that keeps real texture: the nearest training frame, moved and corrected by a U-Net.

    python GenTexture.py <video> [--epochs N] [--size 64|128] [--resume] [--force]
    python GenTexture.py ../shared/data/taichi1.mp4
    python GenTexture.py                                      # the built-in sample

Regression (gen_types 2-8) blurs because one network must memorise every pixel of the person; retrieval
(gen_type 1) keeps the texture but cannot move a limb. Here retrieval gives the network a real frame to start
from: for a query pose, the target frame whose skeleton is nearest (gen_type 1's match, over the training
block), and that frame's skeleton map. A U-Net (Networks.UNet, 9 input channels) sees the query's skeleton map,
the retrieved frame and its map, and returns a flow, a mask and colours: the output is the retrieved frame
warped by the flow where the mask says so, the colours elsewhere. Real pixels that only need moving are moved,
not redrawn.

While training, the frame retrieved for a training frame is never the frame itself nor one of its neighbours:
every frame within --exclude cache rows of it is left out (they are near-duplicates; the network would learn
to copy, and at test time no such twin exists). By default (auto) the window is as wide as makes the references
as far in pose as the selection block's poses are from the training frames: the frame rate sets it, not a
constant. Training runs through the one training loop (deepdance/trainer.py: checkpoints, --resume, augmentation,
the shared options) and is L1, optionally plus GenGAN's adversarial loss (--lambda_adv).
"""

import argparse
from functools import partial
from pathlib import Path

from deepdance.cache import VideoSkeleton
from deepdance.cli import INTERRUPTED, UserError, run_cli
from deepdance.distributed import pick_device
from deepdance.options import (
    add_training_args,
    check_training_args,
    checkpoint_out,
    config_from_args,
    parse_typed,
    trained_already,
)
from deepdance.recipes import TEXTURE_LAMBDA_SSIM
from deepdance.skeleton import PERSON_WIDTH
from deepdance.texture import (
    BASES,
    GEN_TYPE,
    IMAGES,
    VANILLA_TYPE,
    GenTexture,
    TextureConfig,
    exclude_arg,
    train,
)
from deepdance.trainer import describe_metrics


def main(argv=None):
    d = TextureConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_args(p, d, lr=d.lr, lr_help="AdamW peak learning rate", folder="texture-<size>",
                      epochs_help=f"(default: as many as {IMAGES:,} training images, whatever the clip's "
                                  "length)")  # fmt: skip
    p.add_argument("--force", action="store_true", help="retrain from scratch over an existing best.pth")
    p.add_argument(
        "--exclude",
        default=str(d.exclude),
        help="training: cache rows each side of a frame its reference may not come from, or auto: as far in pose "
        f"as the selection block is from the training frames (default {d.exclude})",
    )
    p.add_argument(
        "--ref_k",
        type=int,
        default=d.ref_k,
        help=f"training: references drawn from this many nearest allowed frames (default {d.ref_k})",
    )
    p.add_argument(
        "--lambda_warp",
        type=float,
        default=d.lambda_warp,
        help=f"L1 weight of the warped reference alone (default {d.lambda_warp})",
    )
    p.add_argument(
        "--lambda_mask",
        type=float,
        default=d.lambda_mask,
        help=f"cost of painting a pixel instead of moving the reference's (default {d.lambda_mask})",
    )
    p.add_argument(
        "--lambda_mask_bg",
        type=float,
        default=d.lambda_mask_bg,
        help=f"the same cost off the person (more than {PERSON_WIDTH:g} body heights from every limb; default "
        f"{d.lambda_mask_bg:g}: the background may be painted)",
    )
    p.add_argument(
        "--lambda_ssim",
        type=float,
        default=d.lambda_ssim,
        help="weight of 1 - SSIM of the output (default, by --size: "
        + ", ".join(f"{w:g} at {s} px" for s, w in TEXTURE_LAMBDA_SSIM.items())
        + " and up)",
    )
    p.add_argument(
        "--lambda_adv",
        type=float,
        default=d.lambda_adv,
        help=f"adversarial weight (GenGAN's BCE + feature matching; 0 = L1 only; default {d.lambda_adv})",
    )
    p.add_argument(
        "--base",
        default=d.base,
        choices=BASES,
        help=f"correct gen_type {VANILLA_TYPE}'s frame where the reference does not fit (vanilla), paint from scratch "
        f"(none), or auto: vanilla when its best.pth of this data and split exists (default {d.base})",
    )
    a, typed = parse_typed(p, argv)
    check_training_args(a, a.force, "--force")
    a.exclude = exclude_arg(a.exclude)
    lambdas = (a.lambda_adv, a.lambda_warp, a.lambda_mask, a.lambda_ssim or 0.0, a.lambda_mask_bg)
    if a.ref_k < 1 or min(lambdas) < 0:
        raise UserError("need --ref_k >= 1 and --lambda_warp, --lambda_mask(_bg), --lambda_ssim, --lambda_adv >= 0")
    cfg = config_from_args(TextureConfig, a, typed=typed)
    pick_device(cfg.device)  # fail on a missing GPU before any video work
    vs = VideoSkeleton(a.video, framing=a.framing)
    out = checkpoint_out(a.out, vs, GEN_TYPE, cfg.size)
    load = partial(GenTexture, vs=vs, device="cpu", gen_type=GEN_TYPE, size=cfg.size)
    if trained_already(out, retrain=a.force or a.resume, force_option="--force", load=load, vs=vs):
        return 0
    summary = train(vs, cfg, out=out, resume=a.resume)
    best = Path(summary["out"]) / "best.pth"
    print(f"best (val box SSIM - 0.05 |ln sharpness|): {describe_metrics(summary['best'])} -> {best}")
    return 0


if __name__ == "__main__":
    run_cli(main, interrupted=INTERRUPTED + " (continue this training with --resume)")
