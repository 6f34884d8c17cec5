"""Skeleton -> image regression ("VanillaNN"): gen_type 2 (26-vector -> image) and 3 (skeleton map -> image). The
generator class that loads them (GenVanillaNN), their configuration (VanillaConfig) and the training model the one
loop runs (VanillaTraining: pixel L1, optionally gradient L1, 1 - SSIM and the MediaPipe terms). The networks are
deepdance/networks.py's; the command line is GenVanillaNN.py's.
"""

from dataclasses import asdict, dataclass
from pathlib import Path

from deepdance.checkpoints import (
    build_from_checkpoint,
    checkpoint_bytes,
    restore_progress,
    resume_checkpoint,
    resumed_config,
)
from deepdance.cli import UserError
from deepdance.distributed import autocast, setup_ranks, weights_digest
from deepdance.files import check_writable
from deepdance.gentypes import SIZE, checkpoint_dir, gen_type_of
from deepdance.losses import grad_l1, ssim_loss
from deepdance.metrics import image_metrics
from deepdance.networks import build_net, net_class, pose_input
from deepdance.recipes import size_recipe
from deepdance.trained import TrainedGenerator, render_poses
from deepdance.trainer import (
    RunConfig,
    TrainModel,
    fit,
    lambda_at,
    lambda_pair,
    lr_at,
    perceptual_columns,
    plot_losses,
    set_seed,
    start_run,
)
from deepdance.training_data import augment, split_data, val_block

import torch

# --------------------------------------------------------------------------- defaults

VARIANT = 2  # 1 = vector (gen_type 2), 2 = skeleton image (gen_type 3)
IMAGES = {1: 65_000, 2: 42_000}  # per variant, the default training length in images seen, not epochs: a short
# clip gets as many updates as a long one (docs/training.md, "Training length")
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
class VanillaConfig(RunConfig):
    """Everything that shapes a VanillaNN training run (stored in the checkpoint as `config`)."""

    batch: int = BATCH
    variant: int = VARIANT
    lr: float = LR
    weight_decay: float = WEIGHT_DECAY
    lambda_L1: tuple = LAMBDA_L1  # (start, end): linear over training
    lambda_grad: float = LAMBDA_GRAD
    lambda_ssim: float = LAMBDA_SSIM
    model_args: dict | None = None  # overrides of the size's net (experiments; not on the command line)

    def __post_init__(self):
        self.lambda_L1 = lambda_pair(self.lambda_L1)


class VanillaTraining(TrainModel):
    """gen_type 2 / 3 for the training loop: one net, pixel L1 (+ gradient L1 and 1 - SSIM when weighted)."""

    score = "box_ssim"

    def __init__(self, vs, cfg, *, out, resume, ranks):
        self.ranks, self.device, self.out = ranks, ranks.device, out
        self.gen_type = gen_type_of_variant(cfg.variant)
        train_pos, val_pos, self.fingerprint = split_data(vs)
        latest, fix = out / "latest.pth", "start over with force=true"  # fix: for a damaged latest.pth
        self.model_args = {**size_recipe(cfg.size).generator(cfg.variant), **(cfg.model_args or {})}
        self.state = None
        if resume:
            self.state = resume_checkpoint(vs, out=out, fingerprint=self.fingerprint, fmt=CKPT_FORMAT,
                                           gen_type=self.gen_type, size=cfg.size, force="force=true",
                                           keys=("optimizer",))  # fmt: skip
            self.model_args = self.state["model_args"]
            cfg = resumed_config(cfg, self.state["config"], path=latest, force="force=true")  # the run as it was
            net = build_from_checkpoint(net_class(cfg.variant), self.model_args, self.state["model"],
                                        what=f"checkpoint {latest}", fix=fix)  # fmt: skip
        else:
            net = build_net(cfg.variant, self.model_args)
        self.cfg, self.net = cfg, net.to(self.device, memory_format=torch.channels_last)
        self.nets = [self.net]
        if ranks.main:
            check_writable(out, need_bytes=checkpoint_bytes(self.net), what="checkpoints")  # now, not after an epoch
        # fused: one kernel per step instead of ~10 per tensor (CPU: 7 vs 16-22 ms a step at 2 threads)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        self.rng = torch.Generator().manual_seed(cfg.seed + 1)  # shuffling + augmentation, apart from the init's
        self.restored = self.state and restore_progress(self.state, path=latest, force="force=true", rng=self.rng,
                                                        optimizers=[(self.opt, "optimizer")],
                                                        score=self.score)  # fmt: skip
        # after a bad --resume failed, not before
        self.train_ds, val_ds = vs.dataset(train_pos, cfg.size), vs.dataset(val_pos, cfg.size)
        self.val = val_block(vs, val_ds, val_pos)
        self.n_items = len(self.train_ds)
        self.batch = self.images_per_step = ranks.split_batch(min(cfg.batch, self.n_items), available=self.n_items)
        self.steps_per_epoch = self.n_items // self.batch
        self.step_net = ranks.wrap(self.net)  # what the steps run (DistributedDataParallel under torchrun)
        self.what = f"variant {cfg.variant} ({VARIANTS[cfg.variant]}, gen_type {self.gen_type}) at {cfg.size} px"
        self.title = f"{vs.key}: {self.what}"

    def schedule(self, progress):
        lr = lr_at(progress, self.cfg.lr, warmup=WARMUP, floor=LR_FLOOR)
        for g in self.opt.param_groups:
            g["lr"] = lr
        return {"lr": lr, "lambda_L1": lambda_at(progress, self.cfg.lambda_L1)}

    def make_batch(self, idx, shard):
        return make_batch(self.train_ds, idx, self.cfg, self.rng, self.device, shard=shard)

    def step(self, batch, sched, *, step, check):
        x, real, xy = batch
        with autocast(self.device):
            fake = self.step_net(x)
        fake = fake.float()
        l1 = (fake - real).abs().mean()
        loss = sched["lambda_L1"] * l1
        if self.cfg.lambda_grad:
            loss = loss + self.cfg.lambda_grad * grad_l1(fake, real)
        if self.cfg.lambda_ssim:
            loss = loss + self.cfg.lambda_ssim * ssim_loss(fake, real)
        mp_loss, mp = self.mp_terms(fake, real, xy)
        loss = loss + mp_loss
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach(), "l1": l1.detach(), **mp}

    def validate(self):
        fake = render_poses(self.net, self.val.inputs[VARIANTS[self.cfg.variant]], lambda x: x, size=self.cfg.size,
                            device=self.device)  # fmt: skip
        return fake, image_metrics(fake, self.val.real, self.val.xy)

    def log_columns(self, means, sched):
        l1 = means["l1"] / 2.0  # L1 on [-1, 1] -> pixels in [0, 1]
        return {"lr": sched["lr"], "train_loss": means["loss"], "train_l1": l1, **perceptual_columns(means)}

    def checkpoint(self):
        return {
            "format": CKPT_FORMAT,
            "gen_type": self.gen_type,
            "variant": self.cfg.variant,
            "model_class": type(self.net).__name__,
            "model_args": self.model_args,
            "model": self.net.state_dict(),
            "optimizer": self.opt.state_dict(),
            "rng": self.rng.get_state(),
            "config": {**asdict(self.cfg), "world_size": self.ranks.world},
            "data": self.fingerprint,
        }

    def samples(self, fake):
        return self.val.maps, fake, self.val.real

    def epoch_line(self, *, epoch, now, means, metrics, row, is_best, run):
        return (f"epoch {epoch:3d}  {now / 60:5.1f} min  loss {row['train_loss']:.4f}  val L1 {metrics['l1']:.4f}  "
                f"PSNR {metrics['psnr']:5.2f}  SSIM {metrics['ssim']:.3f}  box SSIM {metrics['box_ssim']:.3f}"
                f"{' *' if is_best else '  '}  {row['img_per_s']:.0f} img/s  data {100 * row['data_share']:.1f}%"
                f"  {run.eta(now)}")  # fmt: skip

    def plot(self, log):
        plot_losses(log, self.out / "loss.png", title=self.title)


def train(vs, cfg=None, *, out=None, resume=False, verbose=True):
    """Train one variant on a VideoSkeleton; writes best.pth, latest.pth, train_log.csv, loss.png, samples.png.

    Returns a summary dict (epochs, images, seconds, images/s, data share, last and best validation metrics).
    """
    cfg = cfg or VanillaConfig()
    ranks = setup_ranks(cfg.device)  # one process, or this one's place among torchrun's
    verbose = verbose and ranks.main  # only rank 0 prints
    set_seed(cfg.seed)
    out = Path(out) if out else checkpoint_dir(vs, gen_type_of_variant(cfg.variant), cfg.size)
    with ranks.together():  # a problem on any rank stops them all, said once
        model = VanillaTraining(vs, cfg, out=out, resume=resume, ranks=ranks)
        run = start_run(model, model.cfg, out=out, images=IMAGES[model.cfg.variant], nan_hint="try a lower --lr",
                        verbose=verbose, ranks=ranks)  # fmt: skip
    n_params = sum(p.numel() for p in model.net.parameters())
    if verbose:
        resumed = f" from epoch {run.epoch}" if model.state else ""
        procs = f" x {ranks.world} processes ({model.batch // ranks.world} frames each)" if ranks.on else ""
        print(f"training {model.what}, {n_params / 1e6:.2f}M parameters, on {ranks.device}{procs}: "
              f"{model.n_items} train / {len(model.val.real)} selection-block frames, batch {model.batch}, "
              f"{run.plan()}{resumed} -> {out}")  # fmt: skip
    last = fit(model, run, ranks=ranks, verbose=verbose)
    return {"out": str(out), "epoch": run.epoch, "last": last, "best": run.best, "parameters": n_params,
            "weights_sha256": weights_digest(model.nets), **run.totals}  # fmt: skip


def make_batch(ds, idx, cfg, rng, device, shard=slice(None)):
    """This rank's share idx[shard] of a global batch idx: (net input (b, 26) or (b, 3, S, S), real (b, 3, S, S)) in
    [-1, 1], and the joints (b, 13, 2) in [0, 1], on device. Augmentation is drawn for the whole of idx (augment).

    Augmented samples have their frame warped and their input redrawn from the moved joints (crisp lines,
    as at inference), never warped.
    """
    maps, vec, real = ds.batch(idx[shard])  # (b, 3, S, S), (b, 26), (b, 3, S, S) in [-1, 1]
    real, xy = real.to(device), ds.xy[idx[shard]]
    if cfg.aug_prob > 0:
        xy, on = augment(ds.xy[idx][:, None], real, cfg, rng, shard=shard)
        if on.any():
            if cfg.variant == 2:
                maps[on] = pose_input(xy[on].numpy(), 2, cfg.size)
            else:
                vec = pose_input(xy.numpy(), 1, cfg.size)
    x = vec.to(device) if cfg.variant == 1 else maps.to(device).contiguous(memory_format=torch.channels_last)
    return x, real.contiguous(memory_format=torch.channels_last), xy.to(device)


# --------------------------------------------------------------------------- CLI
