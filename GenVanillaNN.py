"""Skeleton -> image regression ("VanillaNN"): gen_type 2 (26-vector -> image) and 3 (skeleton map -> image).

    python GenVanillaNN.py <video> <force> <variant>          # reference CLI: variant 1 = vector, 2 = image
    python GenVanillaNN.py ../shared/data/taichi1.mp4 false 2
    python GenVanillaNN.py                                    # the built-in sample, variant 2
    python GenVanillaNN.py data/taichi1.mp4 false 2 --time_budget 7

The networks are deepdance/networks.py's (GenGAN's netG too); the generator and the training model are
deepdance/vanilla.py's, run by the one training loop (deepdance/trainer.py).
"""

import argparse
from functools import partial
from pathlib import Path

from deepdance.cli import INTERRUPTED, UserError, parse_bool
from deepdance.distributed import run_trainer
from deepdance.options import add_training_args, check_training_args, config_from_args, open_target, parse_typed
from deepdance.trainer import describe_metrics
from deepdance.vanilla import IMAGES, VARIANT, GenVanillaNN, VanillaConfig, gen_type_of_variant, train


def main(argv=None):
    d = VanillaConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_args(p, d, lr=d.lr, lr_help="AdamW peak learning rate", folder="vanilla-...",
                      epochs_help=f"(default: as many as {IMAGES[1]:,} training images for variant 1, "
                                  f"{IMAGES[2]:,} for 2, whatever the clip's length)")  # fmt: skip
    p.add_argument("force", nargs="?", default="false", help="true: retrain from scratch (default false)")
    p.add_argument(
        "--force", dest="force_flag", action="store_true", help="the same as force=true, as the other trainers take it"
    )
    p.add_argument(
        "variant",
        nargs="?",
        type=int,
        default=VARIANT,
        choices=(1, 2),
        help=f"1 = 26-vector -> image (gen_type 2), 2 = skeleton map -> image (gen_type 3) (default {VARIANT})",
    )
    p.add_argument("--lambda_grad", type=float, default=d.lambda_grad, help=f"gradient L1 (default {d.lambda_grad})")
    p.add_argument("--lambda_ssim", type=float, default=d.lambda_ssim, help=f"1 - SSIM (default {d.lambda_ssim})")
    a, typed = parse_typed(p, argv)
    if min(a.lambda_grad, a.lambda_ssim) < 0:
        raise UserError("need --lambda_grad, --lambda_ssim >= 0")
    force = parse_bool(a.force) or a.force_flag
    check_training_args(a, force, "force=true")
    cfg = config_from_args(VanillaConfig, a, typed=typed)
    target = open_target(a.video, cfg, gen_type=gen_type_of_variant(cfg.variant), out=a.out, retrain=force or a.resume,
                         force_option="force=true", load=partial(GenVanillaNN, device="cpu"),
                         framing=a.framing)  # fmt: skip
    if target is None:  # trained already
        return 0
    ranks, vs, out = target
    summary = train(vs, cfg, out=out, resume=a.resume)
    if ranks.main:
        print(f"best: {describe_metrics(summary['best'])} -> {Path(summary['out']) / 'best.pth'}")
    return 0


if __name__ == "__main__":
    run_trainer(main, interrupted=INTERRUPTED + " (continue this training with --resume)")
