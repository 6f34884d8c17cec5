"""gen_type 9, real texture moved by a network: the nearest training frame warped by a flow and corrected by a U-Net
(TextureNet), the references each training frame may draw (never its own neighbours), the generator class
(GenTexture), its configuration and the training model the one loop runs (TextureTraining). The command line, and
why the design, is GenTexture.py's.
"""

import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import ClassVar

from deepdance.adversarial import feature_matching, gan_loss, val_metrics
from deepdance.checkpoints import (
    best_checkpoint,
    build_from_checkpoint,
    check_same_data,
    checkpoint_bytes,
    load_weights,
    restore_progress,
    resume_checkpoint,
    resumed_config,
    start_checkpoint,
)
from deepdance.cli import UserError
from deepdance.distributed import Ranks, autocast, pick_device
from deepdance.files import check_writable
from deepdance.gentypes import RENDER_BATCH, SIZE, checkpoint_dir, gen_type_of
from deepdance.losses import ssim_loss
from deepdance.nearest import GenNearest, pose_features
from deepdance.networks import MultiscaleDiscriminator, UNet, pose_input
from deepdance.recipes import MAX_FLOW, PRIOR, TEXTURE_IN_CH, size_recipe
from deepdance.skeleton import N_JOINTS, person_mask
from deepdance.trained import TrainedGenerator, render_poses
from deepdance.trainer import (
    RunConfig,
    TrainModel,
    fit,
    lambda_at,
    lambda_pair,
    lr_at,
    perceptual_columns,
    plot_curves,
    set_seed,
    start_run,
)
from deepdance.training_data import augment, split_data, val_block
from deepdance.vanilla import CKPT_FORMAT as VANILLA_FORMAT
from deepdance.vanilla import gen_type_of_variant

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# --------------------------------------------------------------------------- defaults

IMAGES = 33_000  # default training length in images seen, not epochs (as vanilla.IMAGES), so a short clip gets as
# many updates as a long one; what it reaches and how long it takes: docs/RESULTS.md
BATCH = 32
LR = 2e-3  # AdamW peak (warm-up, then cosine decay to LR * LR_FLOOR), as GenVanillaNN
LR_FLOOR = 0.02
WARMUP = 0.03
WEIGHT_DECAY = 1e-4
LAMBDA_L1 = (1.0, 1.0)  # pixel L1, constant
LAMBDA_WARP = 1.0  # L1 of the warped reference alone (before the mask): trains the flow directly
LAMBDA_MASK = 0.2  # cost of painting a pixel rather than using the warped reference's (on L1's [-1, 1] scale): a
# costlier paint keeps more real texture at the same body SSIM (docs/EXPERIMENTS.md, the texture entries)
LAMBDA_MASK_BG = 0.0  # the same cost off the person: free, so the background may be painted (gen_type 3's smooth
# frame where the base is on) while the person stays real pixels (docs/EXPERIMENTS.md, the texture entries)
LAMBDA_ADV = 0.0  # weight of GenGAN's BCE adversarial + feature-matching terms against L1 (0: L1 only)
LAMBDA_FM = 10.0  # feature matching, relative to the adversarial term (pix2pixHD's)
LR_D = 2e-4  # discriminator (Adam, betas 0.5, 0.999) when --lambda_adv > 0
EXCLUDE = "auto"  # cache rows on each side of a training frame that its reference may not come from. auto: the
# fewest that make the training references as far in pose as the selection block's nearest training frames
# (auto_exclude); a fixed count fits one frame rate only: +-5 rows suited taichi1 (1 frame in 10 of its recording)
# and left the references of 25-30 fps clips 3-4x nearer than anything met at test time
REF_K = 3  # training: the reference is drawn from the REF_K nearest allowed frames (inference takes the nearest)
PRIOR_SIGMA = 0.05  # joint_flow: reach of each joint's displacement (frame sides; a forearm is ~0.12 of the frame)
PRIOR_STILL = math.exp(-2.0)  # joint_flow: weight of "no displacement", so pixels ~2 sigma from every joint stay put
BASE = "auto"  # build on gen_type 3's frame ("vanilla"), not ("none"), or "auto": when its best.pth of the same
# data and split exists (what it does to body SSIM and sharpness: docs/EXPERIMENTS.md)
BASES = ("auto", "vanilla", "none")
BASE_FIX = "retrain it (GenVanillaNN.py <video> true 2) or pass --base none"
CKPT_FORMAT = "deepdance-texture-2"
RETRAIN = "retrain it (GenTexture.py with --force)"  # the fix for a best.pth this version cannot use


GEN_TYPE = gen_type_of("GenTexture")
VANILLA_TYPE = gen_type_of_variant(2)  # the base: gen_type 3, the U-Net from the skeleton map


# --------------------------------------------------------------------------- the network


class TextureNet(nn.Module):
    """(B, 11, S, S) = [query map, reference frame, reference map (in [-1, 1]), joint flow (grid units)] ->
    (B, 3, S, S) image in [-1, 1].

    With prior, the reference is first warped by the joint flow (each joint's displacement, spread around it) and
    the U-Net sees that roughly aligned frame: convolutions correct a move of a few pixels well, a long one badly.
    The U-Net (Networks.UNet) returns 6 channels: a flow correction (2, grid units, |.| <= max_flow), a mask (1)
    and colours (3). out = mask * reference warped by (joint flow + correction) + (1 - mask) * colours: real
    pixels where the reference only needs moving, painted ones elsewhere.
    """

    def __init__(self, unet, max_flow=MAX_FLOW, prior=PRIOR, base=None, interp="bilinear"):
        super().__init__()
        self.unet = UNet(**unet)
        self.max_flow, self.prior = float(max_flow), bool(prior)
        # interp: how the reference is resampled ("bilinear" where model_args predate the choice).
        self.interp = str(interp)
        # base: a trained gen_type 3 U-Net's model_args (its weights come with this net's state_dict), frozen.
        self.base = None if base is None else UNet(**base).requires_grad_(False).eval()

    def train(self, mode=True):
        super().train(mode)
        if self.base is not None:  # frozen, BatchNorm included: always its inference statistics
            self.base.eval()
        return self

    def forward(self, x):
        return self.parts(x)[0]

    def parts(self, x):
        """-> (output (B, 3, S, S), the warped reference (B, 3, S, S), both in [-1, 1], mask (B, 1, S, S) in [0, 1])."""
        x = x.float()
        h, w = x.shape[-2:]
        ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=x.device)
        xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=x.device)
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)[None]  # (1, S, S, 2) pixel centres, (x, y)
        ref = x[:, 3:6]
        if self.prior:
            grid = grid + x[:, 9:11].permute(0, 2, 3, 1)
            x = torch.cat([x[:, :3], sample(ref, grid, self.interp), x[:, 6:]], dim=1)
        if self.base is not None:
            with torch.no_grad():
                base = self.base(x[:, :3]).float()  # (B, 3, S, S) in [-1, 1]: gen_type 3's frame for the query map
            x = torch.cat([x, base], dim=1)
        o = self.unet(x).float()  # (B, 6, S, S) in [-1, 1] (tanh)
        warped = sample(ref, grid + self.max_flow * o[:, :2].permute(0, 2, 3, 1), self.interp)
        mask = 0.5 * (o[:, 2:3] + 1.0)
        colours = o[:, 3:6] if self.base is None else (base + o[:, 3:6]).clamp(-1.0, 1.0)  # base: a correction
        return mask * warped + (1.0 - mask) * colours, warped, mask


def sample(images, grid, mode="bilinear"):
    """images (B, C, S, S) read at grid (B, S, S, 2) (x, y in [-1, 1], pixel centres at +-(1 - 1/S)), interpolated
    by mode ("bilinear" or "bicubic"; bicubic overshoots at edges, so it is clamped to the images' [-1, 1])."""
    out = F.grid_sample(images, grid, mode=mode, padding_mode="border", align_corners=False)
    return out.clamp(-1.0, 1.0) if mode == "bicubic" else out


def to_tensor(images):
    """(N, S, S, 3) uint8 BGR -> (N, 3, S, S) float in [-1, 1] (PoseDataset.batch's transform)."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def joint_flow(query_xy, ref_xy, size, sigma=PRIOR_SIGMA, still=PRIOR_STILL):
    """Where each output pixel should read the reference, from the joints alone: (N, 13, 2) query and reference
    joints in [0, 1] -> (N, 2, S, S) displacements (x, y) in grid units (2 = the frame side).

    A pixel takes the joints' displacements (reference joint - query joint) weighted by exp(-d^2 / 2 sigma^2) of its
    distance d to each query joint, against a weight `still` for no displacement: at a joint it moves with that
    joint, between two it blends them, far from all it stays put (the background).
    """
    q = torch.as_tensor(np.asarray(query_xy, np.float32)).reshape(-1, 13, 2)
    r = torch.as_tensor(np.asarray(ref_xy, np.float32)).reshape(-1, 13, 2)
    c = (torch.arange(size, dtype=torch.float32) + 0.5) / size  # (S,) pixel centres
    # The Gaussian is separable: weight(y, x) = gy(y) * gx(x) per joint, so every sum over joints is a batched
    # (S, 13) @ (13, S) product (~20x faster than building the (N, S*S, 13) weights: 7 vs 150 ms a batch of 32).
    gx, gy = (torch.exp(-((c[None, None] - q[..., i, None]) ** 2) / (2 * sigma**2)) for i in (0, 1))  # (N, 13, S)
    gy_t = gy.transpose(1, 2)  # (N, S, 13)
    den = gy_t @ gx + still  # (N, S, S)
    d = r - q  # (N, 13, 2) joint displacements in frame sides
    flow = [(gy_t * d[:, None, :, i]) @ gx / den for i in (0, 1)]  # x then y, each (N, S, S)
    return (2.0 * torch.stack(flow, dim=1)).contiguous()


def texture_input(query_xy, ref_images, ref_xy, size):
    """The net's input: (N, 13, 2) query joints, (N, S, S, 3) uint8 reference frames, (N, 13, 2) their joints ->
    (N, 11, S, S): skeleton maps and frame in [-1, 1], joint flow in grid units."""
    maps = [pose_input(query_xy, 2, size), to_tensor(ref_images), pose_input(ref_xy, 2, size)]
    return torch.cat([*maps, joint_flow(query_xy, ref_xy, size)], dim=1)


# --------------------------------------------------------------------------- retrieval while training


def reference_table(xy, rows, *, exclude, k=REF_K, chunk=512):
    """For each training frame, its k nearest frames by pose (gen_type 1's absolute 26-vector), leaving out every
    frame within `exclude` cache rows of it (itself included).

    xy (N, 13, 2) in [0, 1]; rows (N,) cache rows -> (N, k) int64 indices into xy, nearest first. Distances are
    computed chunk x N at a time (bounded memory on long clips). UserError if a frame has fewer than k frames
    outside its window.
    """
    feats = pose_features(xy, "absolute")  # (N, 26)
    rows = np.asarray(rows, np.int64)
    n = len(feats)
    if n - (2 * exclude + 1) < k:  # a window holds at most 2 * exclude + 1 frames: then k are always left
        raise UserError(f"{n} training frames are too few to keep {k} references outside +-{exclude} rows of each")
    sq = (feats**2).sum(1)
    out = np.empty((n, k), np.int64)
    for a in range(0, n, chunk):
        q = feats[a : a + chunk]
        d = (q**2).sum(1)[:, None] + sq[None] - 2.0 * q @ feats.T  # (c, N) squared distances
        d[np.abs(rows[a : a + chunk, None] - rows[None]) <= exclude] = np.inf
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(d, part, 1).argsort(1, kind="stable")
        out[a : a + chunk] = np.take_along_axis(part, order, 1)
    return out


def reference_reach(xy, rows, exclude, chunk=512, *, table=None):
    """Median over training frames of the pose distance (gen_type 1's 26-vector) to their nearest frame outside
    +-exclude cache rows: how far training's references are. xy (N, 13, 2), rows (N,) -> float. table: this
    window's reference_table if already made (its first column is that nearest frame)."""
    feats = pose_features(xy, "absolute")
    table = reference_table(xy, rows, exclude=exclude, k=1, chunk=chunk) if table is None else np.asarray(table)
    nearest = table[:, 0]
    return float(np.median(np.linalg.norm(feats - feats[nearest], axis=1)))


def nearest_training(train_xy, query_xy):
    """Each query pose's nearest training frame (what the generator retrieves; gen_type 1's absolute 26-vector):
    (N, 13, 2) training joints, (M, 13, 2) queries -> ((M,) indices into train_xy, (M,) their distances)."""
    train_f, query_f = pose_features(train_xy, "absolute"), pose_features(query_xy, "absolute")
    d = (query_f**2).sum(1)[:, None] + (train_f**2).sum(1)[None] - 2.0 * query_f @ train_f.T
    idx = d.argmin(1)
    return idx, np.sqrt(np.maximum(d[np.arange(len(idx)), idx], 0))


def auto_exclude(xy, rows, goal, *, k=REF_K, chunk=512):
    """The window --exclude auto uses: the fewest cache rows w each side of a training frame whose reference_reach
    is at least `goal`, the held-out poses' median distance to their nearest training frame (the selection block's,
    nearest_training: as far as inference's references will be). Training then meets references that far from its
    frames whatever the frame rate: at 30 fps the neighbours within a second are near-duplicates, at 1 frame in 10
    they are not.

    xy (N, 13, 2) training joints, rows (N,) their cache rows, goal (float) -> w (int >= 0), the largest that leaves
    k frames outside every window if none reaches the goal.
    """
    lo, hi = 0, max(0, (len(xy) - k - 1) // 2)  # hi: k frames stay outside every window
    while lo < hi:  # the reach grows with w (a wider window only removes candidates): bisect for the fewest
        mid = (lo + hi) // 2
        if reference_reach(xy, rows, mid, chunk) >= goal:
            hi = mid
        else:
            lo = mid + 1
    return lo


def make_batch(ds, idx, refs, cfg, rng, device):
    """One training batch: (input (B, 11, S, S) as texture_input's, real (B, 3, S, S), query maps (B, 3, S, S) in
    [-1, 1], the cost of painting each pixel (B, 1, S, S): paint_cost) on device.

    The reference is one of the frame's allowed nearest frames (refs: (N, k), drawn at random) as stored; the
    frame and its joints are shifted/zoomed together (Train.augment) and its map redrawn from the moved joints,
    so the network also learns to move the reference by what augmentation adds.
    """
    maps, _, real = ds.batch(idx)  # (B, 3, S, S) in [-1, 1]
    pick = refs[idx, torch.randint(refs.shape[1], (len(idx),), generator=rng)]
    ref_maps, _, ref = ds.batch(pick)
    real, xy = real.to(device), ds.xy[idx]
    if cfg.aug_prob > 0:
        xy, on = augment(xy[:, None], real, cfg, rng)
        if on.any():
            maps[on] = pose_input(xy[on].numpy(), 2, cfg.size)
    x = torch.cat([maps, ref, ref_maps, joint_flow(xy, ds.xy[pick], cfg.size)], dim=1).to(device)
    cl = torch.channels_last
    return (
        x.contiguous(memory_format=cl),
        real.contiguous(memory_format=cl),
        maps.to(device).contiguous(memory_format=cl),
        paint_cost(xy, cfg).to(device),
        xy.reshape(-1, N_JOINTS, 2).to(device),
    )


def paint_cost(xy, cfg):
    """What painting a pixel rather than using the warped reference's costs: (B, 13, 2) query joints (after
    augmentation) -> (B, 1, S, S), cfg.lambda_mask on the person (Skeleton.person_mask), cfg.lambda_mask_bg off it."""
    xy = np.asarray(xy, np.float32).reshape(-1, 13, 2)
    inside, outside = cfg.lambda_mask, cfg.lambda_mask_bg
    if inside == outside:
        return torch.full((len(xy), 1, cfg.size, cfg.size), float(inside))
    person = torch.from_numpy(person_mask(xy, cfg.size))[:, None]  # (B, 1, S, S) in {0, 1}
    return outside + (inside - outside) * person


# --------------------------------------------------------------------------- the generator


class GenTexture(TrainedGenerator):
    """A trained gen_type 9 as a generator: generate(ske) / generate_batch(xy) -> uint8 BGR frames.

    It retrieves from the frames it trained on (its checkpoint's training block: never Evaluate's held-out one).
    `positions` are those frames (Evaluate's leak check reads them).
    """

    FORMAT, RETRAIN = CKPT_FORMAT, RETRAIN

    def __init__(self, checkpoint, vs, device="auto", *, gen_type=None, size=None):
        super().__init__(checkpoint, device, gen_type=gen_type, size=size)
        lo, hi = (self.data.get("train") or (0, len(vs)))[:2]
        positions = np.arange(max(0, int(lo)), min(int(hi), len(vs)))
        self.nearest = GenNearest(vs, self.size, positions=positions)
        self.positions = self.nearest.positions

    def net_class(self, ckpt):
        if self.gen_type != GEN_TYPE:
            raise UserError(f"{self.what} has gen_type {self.gen_type}; GenTexture handles {GEN_TYPE}")
        return TextureNet

    def references(self, poses):
        """(N, 13, 2) joints -> (positions into self.nearest (N,), frames (N, S, S, 3) uint8, joints (N, 13, 2))."""
        rows = self.nearest.match(poses, coherent=False)
        return rows, self.nearest.images[rows], self.nearest.xy[rows]

    def inputs(self, poses):
        _, images, xy = self.references(poses)
        return texture_input(poses, images, xy, self.size)

    @torch.no_grad()
    def parts(self, xy, batch=RENDER_BATCH):
        """The output's two sources for (N, 13, 2) joints: the nearest frame as moved by the flow, (N, S, S, 3) uint8
        BGR, and the net's mask, (N, S, S) float32 in [0, 1] (1: that moved frame, 0: the painted colours)."""
        xy = np.asarray(xy, np.float32).reshape(-1, 13, 2)
        warped, masks = [], []
        for a in range(0, len(xy), batch):
            _, w, mask = self.net.parts(self.inputs(xy[a : a + batch]).to(self.device))
            warped.append(((w.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu())
            masks.append(mask[:, 0].float().cpu())
        return torch.cat(warped).numpy(), torch.cat(masks).numpy()

    def moved(self, xy, batch=RENDER_BATCH):
        """Where the output is the nearest frame moved rather than painted: (N, 13, 2) joints -> (N, S, S) float32,
        the net's mask in [0, 1] (1: the warped reference, 0: the painted colours)."""
        return self.parts(xy, batch)[1]

    def generate_from(self, xy, rows):
        """Each pose rendered from a given stored frame instead of its nearest: (N, 13, 2) joints, (N,) positions into
        self.nearest -> (N, S, S, 3) uint8 BGR (bench/references.py: how much the choice of reference matters)."""
        xy, rows = np.asarray(xy, np.float32).reshape(-1, 13, 2), np.asarray(rows, np.int64)
        nn_ = self.nearest

        def to_input(i):  # i: a batch of indices into xy
            return texture_input(xy[i], nn_.images[rows[i]], nn_.xy[rows[i]], self.size)

        return render_poses(self.net, np.arange(len(xy)), to_input, size=self.size, device=self.device)


def load_generator(vs, gen_type=GEN_TYPE, *, size=SIZE, device="auto", allow_foreign=False):
    """The best trained gen_type 9 for this target, ready to generate; UserError names how to train it (or, for a
    checkpoint trained on other footage, that it is foreign: allow_foreign uses it with a warning)."""
    if gen_type != GEN_TYPE:
        raise UserError(f"GenTexture provides gen_type {GEN_TYPE} only, not {gen_type}")
    gen = GenTexture(best_checkpoint(vs, gen_type, size), vs, device, gen_type=gen_type, size=size)
    check_same_data(gen, vs, allow_foreign=allow_foreign)
    return gen


# --------------------------------------------------------------------------- training


@dataclass
class TextureConfig(RunConfig):
    """Everything that shapes a gen_type 9 training run (stored in the checkpoint as `config`)."""

    batch: int = BATCH
    lr: float = LR
    weight_decay: float = WEIGHT_DECAY
    lambda_L1: tuple = LAMBDA_L1  # (start, end): linear over training
    lambda_warp: float = LAMBDA_WARP
    lambda_mask: float = LAMBDA_MASK
    lambda_mask_bg: float = LAMBDA_MASK_BG
    lambda_ssim: float | None = None  # None: the size's (recipes.size_recipe)
    lambda_adv: float = LAMBDA_ADV
    lambda_FM: float = LAMBDA_FM
    lr_D: float = LR_D
    exclude: int | str = EXCLUDE  # cache rows, or "auto" (auto_exclude)
    ref_k: int = REF_K
    base: str = BASE
    model_args: dict | None = None  # overrides of the size's texture args (experiments; not on the command line)
    # Checkpoints.resumed_config: a run written before a setting existed trained as this value of it.
    BEFORE: ClassVar[dict] = {"lambda_mask_bg": lambda stored: stored.get("lambda_mask", LAMBDA_MASK)}  # one cost

    def __post_init__(self):
        self.lambda_L1 = lambda_pair(self.lambda_L1)


def base_checkpoint(vs, cfg, fingerprint, verbose=True):
    """The gen_type 3 checkpoint a fresh run builds on (cfg.base), or None; UserError if "vanilla" and unusable."""
    if cfg.base == "none":
        return None
    ckpt, problem = start_checkpoint(vs, gen_type=VANILLA_TYPE, size=cfg.size, fmt=VANILLA_FORMAT,
                                     fingerprint=fingerprint, fix=BASE_FIX)  # fmt: skip
    if ckpt is None and cfg.base == "vanilla":
        raise UserError(f"--base vanilla: {problem}")
    if ckpt is None and verbose:
        print(f"not building on gen_type {VANILLA_TYPE}: {problem}")
    return ckpt


def new_texture_net(model_args, base=None):
    """A fresh TextureNet and its model_args; with `base` (a gen_type 3 checkpoint) the U-Net also sees the base's
    frame and the frozen base holds that checkpoint's weights."""
    if base is None:
        return TextureNet(**model_args), model_args
    model_args = {
        **model_args,
        "unet": {**model_args["unet"], "in_ch": TEXTURE_IN_CH + 3},
        "base": dict(base["model_args"]),
    }
    net = TextureNet(**model_args)
    load_weights(net.base, base["model"], what=f"GenVanillaNN checkpoint {base['_path']}", fix=BASE_FIX)
    return net, model_args


class TextureTraining(TrainModel):
    """gen_type 9 for the training loop: the reference frame warped and corrected, pixel L1, SSIM and painting costs,
    and an adversarial term when --lambda_adv is set."""

    score = "score"

    def __init__(self, vs, cfg, *, out, resume, ranks, verbose):
        self.ranks, self.device, self.out = ranks, ranks.device, out
        train_pos, val_pos, self.fingerprint = split_data(vs)
        self.state, self.cfg = None, cfg
        self.latest, self.fix = out / "latest.pth", "start over with --force"
        if resume:
            self.state = resume_checkpoint(vs, out=out, fingerprint=self.fingerprint, fmt=CKPT_FORMAT,
                                           gen_type=GEN_TYPE, size=cfg.size, force="--force",
                                           keys=("optimizer",))  # fmt: skip
        self.build_nets(vs, verbose)
        cfg = self.cfg
        nets = [n for n in (self.net, self.netD) if n is not None]
        check_writable(out, need_bytes=checkpoint_bytes(*nets), what="checkpoints")
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        self.opt_D = None
        if self.netD is not None:
            self.opt_D = torch.optim.Adam(self.netD.parameters(), lr=cfg.lr_D, betas=(0.5, 0.999))
        self.rng = torch.Generator().manual_seed(cfg.seed + 1)  # shuffling, references, augmentation
        optimizers = [(self.opt, "optimizer")] + ([(self.opt_D, "optimizer_D")] if self.netD is not None else [])
        self.restored = self.state and restore_progress(self.state, path=self.latest, force="--force", rng=self.rng,
                                                        optimizers=optimizers, score=self.score)  # fmt: skip
        self.nets = [self.net]
        self.prepare_data(vs, train_pos, val_pos)
        self.n_items = len(self.train_ds)
        self.batch = self.images_per_step = min(cfg.batch, self.n_items)
        self.steps_per_epoch = self.n_items // self.batch
        self.what = f"gen_type {GEN_TYPE} (texture) at {cfg.size} px" + (
            f", adversarial x{cfg.lambda_adv:g}" if self.netD else "")  # fmt: skip
        if self.net.base is not None:
            frozen = sum(p.numel() for p in self.net.base.parameters()) / 1e6
            self.what += f", on gen_type {VANILLA_TYPE}'s frame ({frozen:.2f}M parameters, frozen)"
        self.title = f"{vs.key}: {self.what}"

    def build_nets(self, vs, verbose):
        """The texture net (resumed, or fresh on gen_type 3's frame) and the discriminator when weighted."""
        cfg, state = self.cfg, self.state
        self.model_args = {**size_recipe(cfg.size).texture, **(cfg.model_args or {})}
        if state is not None:
            self.model_args = state["model_args"]
            cfg = self.cfg = resumed_config(cfg, state["config"], path=self.latest, force="--force")
            net = build_from_checkpoint(TextureNet, self.model_args, state["model"], what=f"checkpoint {self.latest}",
                                        fix=self.fix)  # fmt: skip
            self.base_from = state.get("base_from")
        else:
            if cfg.lambda_ssim is None:  # stored resolved: the checkpoint's config says what this run used
                cfg = self.cfg = replace(cfg, lambda_ssim=size_recipe(cfg.size).texture_lambda_ssim)
            base = base_checkpoint(vs, cfg, self.fingerprint, verbose)
            net, self.model_args = new_texture_net(self.model_args, base)
            self.base_from = base and {"path": base["_path"], "epoch": base["epoch"], "val": base.get("val", {})}
        self.net = net.to(self.device, memory_format=torch.channels_last)
        self.netD = None
        if cfg.lambda_adv > 0:
            netD = MultiscaleDiscriminator(**size_recipe(cfg.size).netD)
            if state is not None:
                if state.get("netD") is None:
                    raise UserError(f"{self.latest} was trained without a discriminator: start over with --force")
                netD = build_from_checkpoint(MultiscaleDiscriminator, state["netD_args"], state["netD"],
                                             what=f"checkpoint {self.latest}", fix=self.fix)  # fmt: skip
            self.netD = netD.to(self.device, memory_format=torch.channels_last)

    def prepare_data(self, vs, train_pos, val_pos):
        """The training frames, their reference table, and the selection block with its references."""
        cfg = self.cfg
        self.train_ds, val_ds = vs.dataset(train_pos, cfg.size), vs.dataset(val_pos, cfg.size)
        self.train_rows = np.asarray(vs.rows)[train_pos]
        self.train_xy = self.train_ds.xy.numpy()
        self.val = val_block(vs, val_ds, val_pos)
        val_ref, val_dist = nearest_training(self.train_xy, self.val.xy)  # (N_val,) into train_ds, how far each is
        self.held_reach = float(np.median(val_dist))  # how far inference's references will be
        self.exclude = cfg.exclude
        if self.exclude == "auto":
            self.exclude = auto_exclude(self.train_xy, self.train_rows, self.held_reach, k=cfg.ref_k)
        self.refs = torch.from_numpy(reference_table(self.train_xy, self.train_rows, exclude=self.exclude, k=cfg.ref_k))
        ref_maps, _, ref_imgs = self.train_ds.batch(torch.from_numpy(val_ref))
        ref_flow = joint_flow(self.val.xy, self.train_ds.xy[val_ref].numpy(), cfg.size)
        self.val_x = torch.cat([self.val.inputs["image"], ref_imgs, ref_maps, ref_flow], dim=1)  # (N_val, 11, S, S)
        self.val_ref_images = self.train_ds.images[val_ref].permute(0, 2, 3, 1).numpy()  # (N_val, S, S, 3) uint8

    def schedule(self, progress):
        lr = lr_at(progress, self.cfg.lr, warmup=WARMUP, floor=LR_FLOOR)
        for group in self.opt.param_groups:
            group["lr"] = lr
        return {"lr": lr, "lambda_L1": lambda_at(progress, self.cfg.lambda_L1)}

    def make_batch(self, idx, shard):
        return make_batch(self.train_ds, idx, self.refs, self.cfg, self.rng, self.device)

    def step(self, batch, sched, *, step, check):
        cfg, (x, real, cond, cost, xy) = self.cfg, batch
        with autocast(self.device):
            fake, warped, mask = self.net.parts(x)
        l1 = (fake - real).abs().mean()
        loss = sched["lambda_L1"] * l1
        if cfg.lambda_warp:  # the warp alone must match too: the flow learns to move the reference itself
            loss = loss + cfg.lambda_warp * (warped - real).abs().mean()
        if cfg.lambda_ssim:
            loss = loss + cfg.lambda_ssim * ssim_loss(fake, real)
        if cfg.lambda_mask or cfg.lambda_mask_bg:  # painting costs: real pixels wherever they nearly fit
            loss = loss + (cost * (1.0 - mask)).mean()
        mp_loss, terms = self.mp_terms(fake, real, xy)
        loss = loss + mp_loss
        if self.netD is not None:
            terms["d"] = d_step(self.netD, self.opt_D, cond, real, fake.detach(), self.device)
            terms["adv"] = self.adversarial(cond, real, fake)
            loss = loss + cfg.lambda_adv * terms["adv"]
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach(), "l1": l1.detach(), **{k: v.detach() for k, v in terms.items()}}

    def adversarial(self, cond, real, fake):
        """netG's adversarial term (BCE + feature matching), with netD frozen for it."""
        for p in self.netD.parameters():
            p.requires_grad_(False)
        with autocast(self.device):
            pred_fake = self.netD(torch.cat([cond, fake], 1))
            with torch.no_grad():
                pred_real = self.netD(torch.cat([cond, real], 1))
        adv = gan_loss(pred_fake, True, "bce") + self.cfg.lambda_FM * feature_matching(pred_fake, pred_real)
        for p in self.netD.parameters():
            p.requires_grad_(True)
        return adv

    def validate(self):
        fake = render_poses(self.net, self.val_x, lambda x: x, size=self.cfg.size, device=self.device)
        return fake, val_metrics(self.val, fake)

    def log_columns(self, means, sched):
        extra = {"train_adv": means["adv"], "loss_D": means["d"]} if self.netD else {}
        l1 = means["l1"] / 2.0  # L1 on [-1, 1] -> pixels in [0, 1]
        return {"lr": sched["lr"], "train_loss": means["loss"], "train_l1": l1, **extra, **perceptual_columns(means)}

    def checkpoint(self):
        cfg, netD = self.cfg, self.netD
        return {
            "format": CKPT_FORMAT,
            "gen_type": GEN_TYPE,
            "model_class": type(self.net).__name__,
            "model_args": self.model_args,
            "model": self.net.state_dict(),
            "optimizer": self.opt.state_dict(),
            "netD": None if netD is None else netD.state_dict(),
            "netD_args": None if netD is None else size_recipe(cfg.size).netD,
            "optimizer_D": None if netD is None else self.opt_D.state_dict(),
            "base_from": self.base_from,
            "exclude_rows": self.exclude,  # the window used (cfg.exclude may say "auto")
            "rng": self.rng.get_state(),
            "config": asdict(cfg),
            "data": self.fingerprint,
        }

    def samples(self, fake):
        return self.val.maps, self.val_ref_images, fake, self.val.real

    def epoch_line(self, *, epoch, now, means, metrics, row, is_best, run):
        return (f"epoch {epoch:3d}  {now / 60:5.1f} min  loss {row['train_loss']:.4f}  val L1 {metrics['l1']:.4f}"
                f"  SSIM {metrics['ssim']:.3f}  box SSIM {metrics['box_ssim']:.3f}  sharpness "
                f"{metrics['sharpness']:.2f}{' *' if is_best else '  '}  {row['img_per_s']:.0f} img/s  "
                f"{run.eta(now)}")  # fmt: skip

    def plot(self, log):
        panels = [
            (("train_l1", "val_l1"), "L1 (pixels in [0, 1])", True),
            (("val_ssim", "val_box_ssim"), "SSIM", False),
            (("val_sharpness",), "sharpness (1 = real)", False),
        ]
        plot_curves(log, self.out / "loss.png", panels, title=self.title)

    def start_line(self, run):
        """What the run trains on: frames, the references' window and reach, the loss weights, the plan."""
        cfg = self.cfg
        resumed = f" from epoch {run.epoch}" if self.state else ""
        auto = " (auto)" if cfg.exclude == "auto" else ""
        reach = reference_reach(self.train_xy, self.train_rows, self.exclude, table=self.refs.numpy())
        n_params = sum(p.numel() for p in self.net.parameters() if p.requires_grad)  # trained; the base is frozen
        return (f"training {self.what}, {n_params / 1e6:.2f}M parameters, on {self.device}: {self.n_items} train / "
                f"{len(self.val.real)} selection-block frames, references outside +-{self.exclude} rows{auto} "
                f"(median pose distance {reach:.3f}; the selection block's to the training frames: "
                f"{self.held_reach:.3f}; nearest {cfg.ref_k}), SSIM x{cfg.lambda_ssim:g}, painting costs "
                f"{cfg.lambda_mask:g} on the person and {cfg.lambda_mask_bg:g} off it, batch {self.batch}, "
                f"{run.plan()}{resumed} -> {self.out}")  # fmt: skip


def train(vs, cfg=None, *, out=None, resume=False, verbose=True):
    """Train gen_type 9 on a VideoSkeleton; writes best.pth, latest.pth, train_log.csv, loss.png, samples.png.

    Returns a summary dict (epochs, images, seconds, last and best validation metrics).
    """
    cfg = cfg or TextureConfig()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("GenTexture.py trains in one process: run it with python, not torchrun")
    ranks = Ranks(device=pick_device(cfg.device))
    set_seed(cfg.seed)
    out = Path(out) if out else checkpoint_dir(vs, GEN_TYPE, cfg.size)
    model = TextureTraining(vs, cfg, out=out, resume=resume, ranks=ranks, verbose=verbose)
    run = start_run(model, model.cfg, out=out, images=IMAGES, nan_hint="try a lower --lr", verbose=verbose,
                    ranks=ranks)  # fmt: skip
    if verbose:
        print(model.start_line(run))
    last = fit(model, run, ranks=ranks, verbose=verbose)
    n_params = sum(p.numel() for p in model.net.parameters() if p.requires_grad)
    return {"out": str(out), "epoch": run.epoch, "last": last, "best": run.best, "parameters": n_params, **run.totals}


def d_step(netD, opt_D, cond, real, fake, device):
    """GenGAN's D step (BCE): real pairs judged real, fake.detach() pairs fake -> the loss (a 0-dim tensor)."""
    with autocast(device):
        loss = 0.5 * (gan_loss(netD(torch.cat([cond, real], 1)), True, "bce")
                      + gan_loss(netD(torch.cat([cond, fake], 1)), False, "bce"))  # fmt: skip
    opt_D.zero_grad(set_to_none=True)
    loss.backward()
    opt_D.step()
    return loss.detach()


# --------------------------------------------------------------------------- CLI


def exclude_arg(text):
    """--exclude's value: "auto" or a count of cache rows >= 0 (UserError otherwise)."""
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise UserError(f"need --exclude auto or a number of rows >= 0, got {text!r}")
    return n
