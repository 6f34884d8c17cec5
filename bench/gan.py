"""Benchmark the GANs: quality and sharpness vs GenVanillaNN, flicker of the temporal GAN, training throughput.

    python -m bench.gan                          # taichi1 (if ../shared has it) + the sample, 10 min per model
    python -m bench.gan --budget 5 --taichi2     # also the temporal comparison with taichi2 as the target
    python -m bench.gan --only throughput        # just the CPU iterations/s table

Models missing from data/checkpoints/ are trained first for --budget minutes each (netG of the GANs starts from
the vanilla checkpoint, which is trained first when absent); existing ones are reused (--retrain redoes them).
1. Quality on the target's val block (taichi1 when present, else the sample): gen_types 3, 4, 7.
2. Flicker on a continuous clip (the sample's val block, 25 fps; --taichi2: taichi2's too): gen_types 4 vs 8.
3. Training throughput on the CPU: iterations/s and images/s per mode at 64 px (synthetic batches).
Metrics are Evaluate.py's (image_metrics + body-box sharpness + flicker), so the numbers match its tables.
"""

import argparse
import os
import time

from deepdance import adversarial, gan, vanilla
from deepdance.cache import VideoSkeleton
from deepdance.cli import UserError, run_cli
from deepdance.files import ROOT
from deepdance.gentypes import GEN_TYPES, SIZE, checkpoint_dir, load_generator
from deepdance.metrics import all_metrics

import numpy as np
import torch

SHARED = ROOT.parent / "shared" / "data"
BUDGET = 10.0  # minutes of training per missing model
THROUGHPUT_ITERS = 5  # timed iterations per mode (after one warm-up)


def ensure_vanilla(vs, variant, budget, retrain):
    """GenVanillaNN's best.pth for this target, trained for `budget` minutes when missing (or retrain)."""
    path = checkpoint_dir(vs, vanilla.gen_type_of_variant(variant)) / "best.pth"
    if retrain or not path.exists():
        print(f"training GenVanillaNN variant {variant} on {vs.key} for {budget:g} min")
        vanilla.train(vs, vanilla.VanillaConfig(variant=variant, time_budget=budget))
    return path


def gan_args(gen_type):
    """GANConfig fields (mode, input, temporal) of a GAN gen_type."""
    return {"mode": "bce", **GEN_TYPES[gen_type].settings}


def ckpt_path(vs, gen_type):
    return checkpoint_dir(vs, gen_type) / "best.pth"


def ensure_gan(vs, gen_type, budget, retrain):
    """A GAN's best.pth for this target, trained (from GenVanillaNN's netG) for `budget` minutes when missing."""
    args = gan_args(gen_type)
    if retrain or not ckpt_path(vs, gen_type).exists():
        ensure_vanilla(vs, gan.VARIANT_OF_INPUT[args["input"]], budget, False)
        print(f"training gen_type {gen_type} on {vs.key} for {budget:g} min")
        gan.train(vs, gan.GANConfig(**args, time_budget=budget))


def temporal_error(fake, real, consecutive):
    """Mean |(out_t - out_t-1) - (real_t - real_t-1)| / mean |real_t - real_t-1| over consecutive pairs.

    0 = the output changes exactly as the video does; unlike flicker it does not reward a frozen or lagging output
    (frozen scores 1), so it separates flicker from smoothness.
    """
    i = np.flatnonzero(consecutive)
    f, r = fake.astype(np.float32), real.astype(np.float32)
    d_real = r[i + 1] - r[i]
    return float(np.abs((f[i + 1] - f[i]) - d_real).mean() / np.abs(d_real).mean())


def measure(vs, gen_types):
    """{gen_type: metrics} on the target's contiguous test block, fed to each generator as one sequence."""
    val = vs.split().test
    xy, real = vs.skeletons()[val], vs.frames(SIZE)[val]
    consecutive = np.diff(vs.rows[val]) == 1
    results = {}
    for gt in gen_types:
        gen = load_generator(vs, gt, device="cpu")
        t = time.perf_counter()
        fake = gen.generate_batch(xy)
        ms = 1000 * (time.perf_counter() - t) / len(xy)
        ckpt = torch.load(ckpt_path(vs, gt), map_location="cpu", weights_only=True)
        trained = f"{ckpt['epoch']} ep, {ckpt['train_seconds'] / 60:.1f} min"
        if ckpt.get("init_from"):
            trained += " from gen_type 3" if ckpt["variant"] == 2 else " from gen_type 2"
        results[gt] = {**all_metrics(fake, real, xy, consecutive), "ms_per_frame": ms, "trained": trained,
                       "temporal_error": temporal_error(fake, real, consecutive)}  # fmt: skip
    return results, int(consecutive.sum())


def table(results, title):
    print(f"\n{title}\n")
    print("| gen_type | L1 | PSNR (dB) | SSIM | body-box SSIM | sharpness (1 = real) | flicker (1 = real) "
          "| temporal error (0 = real) | trained |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for gt, m in results.items():
        print(f"| {gt} | {m['l1']:.4f} | {m['psnr']:.2f} | {m['ssim']:.3f} | {m['box_ssim']:.3f} | "
              f"{m['sharpness']:.2f} | {m['flicker']:.2f} | {m['temporal_error']:.3f} | {m['trained']} |")  # fmt: skip


def quality(vs, budget, retrain):
    ensure_vanilla(vs, 2, budget, retrain)
    for gt in (4, 7):
        ensure_gan(vs, gt, budget, retrain)
    results, _ = measure(vs, (3, 4, 7))
    table(results, f"Quality on {vs.video_path.name}'s test block ({len(vs.split().test)} frames, 64 px)")
    ref = results[3]
    for gt in (4, 7):
        m = results[gt]
        d = m["box_ssim"] - ref["box_ssim"]
        print(f"gen_type {gt} vs GenVanillaNN variant 2 (gen_type 3): body-box SSIM {d:+.3f} "
              f"({'within' if d >= -0.02 else 'NOT within'} 0.02), sharpness {m['sharpness']:.2f} vs "
              f"{ref['sharpness']:.2f} ({100 * (m['sharpness'] / ref['sharpness'] - 1):+.0f}%)")  # fmt: skip


def temporal(vs, budget, retrain):
    for gt in (4, 8):
        ensure_gan(vs, gt, budget, retrain)
    results, pairs = measure(vs, (3, 4, 8))  # 3: the regression the GANs start from, for reference
    table(results, f"Flicker on {vs.video_path.name}'s val block ({pairs} consecutive pairs at {vs.fps:g} fps)")
    f4, f8 = results[4]["flicker"], results[8]["flicker"]
    print(f"\ntemporal GAN vs per-frame GAN: flicker {f4:.3f} -> {f8:.3f} ({100 * (f8 - f4) / f4:+.1f}%), "
          f"excess over the real video's |flicker - 1| {abs(f4 - 1):.3f} -> {abs(f8 - 1):.3f}; "
          f"frame-to-frame change {results[4]['tdiff']:.4f} -> {results[8]['tdiff']:.4f} "
          f"(real {results[4]['tdiff_real']:.4f}); temporal error {results[4]['temporal_error']:.3f} -> "
          f"{results[8]['temporal_error']:.3f}")  # fmt: skip


def throughput():
    """Iterations/s of one training step (D step + GenGAN step) per mode on synthetic 64 px batches."""
    print(
        f"\nTraining throughput on the CPU ({torch.get_num_threads()} torch threads, {os.cpu_count()} cores), 64 px\n"
    )
    print("| gen_type | mode | batch (frames) | iterations/s | images/s |")
    print("|---:|---|---:|---:|---:|")
    rng = torch.Generator().manual_seed(0)
    for gt, (mode, input, temporal) in {4: ("bce", "image", False), 5: ("bce", "vector", False),
                                        6: ("wgan-gp", "vector", False), 7: ("wgan-gp", "image", False),
                                        8: ("bce", "image", True)}.items():  # fmt: skip
        cfg = gan.GANConfig(mode=mode, input=input, temporal=temporal, init_from_vanilla=False, device="cpu")
        netG, _, netD, _, netD_T, _ = gan.build_models(cfg)
        model = gan.GANModel(cfg, netG, netD, netD_T, "cpu", rng)
        b = (
            cfg.batch // adversarial.D_T_FRAMES * adversarial.D_T_FRAMES if temporal else cfg.batch
        )  # frames per batch, as train()
        x = torch.rand(b, 26) * 2 - 1 if input == "vector" else torch.rand(b, 9 if temporal else 3, 64, 64) * 2 - 1
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        cond, real = (torch.rand(b, 3, 64, 64).contiguous(memory_format=torch.channels_last) for _ in range(2))
        model.optimize_parameters(x, cond, real, 100.0)
        t = time.perf_counter()
        for i in range(THROUGHPUT_ITERS):
            model.optimize_parameters(x, cond, real, 100.0, do_G=(i % (gan.N_CRITIC if mode == "wgan-gp" else 1)) == 0)
        dt = (time.perf_counter() - t) / THROUGHPUT_ITERS
        print(f"| {gt} | {mode}{' temporal' if temporal else ''}, {input} | {b} | {1 / dt:.2f} | {b / dt:.1f} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", type=float, default=BUDGET, help=f"minutes per missing model (default {BUDGET:g})")
    p.add_argument("--retrain", action="store_true", help="retrain the GANs even when checkpoints exist")
    p.add_argument("--taichi2", action="store_true", help="also train and measure 4 vs 8 with taichi2 as the target")
    p.add_argument("--only", choices=("quality", "temporal", "throughput"), default=None, help="one section only")
    a = p.parse_args(argv)
    if a.budget <= 0:
        raise UserError("--budget must be > 0 minutes")
    taichi1 = SHARED / "taichi1.mp4"
    if a.only in (None, "quality"):
        quality(VideoSkeleton(taichi1 if taichi1.exists() else None, verbose=False), a.budget, a.retrain)
    if a.only in (None, "temporal"):
        temporal(VideoSkeleton(None, verbose=False), a.budget, a.retrain)
        if a.taichi2:
            temporal(VideoSkeleton(SHARED / "taichi2.mp4", verbose=False), a.budget, a.retrain)
    if a.only in (None, "throughput"):
        throughput()


if __name__ == "__main__":
    run_cli(main)
