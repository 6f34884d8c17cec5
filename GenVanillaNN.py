"""Skeleton -> image regression ("VanillaNN"): gen_type 2 (26-vector -> image) and 3 (skeleton map -> image).

    python GenVanillaNN.py <video> <force> <variant>          # reference CLI: variant 1 = vector, 2 = image
    python GenVanillaNN.py ../shared/data/taichi1.mp4 false 2
    python GenVanillaNN.py                                    # the built-in sample, variant 2
    python GenVanillaNN.py data/taichi1.mp4 false 2 --time_budget 7

This file holds the two networks (GenGAN's netG too), their training loop and the generator that loads them.
The machinery both trainers share (bookkeeping, checkpoints, augmentation, the CLI) is Train.py; the measures
are Metrics.py.
"""

import os

# Before torch loads its OpenMP runtime (ruff keeps this above the imports): on a shared CPU, threads that
# spin-wait for a descheduled sibling made 2-thread training 4-7x slower (README "Training speed").
# OMP_WAIT_POLICY=ACTIVE in the environment overrides it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from Checkpoints import (  # noqa: E402
    build_from_checkpoint,
    checkpoint_bytes,
    restore_progress,
    resume_checkpoint,
    resumed_config,
    resumed_log,
)
from Distributed import run_trainer, setup_ranks, weights_digest  # noqa: E402
from GenTypes import SIZE, checkpoint_dir, gen_type_of  # noqa: E402
from Metrics import image_metrics  # noqa: E402
from Networks import build_net, default_model_args, net_class, pose_input  # noqa: E402
from Skeleton import INTERRUPTED, UserError, check_writable, parse_bool  # noqa: E402
from Train import (  # noqa: E402
    RunConfig,
    TrainedGenerator,
    TrainRun,
    add_training_args,
    augment,
    autocast,
    check_training_args,
    config_from_args,
    describe,
    epochs_for,
    lambda_at,
    lambda_pair,
    lr_at,
    open_target,
    plot_losses,
    render_poses,
    set_seed,
    split_data,
    ssim_loss,
    val_block,
)

# --------------------------------------------------------------------------- defaults

VARIANT = 2  # 1 = vector (gen_type 2), 2 = skeleton image (gen_type 3)
IMAGES = {1: 65_000, 2: 42_000}  # per variant, the default training length in images seen, not epochs: a short
# clip gets as many updates as a long one (40 epochs of a 400-frame clip were a third of taichi1's); taichi1 gets
# about its former 60 / 40 epochs, ~7 min on a quiet 2-core CPU (README "Training length")
BATCH = 32  # training frames per step
LR = 2e-3  # AdamW peak learning rate (linear warm-up, then cosine decay to LR * LR_FLOOR)
LR_FLOOR = 0.02
WARMUP = 0.03  # share of training spent warming up
WEIGHT_DECAY = 1e-4
LAMBDA_L1 = (1.0, 1.0)  # pixel L1 (the reference's loss), constant
LAMBDA_GRAD = 0.0  # L1 between image gradients, against blur: off, since on taichi1 0.5 gave a worse val L1 and
# body-box SSIM than pure L1 after 40 epochs
LAMBDA_SSIM = 0.0  # weight of 1 - SSIM (Train.ssim_loss) next to L1: asks for detail where L1 would blur
CKPT_FORMAT = "deepdance-vanilla-1"
RETRAIN = "retrain it (GenVanillaNN.py with force=true)"  # the fix for a best.pth this version cannot use

VARIANTS = {1: "vector", 2: "image"}  # variant -> netG's input ("image" = the skeleton map)


def gen_type_of_variant(variant):
    return gen_type_of("GenVanillaNN", variant=variant)


# --------------------------------------------------------------------------- losses


def grad_l1(fake, real):
    """L1 between horizontal and vertical finite differences: penalises blurred edges, which pixel L1 tolerates."""
    dx = (fake[..., :, 1:] - fake[..., :, :-1]) - (real[..., :, 1:] - real[..., :, :-1])
    dy = (fake[..., 1:, :] - fake[..., :-1, :]) - (real[..., 1:, :] - real[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()


# --------------------------------------------------------------------------- the generator


class GenVanillaNN(TrainedGenerator):
    """A trained VanillaNN as a generator: generate(ske) / generate_batch(xy) -> uint8 BGR frames."""

    FORMAT, RETRAIN = CKPT_FORMAT, RETRAIN

    def net_class(self, ckpt):
        if self.gen_type not in (2, 3):
            raise UserError(f"{self.what} has gen_type {self.gen_type}; GenVanillaNN handles 2 and 3")
        self.variant = {2: 1, 3: 2}[self.gen_type]
        return net_class(self.variant)

    def inputs(self, poses):
        return pose_input(poses, self.variant, self.size)


def load_generator(vs, gen_type, *, size=SIZE, device="auto", allow_foreign=False):
    """The best trained model of gen_type 2 or 3 for this target, ready to generate; UserError names how to train it
    (or, for a checkpoint trained on other footage, that it is foreign: allow_foreign uses it with a warning)."""
    if gen_type not in (2, 3):
        raise UserError(f"GenVanillaNN handles gen_type 2 (vector) and 3 (skeleton image), not {gen_type}")
    return GenVanillaNN.load_best(vs, gen_type, size=size, device=device, allow_foreign=allow_foreign)


# --------------------------------------------------------------------------- training


@dataclass
class TrainConfig(RunConfig):
    """Everything that shapes a VanillaNN training run (stored in the checkpoint as `config`)."""

    batch: int = BATCH
    variant: int = VARIANT
    lr: float = LR
    weight_decay: float = WEIGHT_DECAY
    lambda_L1: tuple = LAMBDA_L1  # (start, end): linear over training
    lambda_grad: float = LAMBDA_GRAD
    lambda_ssim: float = LAMBDA_SSIM
    model_args: dict | None = None  # overrides of default_model_args (experiments; not on the command line)

    def __post_init__(self):
        self.lambda_L1 = lambda_pair(self.lambda_L1)


def train(vs, cfg=None, *, out=None, resume=False, verbose=True):
    """Train one variant on a VideoSkeleton; writes best.pth, latest.pth, train_log.csv, loss.png, samples.png.

    Returns a summary dict (epochs, images, seconds, images/s, data share, last and best validation metrics).
    """
    # ---- setup: data, net (fresh or resumed), optimizer, the run's bookkeeping
    cfg = cfg or TrainConfig()
    ranks = setup_ranks(cfg.device)  # one process, or this one's place among torchrun's
    device, verbose = ranks.device, verbose and ranks.main  # only rank 0 prints
    set_seed(cfg.seed)
    gen_type = gen_type_of_variant(cfg.variant)
    out = Path(out) if out else checkpoint_dir(vs, gen_type, cfg.size)
    with ranks.together():  # a problem on any rank stops them all, said once
        train_pos, val_pos, fingerprint = split_data(vs)
        state, latest, fix = None, out / "latest.pth", "start over with force=true"  # fix: for a damaged latest.pth
        model_args = {**default_model_args(cfg.variant, cfg.size), **(cfg.model_args or {})}
        if resume:
            state = resume_checkpoint(vs, out=out, fingerprint=fingerprint, fmt=CKPT_FORMAT, gen_type=gen_type,
                                      size=cfg.size, force="force=true", keys=("optimizer",))  # fmt: skip
            model_args = state["model_args"]
            cfg = resumed_config(cfg, state["config"], path=latest, force="force=true")  # the run as it was configured
            net = build_from_checkpoint(net_class(cfg.variant), model_args, state["model"],
                                        what=f"checkpoint {latest}", fix=fix)  # fmt: skip
        else:
            net = build_net(cfg.variant, model_args)
        net = net.to(device, memory_format=torch.channels_last)
        if ranks.main:
            check_writable(out, need_bytes=checkpoint_bytes(net), what="checkpoints")  # now, not after an epoch
        # fused: one kernel per step instead of ~10 per tensor (CPU: 7 vs 16-22 ms a step at 2 threads)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        rng = torch.Generator().manual_seed(cfg.seed + 1)  # shuffling + augmentation, apart from the init's stream
        restored = state and restore_progress(state, path=latest, force="force=true", rng=rng,
                                              optimizers=[(opt, "optimizer")], score="box_ssim")  # fmt: skip
        train_ds, val_ds = vs.dataset(train_pos, cfg.size), vs.dataset(val_pos, cfg.size)  # a bad --resume failed first
        val = val_block(vs, val_ds, val_pos)
        bsz = ranks.split_batch(min(cfg.batch, len(train_ds)), available=len(train_ds))  # the global batch
        epochs = cfg.epochs or epochs_for(IMAGES[cfg.variant], len(train_ds) // bsz * bsz)
        run = TrainRun(out, epochs=epochs, steps_per_epoch=len(train_ds) // bsz,
                       images_per_step=bsz, time_budget=cfg.time_budget, best={"box_ssim": -1.0}, restored=restored,
                       log_rows=resumed_log(state, out), nan_hint="try a lower --lr", verbose=verbose,
                       ranks=ranks)  # fmt: skip
    model = ranks.wrap(net)  # what the steps run (DistributedDataParallel under torchrun); net: validation, saving
    what = f"variant {cfg.variant} ({VARIANTS[cfg.variant]}, gen_type {gen_type}) at {cfg.size} px"
    n_params = sum(p.numel() for p in net.parameters())
    if verbose:
        resumed = f" from epoch {run.epoch}" if state else ""
        procs = f" x {ranks.world} processes ({bsz // ranks.world} frames each)" if ranks.on else ""
        print(f"training {what}, {n_params / 1e6:.2f}M parameters, on {device}{procs}: {len(train_ds)} train / "
              f"{len(val_ds)} selection-block frames, batch {bsz}, {run.plan()}{resumed} -> {out}")  # fmt: skip

    def plot(log):
        plot_losses(log, out / "loss.png", title=f"{vs.key}: {what}")

    # ---- the epoch loop
    last = None
    with run:  # holds the checkpoint folder: a second training into it refuses
        for epoch in run.epochs():
            perm = torch.randperm(len(train_ds), generator=rng)  # the same on every rank: one seed, the same draws
            loss_sum, l1_sum = torch.zeros((), device=device), torch.zeros((), device=device)  # no per-step sync
            bar = run.bar()
            for i in bar:
                t0 = time.perf_counter()
                progress = run.progress(run.now())  # by global steps, or by rank 0's clock with a time budget
                lr = lr_at(progress, cfg.lr, warmup=WARMUP, floor=LR_FLOOR)
                for g in opt.param_groups:
                    g["lr"] = lr
                idx = perm[i * bsz : (i + 1) * bsz]  # the global batch; this rank trains on idx[ranks.shard]
                x, real = make_batch(train_ds, idx, cfg, rng, device, shard=ranks.shard)
                t1 = time.perf_counter()
                with autocast(device):
                    fake = model(x)
                fake = fake.float()
                l1 = (fake - real).abs().mean()
                loss = lambda_at(progress, cfg.lambda_L1) * l1
                if cfg.lambda_grad:
                    loss = loss + cfg.lambda_grad * grad_l1(fake, real)
                if cfg.lambda_ssim:
                    loss = loss + cfg.lambda_ssim * ssim_loss(fake, real)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_sum += loss.detach()
                l1_sum += l1.detach()
                t2 = time.perf_counter()
                if i % 10 == 0 or i == run.steps_per_epoch - 1:  # the NaN guard syncs: not every step
                    total = ranks.mean(loss_sum).item()  # every rank sees the same number and stops alike
                    run.check("loss", total, lr)
                    bar.set_postfix(loss=f"{total / (i + 1):.4f}", lr=f"{lr:.2g}")
                run.count(len(idx), t0, t1, t2)
                if run.out_of_time():
                    break  # out of time: this partial epoch still gets validated and saved
            bar.close()
            loss_sum, l1_sum = ranks.mean(loss_sum), ranks.mean(l1_sum)  # the global batch's, as one process logs
            ranks.check_same_weights([net], epoch)
            if not ranks.main:
                continue  # validation, log, checkpoints: rank 0's alone, the others wait at the next step

            # ---- the epoch's tail: validate, log, checkpoint, plot
            val_fake = render_poses(net, val.inputs[VARIANTS[cfg.variant]], lambda x: x, size=cfg.size, device=device)
            metrics = image_metrics(val_fake, val.real, val.xy)
            now = run.elapsed()
            n_steps = max(1, run.steps_done)
            last = run.row(
                now,
                lr=lr,
                train_loss=loss_sum.item() / n_steps,
                train_l1=l1_sum.item() / n_steps / 2.0,
                **{f"val_{k}": v for k, v in metrics.items()},
            )  # fmt: skip  (L1 [-1, 1] -> [0, 1])
            ckpt = {
                "format": CKPT_FORMAT,
                "gen_type": gen_type,
                "variant": cfg.variant,
                "size": cfg.size,
                "model_class": type(net).__name__,
                "model_args": model_args,
                "model": net.state_dict(),
                "optimizer": opt.state_dict(),
                "rng": rng.get_state(),
                "config": {**asdict(cfg), "world_size": ranks.world},
                "data": fingerprint,
            }
            is_best = run.end_epoch(now=now, row=last, metrics=metrics, score="box_ssim", ckpt=ckpt,
                                    schedule={"lr": lr}, plot=plot, samples=(val.maps, val_fake, val.real))  # fmt: skip
            if verbose:
                tqdm.write(
                    f"epoch {epoch:3d}  {now / 60:5.1f} min  loss {last['train_loss']:.4f}  "
                    f"val L1 {metrics['l1']:.4f}  "
                    f"PSNR {metrics['psnr']:5.2f}  SSIM {metrics['ssim']:.3f}  box SSIM {metrics['box_ssim']:.3f}"
                    f"{' *' if is_best else '  '}  {last['img_per_s']:.0f} img/s  data {100 * last['data_share']:.1f}%"
                    f"  {run.eta(now)}"
                )
    return {"out": str(out), "epoch": run.epoch, "last": last, "best": run.best, "parameters": n_params,
            "weights_sha256": weights_digest([net]), **run.totals}  # fmt: skip


def make_batch(ds, idx, cfg, rng, device, shard=slice(None)):
    """This rank's share idx[shard] of a global batch idx: (net input (b, 26) or (b, 3, S, S), real (b, 3, S, S)) on
    device, in [-1, 1]. Augmentation is drawn for the whole of idx (Train.augment).

    Augmented samples have their frame warped and their input redrawn from the moved joints (crisp lines,
    as at inference), never warped.
    """
    maps, vec, real = ds.batch(idx[shard])  # (b, 3, S, S), (b, 26), (b, 3, S, S) in [-1, 1]
    real = real.to(device)
    if cfg.aug_prob > 0:
        xy, on = augment(ds.xy[idx][:, None], real, cfg, rng, shard=shard)
        if on.any():
            if cfg.variant == 2:
                maps[on] = pose_input(xy[on].numpy(), 2, cfg.size)
            else:
                vec = pose_input(xy.numpy(), 1, cfg.size)
    x = vec.to(device) if cfg.variant == 1 else maps.to(device).contiguous(memory_format=torch.channels_last)
    return x, real.contiguous(memory_format=torch.channels_last)


# --------------------------------------------------------------------------- CLI


def main(argv=None):
    d = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_args(p, d, lr=d.lr, lr_help="AdamW peak learning rate", folder="vanilla-...",
                      epochs_help=f"(default: as many as {IMAGES[1]:,} training images for variant 1, "
                                  f"{IMAGES[2]:,} for 2, whatever the clip's length)")  # fmt: skip
    p.add_argument("force", nargs="?", default="false", help="true: retrain from scratch (default false)")
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
    a = p.parse_args(argv)
    if min(a.lambda_grad, a.lambda_ssim) < 0:
        raise UserError("need --lambda_grad, --lambda_ssim >= 0")
    force = parse_bool(a.force)
    check_training_args(a, force, "force=true")
    cfg = config_from_args(TrainConfig, a, aug_prob="aug")
    target = open_target(a.video, cfg, gen_type=gen_type_of_variant(cfg.variant), out=a.out, retrain=force or a.resume,
                         force_option="force=true", load=partial(GenVanillaNN, device="cpu"),
                         framing=a.framing)  # fmt: skip
    if target is None:  # trained already
        return 0
    ranks, vs, out = target
    summary = train(vs, cfg, out=out, resume=a.resume)
    if ranks.main:
        print(f"best: {describe(summary['best'])} -> {Path(summary['out']) / 'best.pth'}")
    return 0


if __name__ == "__main__":
    run_trainer(main, interrupted=INTERRUPTED + " (continue this training with --resume)")
