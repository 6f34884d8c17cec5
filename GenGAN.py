"""Adversarial skeleton -> image generators: gen_types 4-7 (pix2pix-style, BCE or WGAN-GP) and 8 (temporal GAN).

    python GenGAN.py <video> [--mode bce|wgan-gp] [--input image|vector] [--temporal] [--epochs N] [--resume]
    python GenGAN.py ../shared/data/taichi1.mp4 --mode bce --input image       # gen_type 4
    python GenGAN.py ../shared/data/taichi1.mp4 --mode wgan-gp --input image   # gen_type 7
    python GenGAN.py --temporal                                               # gen_type 8 on the built-in sample

netG is GenVanillaNN's network (U-Net from the skeleton map, decoder from the 26-vector). When the matching
GenVanillaNN checkpoint exists it starts from it (--init_from_vanilla, on by default then): the GAN only has to
fine-tune the blurry regression towards sharp frames, minutes on a CPU instead of hours. netD is a conditional
PatchGAN on (skeleton map, image) pairs at two scales (pix2pixHD); vector models are judged on the drawn map too.

  bce      L_G = lambda_L1 * L1 + GAN + lambda_FM * feature matching; lambda_L1 goes 100 -> 30 over training
  wgan-gp  critic with InstanceNorm, gradient penalty 10, n_critic critic steps per generator step
  temporal netG sees the skeleton maps of t, t-1, t-2; a second, temporal discriminator judges 3 consecutive
           frames with their skeletons, and an L1 on frame-to-frame differences keeps the output as steady as
           the real video. Train it on footage with continuous motion (not 1-in-10 sampled clips like taichi1).
"""

import argparse
from functools import partial
from pathlib import Path

from deepdance.adversarial import (
    SHARP_WEIGHT,
)
from deepdance.cli import INTERRUPTED, UserError
from deepdance.distributed import run_trainer
from deepdance.gan import GAN_MODE, GAN_MODES, IMAGES, IMAGES_SCRATCH, INPUT, INPUTS, N_CRITIC, GANConfig, GenGAN, train
from deepdance.networks import (
    D_NORMS,
    NDF,
    NUM_D,
)
from deepdance.options import add_training_args, check_training_args, config_from_args, open_target, parse_typed
from deepdance.recipes import size_recipe
from deepdance.trainer import describe_metrics


def main(argv=None):
    d = GANConfig()
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    epochs_help = (
        f"epochs (default: as many as {IMAGES:,} training images from a GenVanillaNN checkpoint, "
        f"{IMAGES_SCRATCH:,} from scratch)"
    )
    add_training_args(p, d, lr=d.lr_G, lr_help="netG's Adam learning rate", epochs_help=epochs_help, folder="gan-...")
    p.add_argument("--mode", default=GAN_MODE, choices=GAN_MODES, help=f"adversarial loss (default {GAN_MODE})")
    p.add_argument("--input", default=INPUT, choices=INPUTS, help=f"netG's input (default {INPUT})")
    p.add_argument("--temporal", action="store_true", help="gen_type 8: skeletons t, t-1, t-2 + temporal D")
    p.add_argument("--lr_D", type=float, default=d.lr_D, help=f"netD's Adam learning rate (default {d.lr_D})")
    p.add_argument("--n_critic", type=int, default=0, help=f"D steps per G step (default {N_CRITIC} wgan-gp, 1 bce)")
    p.add_argument("--lambda_FM", type=float, default=d.lambda_FM, help=f"bce feature matching (default {d.lambda_FM})")
    p.add_argument("--lambda_ssim", type=float, default=d.lambda_ssim, help=f"1 - SSIM (default {d.lambda_ssim})")
    p.add_argument("--lambda_GP", type=float, default=d.lambda_GP, help=f"gradient penalty (default {d.lambda_GP})")
    p.add_argument("--lambda_T", type=float, default=d.lambda_T, help=f"temporal: flicker L1 (default {d.lambda_T})")
    p.add_argument("--ndf", type=int, default=NDF, help=f"netD's first-layer width (default {NDF})")
    p.add_argument("--d_layers", type=int, default=None, help="netD's stride-2 layers, i.e. its patch size (default "
                   "log2(size / 16): 2 at 64 px, 34 px patches)")  # fmt: skip
    p.add_argument("--num_D", type=int, default=NUM_D, help=f"netD's scales (default {NUM_D}: full and half)")
    p.add_argument("--d_norm", default="instance", choices=D_NORMS, help="netD's normalisation (default instance)")
    p.add_argument(
        "--init_from_vanilla",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="start netG from the GenVanillaNN checkpoint of the same input (default: when one exists)",
    )
    p.add_argument("--force", action="store_true", help="retrain from scratch over an existing checkpoint")
    a, typed = parse_typed(p, argv)
    check_training_args(a, a.force, "--force")
    if a.n_critic < 0 or a.lr_D <= 0 or a.ndf < 1 or a.num_D < 1 or (a.d_layers is not None and a.d_layers < 1):
        raise UserError("need --n_critic >= 0, --lr_D > 0 and --ndf, --num_D, --d_layers >= 1")
    if min(a.lambda_FM, a.lambda_ssim, a.lambda_GP, a.lambda_T) < 0:
        raise UserError("need --lambda_FM, --lambda_ssim, --lambda_GP, --lambda_T >= 0")
    cfg = config_from_args(GANConfig, a, typed=typed, lr_G="lr")
    d_given = {"ndf": a.ndf, "n_layers": a.d_layers, "num_D": a.num_D, "norm": a.d_norm}
    cfg.d_args = {k: v for k, v in d_given.items() if v is not None and v != size_recipe(cfg.size).netD.get(k)} or None
    if typed & {"ndf", "d_layers", "num_D", "d_norm"}:  # netD's shape, typed: --resume judges it like the rest
        cfg.typed.add("d_args")
    target = open_target(a.video, cfg, gen_type=cfg.gen_type, out=a.out, retrain=a.force or a.resume,
                         force_option="--force", load=partial(GenGAN, device="cpu"), framing=a.framing)  # fmt: skip
    if target is None:  # trained already
        return 0
    ranks, vs, out = target
    summary = train(vs, cfg, out=out, resume=a.resume)
    if ranks.main:
        best = Path(summary["out"]) / "best.pth"
        print(f"best (val box SSIM - {SHARP_WEIGHT:g} |ln sharpness|): {describe_metrics(summary['best'])} -> {best}")
    return 0


if __name__ == "__main__":
    run_trainer(main, interrupted=INTERRUPTED + " (continue this training with --resume)")
