"""Adversarial skeleton -> image generators, gen_types 4-7 (pix2pix-style, BCE or WGAN-GP) and 8 (temporal): the
generator class that loads them (GenGAN), their configuration (GANConfig), one training iteration in pix2pix's order
(GANModel: a D step, then a G step) and the training model the one loop runs (GANTraining). The command line, and
what each mode does, is GenGAN.py's.
"""

from dataclasses import asdict, dataclass
from pathlib import Path

from deepdance.adversarial import (
    D_T_FRAMES,
    LAMBDA_GP,
    critic_score,
    feature_matching,
    gan_loss,
    gradient_penalty,
    val_metrics,
)
from deepdance.checkpoints import (
    CKPT_KEYS,
    build_from_checkpoint,
    checkpoint_bytes,
    restore_progress,
    resume_checkpoint,
    resumed_config,
    start_checkpoint,
    unusable,
)
from deepdance.cli import UserError
from deepdance.distributed import autocast, setup_ranks, weights_digest
from deepdance.files import check_writable
from deepdance.gentypes import SIZE, checkpoint_dir, gen_type_of
from deepdance.losses import ssim_loss
from deepdance.networks import MultiscaleDiscriminator, build_net, net_class, pose_input
from deepdance.recipes import size_recipe
from deepdance.skeleton import N_JOINTS
from deepdance.trained import TrainedGenerator, render_poses
from deepdance.trainer import (
    RunConfig,
    TrainModel,
    fit,
    lambda_at,
    lambda_pair,
    lr_at,
    plot_curves,
    plot_losses,
    set_seed,
    start_run,
)
from deepdance.training_data import augment, history_xy, sequence_starts, split_data, train_windows, val_block
from deepdance.vanilla import CKPT_FORMAT as VANILLA_FORMAT
from deepdance.vanilla import VARIANTS, gen_type_of_variant

import numpy as np
import torch

# --------------------------------------------------------------------------- defaults

GAN_MODE = "bce"  # "bce" (pix2pix / pix2pixHD) or "wgan-gp"
INPUT = "image"  # "image" (skeleton map, U-Net) or "vector" (26-vector, decoder)
IMAGES = 13_000  # default length in training images (not epochs, see GenVanillaNN.IMAGES) fine-tuning from a
# GenVanillaNN checkpoint: about 12 epochs of taichi1
IMAGES_SCRATCH = 65_000  # without one
BATCH = 16
LR_G = 1e-4  # Adam; lower than pix2pix's 2e-4 because netG usually starts from a trained regression
LR_D = 2e-4
BETAS = {"bce": (0.5, 0.999), "wgan-gp": (0.0, 0.9)}  # pix2pix's and Gulrajani et al.'s Adam settings
WARMUP = 0.05  # share of training with a linear LR warm-up (then cosine decay to LR x LR_FLOOR, Train.lr_at)
LR_FLOOR = 0.02
LAMBDA_L1 = (100.0, 30.0)  # L1 weight at the start and the end of training (the reference's dynamic schedule)
LAMBDA_FM = 10.0  # pix2pixHD's discriminator feature matching (bce mode)
LAMBDA_SSIM = 0.0  # weight of 1 - SSIM (Train.ssim_loss), next to lambda_L1's L1
LAMBDA_DRIFT = 1e-3  # keeps the critic's values near 0 (Karras et al.): an unbounded critic drifts away
N_CRITIC = 5  # WGAN-GP: critic steps per generator step
LAMBDA_T = 500.0  # temporal: L1 between generated and real frame-to-frame differences (flicker); a tenth of it
# left the output flickering much more (docs/RESULTS.md, temporal GAN flicker)
HISTORY = 2  # temporal netG also sees the skeletons of t-1 .. t-HISTORY
GAN_AUG_PROB = 0.5  # share of training windows shifted/zoomed (Train.augment)
D_WINS = 0.95  # D right about this share of patches (bce) for an epoch: reported as D overpowering G
D_GAP_EPOCHS = 3  # wgan-gp: the critic gap growing this many epochs in a row is reported the same way
CKPT_FORMAT = "deepdance-gan-1"
GAN_KEYS = (*CKPT_KEYS, "variant", "temporal")  # what every GAN checkpoint needs to rebuild its generator
# What --resume needs besides Train.RESUME_KEYS.
GAN_RESUME_KEYS = ("variant", "temporal", "netD", "netD_T", "optimizer_G", "optimizer_D", "netD_args", "netD_T_args",
                   "init_from")  # fmt: skip
RETRAIN = "retrain it (GenGAN.py with --force)"  # the fix for a best.pth this version cannot use
VANILLA_FIX = "retrain it (GenVanillaNN.py with force=true) or pass --no-init_from_vanilla"  # its GenVanillaNN start

GAN_MODES = ("bce", "wgan-gp")
INPUTS = ("image", "vector")
VARIANT_OF_INPUT = {v: k for k, v in VARIANTS.items()}  # GenVanillaNN variant of netG


# --------------------------------------------------------------------------- temporal inputs


def temporal_input(xyw, size):
    """Skeleton maps of pose windows stacked on channels: (N, K, 13, 2) -> (N, 3K, S, S) float in [-1, 1]."""
    n, k = xyw.shape[:2]
    return pose_input(np.asarray(xyw).reshape(-1, N_JOINTS, 2), 2, size).reshape(n, 3 * k, size, size)


def expand_stem(state, model_args, in_ch):
    """A vanilla UNet's weights for a UNet with more input channels: the extra ones get zero weights.

    The first 3 channels stay the current skeleton map, so the expanded net starts as the vanilla one.
    """
    state = dict(state)
    w = state["stem.0.weight"]  # (C0, 3 * ps^2, 3, 3): pixel_unshuffle puts channel c at c*ps^2 .. (c+1)*ps^2 - 1
    extra = w.new_zeros(w.shape[0], (in_ch - model_args["in_ch"]) * model_args["ps"] ** 2, *w.shape[2:])
    state["stem.0.weight"] = torch.cat([w, extra], dim=1)
    return state, {**model_args, "in_ch": in_ch}


# --------------------------------------------------------------------------- the generator


class GenGAN(TrainedGenerator):
    """A trained GAN as a generator: generate(ske) / generate_batch(xy) -> uint8 BGR frames.

    gen_type 8 reads generate_batch's poses as one consecutive sequence (t-1, t-2 built from it, the first pose
    repeated before it) and generate() keeps the last poses it saw; `coherent` tells callers to pass whole clips.
    """

    FORMAT, KEYS, RETRAIN = CKPT_FORMAT, GAN_KEYS, RETRAIN

    def net_class(self, ckpt):
        self.variant, self.temporal = int(ckpt["variant"]), bool(ckpt["temporal"])
        self.coherent = self.temporal
        self._history = []
        return net_class(self.variant)

    def reset(self):
        """Forget the poses generate() has seen (gen_type 8): the next one starts a new sequence."""
        self._history = []

    def generate(self, ske):
        """One Skeleton -> (S, S, 3) uint8 BGR (gen_type 8: conditioned on the previous calls' poses too)."""
        if not self.temporal:
            return self.generate_batch(ske.xy[None])[0]
        self._history = (self._history + [ske.xy.astype(np.float32)])[-(HISTORY + 1) :]
        windows = history_xy(np.stack(self._history), HISTORY)[-1:]
        return self.render(windows, np.isfinite(windows[:, 0]).all(axis=(1, 2)))[0]

    def generate_batch(self, xy, batch=64):
        """(N, 13, 2) float32 joints in [0, 1] -> (N, S, S, 3) uint8 BGR; poses with NaN joints give black frames."""
        if not self.temporal:
            return super().generate_batch(xy, batch)
        windows = history_xy(np.asarray(xy, np.float32).reshape(-1, N_JOINTS, 2), HISTORY)  # (N, HISTORY + 1, 13, 2)
        return self.render(windows, np.isfinite(windows[:, 0]).all(axis=(1, 2)), batch)  # finite where pose t is

    def generate_clip(self, xy, batch=64):
        """TrainedGenerator.generate_clip; gen_type 8's windows are cut from the whole clip first, so a batch's first
        frames see the previous batch's poses: the same frames as one generate_batch of the clip."""
        if not self.temporal:
            yield from super().generate_clip(xy, batch)
            return
        windows = history_xy(np.asarray(xy, np.float32).reshape(-1, N_JOINTS, 2), HISTORY)  # (N, HISTORY + 1, 13, 2)
        for i in range(0, len(windows), batch):
            w = windows[i : i + batch]
            yield self.render(w, np.isfinite(w[:, 0]).all(axis=(1, 2)), batch)

    def inputs(self, poses):
        """(B, 13, 2) poses, or (B, HISTORY + 1, 13, 2) windows for gen_type 8 -> netG's input batch."""
        return temporal_input(poses, self.size) if self.temporal else pose_input(poses, self.variant, self.size)


def load_generator(vs, gen_type, *, size=SIZE, device="auto", allow_foreign=False, **options):
    """The best trained GAN of gen_type 4-8 for this target, ready to generate; UserError names how to train it
    (or, for a checkpoint trained on other footage, that it is foreign: allow_foreign uses it with a warning)."""
    if options:
        raise UserError(f"GenGAN takes no generator options (got {', '.join(options)})")
    if gen_type not in range(4, 9):
        raise UserError(f"GenGAN handles gen_types 4-8, not {gen_type}")
    return GenGAN.load_best(vs, gen_type, size=size, device=device, allow_foreign=allow_foreign)


# --------------------------------------------------------------------------- training


@dataclass
class GANConfig(RunConfig):
    """Everything that shapes a GAN training run (stored in the checkpoint as `config`); epochs 0: enough for IMAGES
    training images when netG starts from GenVanillaNN, else IMAGES_SCRATCH."""

    mode: str = GAN_MODE
    input: str = INPUT
    temporal: bool = False
    batch: int = BATCH
    aug_prob: float = GAN_AUG_PROB
    lr_G: float = LR_G
    lr_D: float = LR_D
    lambda_L1: tuple = LAMBDA_L1
    lambda_FM: float = LAMBDA_FM
    lambda_ssim: float = LAMBDA_SSIM
    lambda_GP: float = LAMBDA_GP
    lambda_T: float = LAMBDA_T
    n_critic: int = 0  # 0: N_CRITIC for wgan-gp, 1 for bce
    init_from_vanilla: bool | None = None  # None: when a matching GenVanillaNN checkpoint exists
    g_args: dict | None = None  # overrides of netG's model_args (tests use tiny nets); ignored when initialised
    d_args: dict | None = None  # overrides of netD's (and netD_T's) model_args

    def __post_init__(self):
        if self.mode not in GAN_MODES or self.input not in INPUTS:
            raise UserError(f"mode must be one of {GAN_MODES} and input one of {INPUTS}")
        if self.temporal and self.input != "image":
            raise UserError("--temporal works on skeleton images (t, t-1, t-2 stacked): drop --input vector")
        self.lambda_L1 = lambda_pair(self.lambda_L1)

    @property
    def gen_type(self):
        return gen_type_of("GenGAN", mode=self.mode, input=self.input, temporal=self.temporal)


def vanilla_checkpoint(vs, cfg, fingerprint, verbose=True):
    """The GenVanillaNN checkpoint netG starts from, or None; UserError if asked for explicitly and unusable."""
    if cfg.init_from_vanilla is False:
        return None
    vanilla_type = gen_type_of_variant(VARIANT_OF_INPUT[cfg.input])
    ckpt, problem = start_checkpoint(vs, gen_type=vanilla_type, size=cfg.size, fmt=VANILLA_FORMAT,
                                     fingerprint=fingerprint, fix=VANILLA_FIX)  # fmt: skip
    if ckpt is not None:
        return ckpt
    if cfg.init_from_vanilla:
        raise UserError(f"--init_from_vanilla: {problem}")
    if verbose:
        print(f"not initialising netG from GenVanillaNN: {problem}")
    return None


def build_models(cfg, vanilla=None):
    """(netG, g_args, netD, d_args, netD_T or None, dT_args or None); netG from `vanilla`'s weights when given."""
    variant = VARIANT_OF_INPUT[cfg.input]
    in_ch = 3 * (HISTORY + 1) if cfg.temporal else None
    if vanilla is not None:
        what = f"GenVanillaNN checkpoint {vanilla['_path']}"
        with unusable(what, VANILLA_FIX):
            state, g_args = vanilla["model"], dict(vanilla["model_args"])
            if cfg.temporal:
                state, g_args = expand_stem(state, g_args, in_ch)
        netG = build_from_checkpoint(net_class(variant), g_args, state, what=what, fix=VANILLA_FIX)
    else:
        g_args = {**size_recipe(cfg.size).generator(variant), **(cfg.g_args or {})}
        if cfg.temporal:
            g_args["in_ch"] = in_ch
        netG = build_net(variant, g_args)
    d_args = {**size_recipe(cfg.size).netD, **(cfg.d_args or {})}
    netD = MultiscaleDiscriminator(**d_args)
    dT_args = netD_T = None
    if cfg.temporal:
        dT_args = {**size_recipe(cfg.size).netD_T, **(cfg.d_args or {}), "in_ch": 6 * D_T_FRAMES,
                   "num_D": 1}  # fmt: skip
        netD_T = MultiscaleDiscriminator(**dT_args)
    return netG, g_args, netD, d_args, netD_T, dT_args


class GANModel:
    """netG, netD (and netD_T for gen_type 8), both optimizers, and one training iteration in pix2pix's order."""

    def __init__(self, cfg, netG, netD, netD_T=None, device="cpu", generator=None):
        self.cfg, self.device, self.generator = cfg, torch.device(device), generator
        self.netG, self.netD, self.netD_T = netG, netD, netD_T
        self.nets_D = [n for n in (netD, netD_T) if n is not None]
        self.nets = [netG, *self.nets_D]
        for net in (netG, *self.nets_D):
            net.to(self.device, memory_format=torch.channels_last)
        betas = BETAS[cfg.mode]
        self.optimizer_G = torch.optim.Adam(netG.parameters(), lr=cfg.lr_G, betas=betas)
        self.optimizer_D = torch.optim.Adam([p for n in self.nets_D for p in n.parameters()], lr=cfg.lr_D, betas=betas)
        self.G, self.ddp_D = netG, (netD, netD_T)  # what the steps run: the nets, or distribute()'s DDP copies
        self.mp_terms = None  # fake, real, xy -> (loss, terms): MediaPipe's nets as loss terms, when a run weighs them

    def distribute(self, ranks):
        """Under torchrun: netG and the discriminators inside DistributedDataParallel for the steps that train them."""
        self.G, self.ddp_D = ranks.wrap(self.netG), tuple(n and ranks.wrap(n) for n in (self.netD, self.netD_T))

    def train_D(self, flag):
        """True: the D step (discriminators trainable, run as DDP copies under torchrun); False: the G step, which
        freezes them as pix2pix does (loss_G gives them no gradient) and judges with the bare nets (no DDP there)."""
        for net in self.nets_D:
            net.requires_grad_(flag)
        self.judges = self.ddp_D if flag else (self.netD, self.netD_T)

    def set_lr(self, lr_G, lr_D):
        for opt, lr in ((self.optimizer_G, lr_G), (self.optimizer_D, lr_D)):
            for g in opt.param_groups:
                g["lr"] = lr

    def D(self, img, temporal=False):
        """Discriminator output on (skeleton map, image) pairs of self.cond; temporal: on stacked windows."""
        netD, netD_T = self.judges
        with autocast(self.device):
            if temporal:
                return netD_T(stack_frames(self.cond, img))
            return netD(torch.cat([self.cond, img], 1))

    def critic(self, temporal=False):
        """Images (B, 3, S, S) -> (B,) critic scores, for the gradient penalty; temporal: windows (B, 3T, S, S)."""
        if temporal:
            return lambda w: critic_score(self.D(w.reshape(-1, 3, *w.shape[-2:]), True))
        return lambda img: critic_score(self.D(img))

    def loss_D(self):
        """D step loss: real pairs judged real, fake.detach() pairs judged fake (+ gradient penalty for WGAN-GP)."""
        cfg, fake, t = self.cfg, self.fake.detach(), self.terms
        pred_real, pred_fake = self.D(self.real), self.D(fake)
        self.pred_real = [[f.detach() for f in p] for p in pred_real]  # feature matching's targets (as pix2pixHD)
        loss_D_real = gan_loss(pred_real, True, cfg.mode)
        loss_D_fake = gan_loss(pred_fake, False, cfg.mode)
        if cfg.mode == "bce":
            loss_D = 0.5 * (loss_D_real + loss_D_fake)
            with torch.no_grad():  # how well the full-resolution D tells them apart, for the logs
                logit_real, logit_fake = pred_real[0][-1].float(), pred_fake[0][-1].float()
                t["d_real"], t["d_fake"] = torch.sigmoid(logit_real).mean(), torch.sigmoid(logit_fake).mean()
                t["d_acc"] = 0.5 * ((logit_real > 0).float().mean() + (logit_fake < 0).float().mean())
        else:
            loss_D_GP = gradient_penalty(self.critic(), self.real, fake, cfg.lambda_GP, self.generator)
            drift = LAMBDA_DRIFT * critic_score(pred_real).square().mean()
            loss_D = loss_D_real + loss_D_fake + loss_D_GP + drift
            t["loss_D_GP"], t["wdist"] = loss_D_GP, -(loss_D_real + loss_D_fake)  # critic gap E D(real) - E D(fake)
        if self.netD_T is not None:
            loss_D_T = gan_loss(self.D(self.real, True), True, cfg.mode) + gan_loss(self.D(fake, True), False, cfg.mode)
            if cfg.mode == "bce":
                loss_D_T = 0.5 * loss_D_T
            else:  # one mixing weight per window, the gradient norm over the window's frames
                s = fake.shape[-1]
                real_w, fake_w = (t.reshape(-1, 3 * D_T_FRAMES, s, s) for t in (self.real, fake))
                loss_D_T = loss_D_T + gradient_penalty(self.critic(True), real_w, fake_w, cfg.lambda_GP, self.generator)
            loss_D = loss_D + loss_D_T
            t["loss_D_T"] = loss_D_T
        t.update(loss_D=loss_D, loss_D_real=loss_D_real, loss_D_fake=loss_D_fake)
        return loss_D

    def loss_G(self, lambda_L1):
        """G step loss: fool the (just updated) D, stay close to the real frame in L1 (+ feature matching, temporal)."""
        cfg, fake, t = self.cfg, self.fake, self.terms
        pred_fake = self.D(fake)
        loss_G_GAN = gan_loss(pred_fake, True, cfg.mode)
        loss_G_L1 = (fake - self.real).abs().mean()
        loss_G = loss_G_GAN + lambda_L1 * loss_G_L1
        if cfg.mode == "bce" and cfg.lambda_FM > 0:
            loss_G_FM = feature_matching(pred_fake, self.pred_real)
            loss_G = loss_G + cfg.lambda_FM * loss_G_FM
            t["loss_G_FM"] = loss_G_FM
        if cfg.lambda_ssim > 0:
            loss_G_SSIM = ssim_loss(fake, self.real)
            loss_G = loss_G + cfg.lambda_ssim * loss_G_SSIM
            t["loss_G_SSIM"] = loss_G_SSIM
        if self.netD_T is not None:
            loss_G_T_GAN = gan_loss(self.D(fake, True), True, cfg.mode)
            s = fake.shape[-1]
            f, r = fake.reshape(-1, D_T_FRAMES, 3, s, s), self.real.reshape(-1, D_T_FRAMES, 3, s, s)
            # Frame-to-frame change should be the real video's change: the flicker, directly.
            loss_G_T_L1 = ((f[:, 1:] - f[:, :-1]) - (r[:, 1:] - r[:, :-1])).abs().mean()
            loss_G = loss_G + loss_G_T_GAN + cfg.lambda_T * loss_G_T_L1
            t.update(loss_G_T_GAN=loss_G_T_GAN, loss_G_T_L1=loss_G_T_L1)
        if self.mp_terms is not None:  # MediaPipe's nets as loss terms (GANTraining.mp_terms)
            mp_loss, mp = self.mp_terms(fake, self.real, self.xy)
            loss_G = loss_G + mp_loss
            t.update(mp)
        t.update(loss_G=loss_G, loss_G_GAN=loss_G_GAN, loss_G_L1=loss_G_L1, train_l1=loss_G_L1 / 2.0)
        return loss_G

    def optimize_parameters(self, x, cond, real, lambda_L1, do_G=True, check=None, xy=None):
        """One iteration: fake = netG(x); a D step on fake.detach(); then, if do_G, a G step. -> {term: float}.

        check(name, loss) runs before each optimizer step, so a NaN / inf loss never reaches the weights.
        """
        self.cond, self.real, self.xy, self.terms = cond, real, xy, {}
        with torch.set_grad_enabled(do_G), autocast(self.device):
            self.fake = self.G(x).float()  # (B*T, 3, S, S) in [-1, 1]

        self.train_D(True)
        loss_D = self.loss_D()
        if check:
            check("loss_D", loss_D)
        self.optimizer_D.zero_grad(set_to_none=True)
        loss_D.backward()
        self.optimizer_D.step()

        if do_G:
            self.train_D(False)
            loss_G = self.loss_G(lambda_L1)
            if check:
                check("loss_G", loss_G)
            self.optimizer_G.zero_grad(set_to_none=True)
            loss_G.backward()
            self.optimizer_G.step()
        return {k: float(v.detach()) for k, v in self.terms.items()}

    def state(self):
        """The weights and optimizer states a checkpoint stores."""
        return {
            "model": self.netG.state_dict(), "netD": self.netD.state_dict(),
            "netD_T": None if self.netD_T is None else self.netD_T.state_dict(),
            "optimizer_G": self.optimizer_G.state_dict(), "optimizer_D": self.optimizer_D.state_dict(),
        }  # fmt: skip

    def optimizers(self):
        """(optimizer, checkpoint key) pairs, for GenVanillaNN.restore_progress."""
        return [(self.optimizer_G, "optimizer_G"), (self.optimizer_D, "optimizer_D")]


def make_batch(ds, win, cfg, rng, shard=slice(None)):
    """Training tensors for this rank's share win[shard] = (B, W) of a global batch's windows of dataset indices
    (W = 1 per-frame, HISTORY + D_T_FRAMES temporal); augmentation is drawn for all of win (Train.augment).

    Returns x (netG's input), cond (B*T, 3, S, S) skeleton maps and real (B*T, 3, S, S) frames in [-1, 1], and xy
    (B*T, 13, 2) joints in [0, 1], of the T frames generated per window (T = 1, or D_T_FRAMES ordered t-2, t-1, t).
    Augmentation shifts and zooms a whole window alike (images warped, maps redrawn), so motion stays real motion.
    """
    xy = ds.xy[torch.as_tensor(win.reshape(-1))].reshape(*win.shape, N_JOINTS, 2)  # the global batch's poses
    b, w = win[shard].shape
    flat = torch.as_tensor(win[shard].reshape(-1))
    maps, vec, real = ds.batch(flat)  # (B*W, 3, S, S), (B*W, 26), (B*W, 3, S, S) in [-1, 1]
    if cfg.aug_prob > 0:
        xy, on = augment(xy, real, cfg, rng, shard=shard)  # a window's poses alike
        if on.any():
            maps[on] = pose_input(xy[on].numpy(), 2, cfg.size)  # redrawn, not warped: crisp lines
            vec = pose_input(xy.numpy(), 1, cfg.size)
    if not cfg.temporal:
        return (vec if cfg.input == "vector" else maps), maps, real, xy.reshape(-1, N_JOINTS, 2)
    s = cfg.size
    maps, real = maps.view(b, w, 3, s, s), real.view(b, w, 3, s, s)
    # netG's input for output frame k (window position HISTORY + k): the maps of k + HISTORY, ..., k (newest first).
    x = torch.stack([maps[:, k : k + HISTORY + 1].flip(1).reshape(b, -1, s, s) for k in range(D_T_FRAMES)], 1)
    out = slice(HISTORY, HISTORY + D_T_FRAMES)
    xy = xy.reshape(b, w, N_JOINTS, 2)[:, out].reshape(-1, N_JOINTS, 2)
    maps, real = maps[:, out].reshape(-1, 3, s, s), real[:, out].reshape(-1, 3, s, s)
    return x.reshape(b * D_T_FRAMES, -1, s, s), maps, real, xy


def stack_frames(cond, img, frames=D_T_FRAMES):
    """netD_T's input: (B*T, 3, S, S) maps and images of T consecutive frames -> (B, 6T, S, S)."""
    s = img.shape[-1]
    pairs = torch.cat([cond.reshape(-1, frames, 3, s, s), img.reshape(-1, frames, 3, s, s)], 2)  # (B, T, 6, S, S)
    return pairs.reshape(-1, 6 * frames, s, s)


def val_inputs(val, cfg):
    """netG's inputs for a ValBlock: its maps or vectors, or for gen_type 8 the stacked maps of t, t-1, t-2."""
    if cfg.temporal:
        return temporal_input(history_xy(val.xy, HISTORY, starts=sequence_starts(val.rows)), cfg.size)
    return val.inputs[cfg.input]


def d_overpowers(log, mode):
    """A warning line when the discriminator is winning too clearly (from the TrainLog's last epochs), else None.

    bce: D right about more than D_WINS of the patches (its gradient to netG vanishes); wgan-gp: the critic gap
    E D(real) - E D(fake) growing D_GAP_EPOCHS epochs in a row (netG is not catching up).
    """
    if mode == "bce":
        acc = log.column("d_acc")[1][-1:]
        if acc and acc[0] > D_WINS:
            return (f"netD overpowers netG (right on {100 * acc[0]:.0f}% of patches): its gradient to netG fades; "
                    "lower --lr_D or raise --lambda_L1 if this persists")  # fmt: skip
        return None
    gaps = log.column("wdist")[1][-(D_GAP_EPOCHS + 1) :]
    if len(gaps) > D_GAP_EPOCHS and all(np.diff(gaps) > 0):
        return (f"the critic pulls away from netG (critic gap up {D_GAP_EPOCHS} epochs running, {gaps[0]:.2f} -> "
                f"{gaps[-1]:.2f}); lower --n_critic or --lr_D if this persists")  # fmt: skip
    return None


def plot_adversarial(log, path, title=""):
    """loss_D.png: the adversarial game per epoch: D's and G's GAN losses (left), D's outputs on real / fake (right)."""
    panels = [
        (("loss_D", "loss_D_real", "loss_D_fake", "loss_D_GP", "loss_D_T", "loss_G_GAN"), "loss", False),
        (("d_real", "d_fake", "d_acc", "wdist"), "D(real), D(fake), D accuracy / critic gap", False),
    ]
    plot_curves(log, path, panels, title, legend_size=8)


def setup_models(vs, cfg, *, out, fingerprint, resume, verbose):
    """netG, netD (and netD_T) fresh, from the matching GenVanillaNN checkpoint, or from out/latest.pth (--resume).

    Returns (state: the resumed checkpoint or None, vanilla: the GenVanillaNN checkpoint or None,
    nets: (netG, netD, netD_T), args: their model_args, init_from: what netG started from).
    """
    if not resume:
        vanilla = vanilla_checkpoint(vs, cfg, fingerprint, verbose)
        netG, g_args, netD, d_args, netD_T, dT_args = build_models(cfg, vanilla)
        init_from = vanilla and {"path": vanilla["_path"], "epoch": vanilla["epoch"], "val": vanilla.get("val", {})}
        return None, vanilla, (netG, netD, netD_T), (g_args, d_args, dT_args), init_from
    state = resume_checkpoint(vs, out=out, fingerprint=fingerprint, fmt=CKPT_FORMAT, gen_type=cfg.gen_type,
                              size=cfg.size, force="--force", keys=GAN_RESUME_KEYS)  # fmt: skip
    g_args, d_args, dT_args = state["model_args"], state["netD_args"], state["netD_T_args"]
    what, fix = f"checkpoint {Path(out) / 'latest.pth'}", "start over with --force"
    netG = build_from_checkpoint(net_class(VARIANT_OF_INPUT[cfg.input]), g_args, state["model"], what=what, fix=fix)
    netD = build_from_checkpoint(MultiscaleDiscriminator, d_args, state["netD"], what=what, fix=fix)
    netD_T = None
    if dT_args:
        netD_T = build_from_checkpoint(MultiscaleDiscriminator, dT_args, state["netD_T"], what=what, fix=fix)
    return state, None, (netG, netD, netD_T), (g_args, d_args, dT_args), state["init_from"]


class GANTraining(TrainModel):
    """gen_types 4-8 for the training loop: GANModel's iteration (a D step, then every n_critic-th step a G step)."""

    score = "score"

    def __init__(self, vs, cfg, *, out, resume, ranks, verbose):
        self.ranks, self.device, self.out = ranks, ranks.device, out
        train_pos, val_pos, self.fingerprint = split_data(vs)
        self.windows = train_windows(vs.rows[train_pos], HISTORY + D_T_FRAMES if cfg.temporal else 1)  # (M, W)
        if len(self.windows) < 2:
            raise UserError(
                f"{vs.video_path.name} has no run of {HISTORY + D_T_FRAMES} consecutive frames with a person to train "
                "the temporal GAN on: use a continuous clip"
            )
        self.state, self.vanilla, nets, self.args, self.init_from = setup_models(
            vs, cfg, out=out, fingerprint=self.fingerprint, resume=resume, verbose=verbose
        )
        if self.state is not None:  # the run as it was configured
            cfg = resumed_config(cfg, self.state["config"], path=out / "latest.pth", force="--force")
        self.cfg = cfg
        self.rng = torch.Generator().manual_seed(cfg.seed + 1)  # shuffling, augmentation, the penalty's mixing
        self.gan = GANModel(cfg, *nets, self.device, self.rng)
        self.gan.mp_terms = self.mp_terms
        self.netG, self.nets = nets[0], self.gan.nets
        self.restored = self.state and restore_progress(self.state, path=out / "latest.pth", force="--force",
                                                        rng=self.rng, optimizers=self.gan.optimizers(),
                                                        score=self.score)  # fmt: skip
        if ranks.main:
            check_writable(out, need_bytes=checkpoint_bytes(*self.nets), what="checkpoints")  # now, not at epoch 1
        self.train_ds, val_ds = vs.dataset(train_pos, cfg.size), vs.dataset(val_pos, cfg.size)  # after a bad resume
        self.val = val_block(vs, val_ds, val_pos)
        self.val_in = val_inputs(self.val, cfg)
        self.plan_batches(ranks)
        self.gan.distribute(ranks)  # DistributedDataParallel under torchrun (the nets themselves stay bare)
        self.what = f"gen_type {cfg.gen_type} ({'temporal, ' if cfg.temporal else ''}{cfg.mode}, {cfg.input}) at " \
                    f"{cfg.size} px"  # fmt: skip
        self.title = f"{vs.key}: {self.what}"

    def plan_batches(self, ranks):
        """The global batch in windows, the steps per epoch and the images each step trains on."""
        cfg = self.cfg
        self.n_critic = cfg.n_critic or (N_CRITIC if cfg.mode == "wgan-gp" else 1)
        # A temporal window yields D_T_FRAMES generated frames: batch / D_T_FRAMES windows per batch and an epoch of
        # len / D_T_FRAMES windows keep an iteration's and an epoch's cost (frames through netG) the per-frame GAN's.
        self.frames_per_window = D_T_FRAMES if cfg.temporal else 1
        self.n_items = len(self.windows)
        bsz = max(2, min(cfg.batch // self.frames_per_window, self.n_items))  # the global batch, in windows
        self.batch = ranks.split_batch(bsz, unit="windows" if cfg.temporal else "frames", available=self.n_items)
        self.steps_per_epoch = max(1, self.n_items // self.frames_per_window // self.batch)
        self.images_per_step = self.batch * self.frames_per_window

    def schedule(self, progress):
        lr_G = lr_at(progress, self.cfg.lr_G, warmup=WARMUP, floor=LR_FLOOR)
        self.gan.set_lr(lr_G, lr_at(progress, self.cfg.lr_D, warmup=WARMUP, floor=LR_FLOOR))
        return {"lr_G": lr_G, "lambda_L1": lambda_at(progress, self.cfg.lambda_L1), "n_critic": self.n_critic}

    def make_batch(self, idx, shard):
        win = self.windows[idx.numpy()]  # the global batch; this rank's: win[shard]
        x, cond, real, xy = make_batch(self.train_ds, win, self.cfg, self.rng, shard=shard)
        x = x.to(self.device).contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x.to(self.device)
        cond = cond.to(self.device).contiguous(memory_format=torch.channels_last)
        return x, cond, real.to(self.device).contiguous(memory_format=torch.channels_last), xy.to(self.device)

    def step(self, batch, sched, *, step, check):
        x, cond, real, xy = batch
        return self.gan.optimize_parameters(x, cond, real, sched["lambda_L1"], do_G=step % self.n_critic == 0,
                                            check=check, xy=xy)  # fmt: skip

    def validate(self):
        fake = render_poses(self.netG, self.val_in, lambda x: x, size=self.cfg.size, device=self.device)
        return fake, val_metrics(self.val, fake)

    def log_columns(self, means, sched):
        return {"lr_G": sched["lr_G"], "lambda_L1": sched["lambda_L1"], **means}

    def checkpoint(self):
        cfg = self.cfg
        g_args, d_args, dT_args = self.args
        return {
            "format": CKPT_FORMAT,
            "gen_type": cfg.gen_type,
            "mode": cfg.mode,
            "input": cfg.input,
            "temporal": cfg.temporal,
            "variant": VARIANT_OF_INPUT[cfg.input],
            "model_class": type(self.netG).__name__,
            "model_args": g_args,
            "netD_args": d_args,
            "netD_T_args": dT_args,
            **self.gan.state(),
            "rng": self.rng.get_state(),
            "config": {**asdict(cfg), "world_size": self.ranks.world},
            "data": self.fingerprint,
            "init_from": self.init_from,
        }

    def samples(self, fake):
        return self.val.maps, fake, self.val.real

    def epoch_line(self, *, epoch, now, means, metrics, row, is_best, run):
        return epoch_line(epoch, now, means, metrics, row, is_best, run, self.cfg.mode)

    def plot(self, log):
        plot_losses(log, self.out / "loss_G.png", title=self.title + ", netG")
        plot_adversarial(log, self.out / "loss_D.png", title=self.title + ", netD")

    def warning(self, log):
        return d_overpowers(log, self.cfg.mode)

    def start_line(self, run):
        """How netG starts: resumed, fine-tuned from GenVanillaNN, or from scratch."""
        if self.state is not None:
            return f"resumed at epoch {run.epoch}"
        if self.vanilla is not None:
            box = self.vanilla.get("val", {}).get("box_ssim", float("nan"))
            return f"netG initialised from GenVanillaNN {self.init_from['path']} (val box SSIM {box:.3f}): fine-tuning"
        return "netG from scratch (no GenVanillaNN checkpoint to start from: this takes much longer)"


def epoch_line(epoch, now, means, metrics, last, is_best, run, mode):
    """The one line printed per epoch."""
    if mode == "bce":
        adv = f"D(real) {means['d_real']:.2f} D(fake) {means['d_fake']:.2f}"
    else:
        adv = f"critic gap {means['wdist']:.3f} GP {means['loss_D_GP']:.3f}"
    return (
        f"epoch {epoch:3d}  {now / 60:5.1f} min  D {means['loss_D']:.3f}  "
        f"G_GAN {means.get('loss_G_GAN', float('nan')):.3f}  {adv}  val L1 {metrics['l1']:.4f}  "
        f"box SSIM {metrics['box_ssim']:.3f}  sharpness {metrics['sharpness']:.2f}  "
        f"flicker {metrics['flicker']:.2f}{' *' if is_best else '  '}  {last['it_per_s']:.2f} it/s  "
        f"{run.eta(now)}"
    )


def train(vs, cfg=None, *, out=None, resume=False, verbose=True):
    """Train one GAN on a VideoSkeleton -> best.pth, latest.pth, train_log.csv, loss_G.png, loss_D.png, samples.png.

    Returns a summary dict (out, epoch, last epoch's log row, best val metrics, what netG started from).
    """
    cfg = cfg or GANConfig()
    ranks = setup_ranks(cfg.device)  # one process, or this one's place among torchrun's
    verbose = verbose and ranks.main  # only rank 0 prints
    set_seed(cfg.seed)
    out = Path(out) if out else checkpoint_dir(vs, cfg.gen_type, cfg.size)
    with ranks.together():  # a problem on any rank stops them all, said once
        model = GANTraining(vs, cfg, out=out, resume=resume, ranks=ranks, verbose=verbose)
        images = IMAGES if model.init_from else IMAGES_SCRATCH
        run = start_run(model, model.cfg, out=out, images=images, nan_hint="try a lower --lr / --lr_D",
                        verbose=verbose, ranks=ranks)  # fmt: skip
    if verbose:
        cfg = model.cfg
        n_g = sum(p.numel() for p in model.netG.parameters()) / 1e6
        n_d = sum(p.numel() for n in model.gan.nets_D for p in n.parameters()) / 1e6
        items = f"windows of {model.windows.shape[1]} frames" if cfg.temporal else "frames"
        print(f"training {model.what} on {ranks.device}: netG {n_g:.2f}M, netD {n_d:.2f}M parameters, "
              f"{model.n_items} train {items} / {len(model.val.real)} selection-block frames, batch "
              f"{model.images_per_step} frames, n_critic {model.n_critic}, {run.plan()}\n  {model.start_line(run)}\n"
              f"  -> {out}")  # fmt: skip
    last = fit(model, run, ranks=ranks, verbose=verbose)
    return {"out": str(out), "epoch": run.epoch, "last": last, "best": run.best, "init_from": model.init_from,
            "weights_sha256": weights_digest(model.nets)}  # fmt: skip


# --------------------------------------------------------------------------- CLI
