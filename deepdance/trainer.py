"""Training machinery both trainers share (GenVanillaNN and GenGAN), and the generator they both load.

    run setup      set_seed, pick_device, autocast, RunConfig, lr_at, the shared CLI arguments
    processes      Distributed.py: the device, torchrun's ranks (sharding, SyncBatchNorm, agreement)
    data           split_data (+ its fingerprint), val_block, augment (shift/zoom images and joints alike)
    inference      render_poses: one loop for validation, the demo and Evaluate
    bookkeeping    TrainRun: the plan, the clock, the NaN guard, train_log.csv, plots, samples.png, checkpoints
    checkpoints    Checkpoints.py: save, load, validate, resume
    generators     TrainedGenerator: a checkpoint rebuilt as generate(ske) / generate_batch(xy)

Nothing here knows a network: the trainers pass their classes and inputs in.
"""

import csv
import math
import random
import time
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path

from deepdance.checkpoints import (
    CKPT_KEYS,
    best_checkpoint,
    build_from_checkpoint,
    check_same_data,
    load_checkpoint,
    resumed_log,
    save_checkpoint,
    unusable,
)
from deepdance.cli import UserError, pause_here
from deepdance.distributed import Ranks, pick_device, setup_ranks
from deepdance.files import atomic_path, write_png
from deepdance.gentypes import RENDER_BATCH, SIZE, checkpoint_dir
from deepdance.skeleton import N_JOINTS

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

SEED = 1337
AUG_SHIFT = 0.05  # max random shift, in units of the frame side, applied to image and skeleton alike
AUG_SCALE = 0.08  # max random zoom, +-
AUG_PROB = 0.7  # share of training samples augmented (GenGAN sets its own)
N_SAMPLES = 8  # validation frames shown in samples.png
PLOT_SHARE = 0.03  # loss plots are redrawn (~0.5-2 s with matplotlib) only while that stays under this share of
# the training time, and always after the last epoch: on short CPU epochs that is every few epochs
MIN_TRAIN_FRAMES = 16  # fewer training frames than this is refused (two batches of 8 at least)


# --------------------------------------------------------------------------- run setup


def set_seed(seed):
    """Seed Python, NumPy and torch (CPU and CUDA) at once."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast(device):
    """bf16 autocast on CUDA (tensor cores); plain fp32 on CPU, where bf16 has no fast path here (no AVX512-BF16)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def lr_at(progress, lr, *, warmup, floor):
    """Learning rate at a point of training (progress in [0, 1]): linear warm-up, then cosine down to lr * floor."""
    if progress < warmup:
        return lr * max(progress / warmup, 0.05)
    p = min(1.0, (progress - warmup) / (1.0 - warmup))
    return lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * p)))


@dataclass
class RunConfig:
    """What shapes any training run (add_training_args' options); each trainer's config adds its model's own."""

    size: int = SIZE
    epochs: int = 0  # 0: the trainer's default
    time_budget: float = 0.0  # minutes; > 0: train until then (schedules follow the clock), ignoring epochs
    batch: int = 32
    aug_prob: float = AUG_PROB
    aug_shift: float = AUG_SHIFT
    aug_scale: float = AUG_SCALE
    seed: int = SEED
    device: str = "auto"


# --------------------------------------------------------------------------- data


def epochs_for(images, images_per_epoch):
    """A trainer's default plan: enough epochs to see `images` training images (at least one). Counting images, not
    epochs, gives a short clip as many updates as a long one (README "Training length")."""
    return max(1, math.ceil(images / max(images_per_epoch, 1)))


def data_fingerprint(vs, blocks):
    """What a checkpoint was trained on: the video's content hash, extraction params and the blocks ([start, stop)
    positions: "val" is the selection block its best.pth was chosen on, "test" the block Evaluate reports)."""

    def span(pos):
        return [int(pos[0]), int(pos[-1]) + 1]

    return {
        "key": vs.key,
        "sha256": vs.meta["sha256"],
        "params": vs.meta["params"],
        "train": span(blocks.train),
        "val": span(blocks.select),
        "test": span(blocks.test),
    }


def split_data(vs, min_train=MIN_TRAIN_FRAMES):
    """(train positions, selection positions, data_fingerprint) of a target; UserError if too few frames to train on.
    The trainers validate on the selection block (their "val"); the test block after it is left to Evaluate."""
    blocks = vs.split()
    if len(blocks.train) < min_train or len(blocks.select) < 1:
        raise UserError(
            f"{vs.video_path.name} has {len(vs)} frames with a person, {len(blocks.train)} of them to train on once "
            f"the selection and test blocks are held out: too few (at least {min_train}; a few hundred make a useful "
            "model)"
        )
    return blocks.train, blocks.select, data_fingerprint(vs, blocks)


@dataclass
class ValBlock:
    """The validation block as the trainers measure it: the target's selection block (VideoSkeleton.split)."""

    inputs: dict  # {"image": (N, 3, S, S), "vector": (N, 26)} float tensors in [-1, 1]: the nets' inputs
    maps: np.ndarray  # (N, S, S, 3) uint8 skeleton maps
    real: np.ndarray  # (N, S, S, 3) uint8 BGR frames
    xy: np.ndarray  # (N, 13, 2) joints in [0, 1]
    rows: np.ndarray  # (N,) cache rows (sampled frames) of the block
    consecutive: np.ndarray  # (N-1,) bool: frame i+1 directly follows frame i


def val_block(vs, ds, positions):
    """The ValBlock of a PoseDataset `ds` holding the usable-frame `positions` of vs."""
    maps, vec, _ = ds.batch(torch.arange(len(ds)))
    rows = np.asarray(vs.rows)[positions]
    return ValBlock(
        inputs={"image": maps, "vector": vec},
        maps=ds.maps.permute(0, 2, 3, 1).numpy(),
        real=ds.images.permute(0, 2, 3, 1).numpy(),
        xy=ds.xy.numpy(),
        rows=rows,
        consecutive=np.diff(rows) == 1,
    )


def random_affine(xy, shift=AUG_SHIFT, scale=AUG_SCALE, prob=AUG_PROB, generator=None):
    """Random zoom about the frame centre + shift for a batch of poses.

    xy (B, K, 2) in [0, 1] -> (new xy (B, K, 2), theta (B, 2, 3) for F.affine_grid, which maps output to input
    coordinates, so warping an image by theta moves its content exactly as the joints moved, on (B,) bool).
    Samples left alone (probability 1 - prob) get the identity.
    """
    b = len(xy)
    on = (torch.rand(b, generator=generator) < prob).float()
    s = 1.0 + on * scale * (2 * torch.rand(b, generator=generator) - 1)  # zoom factor
    t = on[:, None] * shift * (2 * torch.rand(b, 2, generator=generator) - 1)  # (B, 2) in frame units
    new_xy = 0.5 + s[:, None, None] * (xy - 0.5) + t[:, None, :]
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / s
    theta[:, :, 2] = -2.0 * t / s[:, None]  # normalised coordinates span 2 per frame side
    return new_xy, theta, on.bool()


def warp(images, theta):
    """Warp (B, C, S, S) images by affine_grid thetas (bilinear; edge pixels repeat into the uncovered border)."""
    grid = F.affine_grid(theta.to(images.device, images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def augment(xy, real, cfg, rng, *, shard=slice(None)):
    """Shift/zoom windows of frames and their joints alike (one transform per window, so motion stays motion).

    xy (B, W, 13, 2) joints in [0, 1] of the global batch's windows: the random transforms are drawn for all B on every
    rank (one RNG stream on all ranks, and the one a single process draws), then this rank keeps xy[shard].
    real (b*W, 3, S, S) frames of this rank's b windows, warped in place where augmented.
    Returns (xy (b*W, 13, 2) moved, on (b*W,) bool): the poses whose network inputs must be redrawn.
    """
    b, w = xy.shape[:2]
    xy, theta, on = random_affine(xy.reshape(b, w * N_JOINTS, 2), cfg.aug_shift, cfg.aug_scale, cfg.aug_prob, rng)
    xy, theta, on = xy[shard], theta[shard], on[shard]
    b = len(xy)
    on, theta = on.repeat_interleave(w), theta.repeat_interleave(w, dim=0)
    if on.any():
        on_dev = on.to(real.device)
        real[on_dev] = warp(real[on_dev], theta[on])
    return xy.reshape(b * w, N_JOINTS, 2), on


def sequence_starts(rows):
    """(N,) bool: frame i starts a new continuous run (its cache row does not follow frame i-1's)."""
    rows = np.asarray(rows)
    starts = np.ones(len(rows), bool)
    starts[1:] = np.diff(rows) != 1
    return starts


def history_xy(xy, history, starts=None):
    """Poses read as one sequence -> the poses of t, t-1, ..., t-history: (N, 13, 2) -> (N, history + 1, 13, 2).

    Before the first pose of a run (starts: (N,) bool, or the batch's first pose) that first pose repeats. A pose
    with NaN joints (no person) is replaced in later frames' history by the last finite one before it, or by
    the frame's own pose; its own frame keeps its NaN (it renders black).
    """
    xy = np.asarray(xy, np.float32).reshape(-1, N_JOINTS, 2)
    n = len(xy)
    idx = np.arange(n)
    starts = np.zeros(n, bool) if starts is None else np.asarray(starts, bool).copy()
    starts[:1] = True
    run = np.maximum.accumulate(np.where(starts, idx, 0))  # first frame of each frame's run
    ok = np.isfinite(xy).all(axis=(1, 2))
    last_ok = np.maximum.accumulate(np.where(ok, idx, -1))  # last frame <= i with a person (-1: none yet)
    out = np.empty((n, history + 1, N_JOINTS, 2), np.float32)
    out[:, 0] = xy
    for k in range(1, history + 1):
        prev = last_ok[np.maximum(idx - k, run)]  # t-k clamped to the run's start, then back to a finite pose
        fill = (prev >= run) & (prev >= 0)
        out[:, k] = np.where(fill[:, None, None], xy[np.maximum(prev, 0)], out[:, k - 1])
    return out


def train_windows(rows, length):
    """(M, length) dataset indices of every run of `length` consecutive frames (cache rows `rows` +1 apart)."""
    rows = np.asarray(rows)
    if length == 1:
        return np.arange(len(rows))[:, None]
    ends = np.arange(length - 1, len(rows))
    ok = rows[ends] - rows[ends - length + 1] == length - 1  # rows are increasing, so this means no gap
    ends = ends[ok]
    return ends[:, None] - np.arange(length - 1, -1, -1)[None]


# --------------------------------------------------------------------------- losses


def ssim_loss(fake, real, win=7, k1=0.01, k2=0.03):
    """1 - SSIM of (B, 3, S, S) images in [-1, 1], differentiable: the SSIM Evaluate reports (Metrics.ssim_maps:
    win x win uniform windows, sample covariance, per channel, windows inside the image), averaged over the batch.

    Pixel L1 is content with a blur where it is unsure; SSIM's contrast term is not (a flat patch scores low
    against a textured one), so this term asks for detail where pixel losses average it away.
    """
    x, y = (fake.float() + 1.0) / 2.0, (real.float() + 1.0) / 2.0  # [0, 1]: data range 1
    c = x.shape[1]
    box = torch.full((5 * c, 1, 1, win), 1.0 / win, device=x.device)
    # Window means of x, y, x^2, y^2, xy in one separable depthwise pass: 1 x win then win x 1 (a win x win
    # avg_pool2d is ~4x slower on the CPU, its backward most of all: 0.6 vs 0.11 s a batch of 32 at 128 px).
    stats = torch.cat([x, y, x * x, y * y, x * y], dim=1).contiguous()
    stats = F.conv2d(F.conv2d(stats, box, groups=5 * c), box.transpose(2, 3), groups=5 * c)
    ux, uy, xx, yy, xy = stats.split(c, dim=1)
    cov = win * win / (win * win - 1.0)
    vx, vy, vxy = cov * (xx - ux * ux), cov * (yy - uy * uy), cov * (xy - ux * uy)
    c1, c2 = k1**2, k2**2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return 1.0 - s.mean()


# --------------------------------------------------------------------------- inference


def to_uint8(t):
    """(N, 3, S, S) float in [-1, 1] -> (N, S, S, 3) uint8 numpy (channel order untouched, BGR here)."""
    t = ((t.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return t.permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def render_poses(net, poses, to_input, *, size, device, valid=None, batch=RENDER_BATCH):
    """net, in eval mode, over poses[valid] in batches -> (N, S, S, 3) uint8 BGR, black frames where not valid.

    poses: (N, ...) anything to_input turns into a batch of net inputs (joints, windows of joints, or the
    inputs themselves); valid: (N,) bool, None = all. The net's train/eval mode is restored afterwards.
    """
    was_training = net.training
    net.eval()
    out = np.zeros((len(poses), size, size, 3), np.uint8)
    ok = np.arange(len(poses)) if valid is None else np.flatnonzero(valid)
    for i in range(0, len(ok), batch):
        idx = ok[i : i + batch]
        x = to_input(poses[idx]).to(device)
        if x.dim() == 4:  # the nets are channels_last
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device):
            out[idx] = to_uint8(net(x))
    net.train(was_training)
    return out


# --------------------------------------------------------------------------- logs and pictures


class TrainLog:
    """train_log.csv: one row per epoch, the whole file rewritten atomically each time (never half a row)."""

    def __init__(self, path, rows=()):
        self.path, self.rows = Path(path), [dict(r) for r in rows]

    def append(self, row):
        """Add an epoch's row (written out by write())."""
        self.rows.append({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})

    def write(self):
        names = list(dict.fromkeys(k for r in self.rows for k in r))
        with atomic_path(self.path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, names)
            w.writeheader()
            w.writerows(self.rows)

    def column(self, name):
        """(epochs, values) of one column, skipping rows without it."""
        pts = [(float(r["epoch"]), float(r[name])) for r in self.rows if r.get(name) not in (None, "")]
        return [p[0] for p in pts], [p[1] for p in pts]


def plot_curves(log, path, panels, title="", legend_size=None):
    """A PNG of TrainLog columns per epoch: side-by-side panels, one per (columns, y label, log scale?)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(10, 3.6), squeeze=False)
    for ax, (cols, label, log_scale) in zip(axes[0], panels, strict=True):
        for c in cols:
            x, y = log.column(c)
            if x:
                ax.plot(x, y, label=c, marker="." if len(x) < 30 else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        if log_scale:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=legend_size)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def plot_losses(log, path, loss_cols=("train_l1", "val_l1"), metric_cols=("val_ssim", "val_box_ssim"), title=""):
    """loss.png: loss curves (left) and validation metrics (right) per epoch, from a TrainLog."""
    # Losses on a log scale: the first epochs' would flatten the rest of the curve.
    plot_curves(log, path, [(loss_cols, "L1 (pixels in [0, 1])", True), (metric_cols, "SSIM", False)], title)


def sample_grid(rows, path, scale=2):
    """samples.png: rows of (N, S, S, 3) uint8 BGR tiles (e.g. skeleton / generated / real), upscaled x scale."""
    import cv2

    img = np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)
    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    write_png(path, img, compression=3)
    return img


def describe(m):
    """One line of validation metrics (with GenGAN's sharpness and flicker when there)."""
    extra = "".join(f", {k} {m[k]:.2f}" for k in ("sharpness", "flicker") if k in m)
    return (f"epoch {m['epoch']}, val L1 {m['l1']:.4f}, PSNR {m['psnr']:.2f}, SSIM {m['ssim']:.3f}, "
            f"body-box SSIM {m['box_ssim']:.3f}{extra}")  # fmt: skip


# --------------------------------------------------------------------------- the run's bookkeeping


class TrainRun:
    """The bookkeeping both trainers share: the plan (epochs, or minutes with the schedules on the clock),
    progress, step timing, the NaN guard, and per epoch train_log.csv, latest.pth / best.pth, the plots and
    samples.png. `restored` = restore_progress(...) continues a resumed run's epoch, step, clock and best.
    Under torchrun (ranks) steps are global steps (one global batch each), the clock is rank 0's, and only rank 0
    holds the folder lock and calls end_epoch.
    """

    def __init__(self, out, *, epochs, steps_per_epoch, images_per_step, time_budget, best, restored=None,
                 log_rows=(), nan_hint="", verbose=True, ranks=None):  # fmt: skip
        self.out, self.nan_hint, self.verbose, self.ranks = Path(out), nan_hint, verbose, ranks or Ranks()
        self.n_epochs, self.steps_per_epoch, self.images_per_step = epochs, steps_per_epoch, images_per_step
        self.budget = 60.0 * time_budget  # s; 0: run n_epochs epochs
        self.total_steps = epochs * steps_per_epoch
        self.epoch, self.step, self.seconds, self.best = restored or (0, 0, 0.0, best)
        self.last_good = self.epoch  # the epoch whose checkpoint is on disk (0: none written)
        # A resumed run's log comes from its checkpoint (rows of later epochs, whose weights were never kept, are
        # dropped); train_log.csv is only its copy for people and plots.
        self.log = TrainLog(self.out / "train_log.csv", [r for r in log_rows if int(r["epoch"]) <= self.epoch])
        self.t_origin, self.plot_seconds = None, 0.0
        self.totals = {"images": 0, "step_seconds": 0.0, "data_seconds": 0.0}  # this call's steps

    def plan(self):
        return f"{self.budget / 60:g} min" if self.budget else f"{self.n_epochs} epochs"

    def progress(self, now):
        """Share of the plan done (0 -> 1) at `now` seconds of training: by the clock with a budget, else by steps."""
        return (now / self.budget) if self.budget else self.step / max(self.total_steps, 1)

    def elapsed(self):
        """Seconds of training so far, on this process's clock."""
        return time.perf_counter() - self.t_origin

    def now(self):
        """Seconds of training so far that decide the schedule and the end: with a time budget, rank 0's on every
        rank (their clocks differ, and one more step on one rank than on the others would hang them)."""
        return self.ranks.agree(self.elapsed()) if self.budget else self.elapsed()

    def epochs(self):
        """Epoch numbers until the plan is done; starts the clock (a resumed run's train_seconds carry over)."""
        self.t_origin = time.perf_counter() - self.seconds
        while self.progress(self.now()) < 1.0:
            self.epoch += 1
            self.n_img, self.t_data, self.t_steps, self.steps_done = 0, 0.0, 0.0, 0  # this epoch's
            yield self.epoch

    def bar(self):
        """This epoch's progress bar over its steps."""
        desc = f"epoch {self.epoch}" + ("" if self.budget else f"/{self.n_epochs}")
        return tqdm(range(self.steps_per_epoch), desc=desc, leave=False, disable=not self.verbose, dynamic_ncols=True)

    def check(self, name, value, lr):
        """The NaN guard: a NaN / inf loss stops training (UserError) before any checkpoint holds its weights."""
        if not math.isfinite(value):
            latest = self.out / "latest.pth"
            kept = "no checkpoint written"
            if self.last_good:
                kept = f"last good checkpoint kept: {latest} (epoch {self.last_good})"
            raise UserError(f"{name} became {value} at epoch {self.epoch} step {self.step + 1} (lr {lr:.2g}): training "
                            f"stopped, {kept}; {self.nan_hint}")  # fmt: skip

    def count(self, n_img, t0, t1, t2):
        """A step done: n_img images, begun at t0, its batch ready at t1, finished at t2 (time.perf_counter)."""
        self.step += 1
        self.steps_done += 1
        self.n_img += n_img
        self.t_data += t1 - t0
        self.t_steps += t2 - t0
        self.totals["images"] += n_img
        self.totals["step_seconds"] += t2 - t0
        self.totals["data_seconds"] += t1 - t0

    def out_of_time(self):
        return self.budget and self.now() >= self.budget

    def row(self, now, **columns):
        """The epoch's train_log.csv row: epoch, step, images (cumulative: step x images per step), seconds, the
        trainer's columns, then this epoch's images/s and the share of step time spent preparing batches."""
        steps = max(self.t_steps, 1e-9)
        rates = {
            "img_per_s": self.n_img / steps,
            "data_share": self.t_data / steps,
            "it_per_s": self.steps_done / steps,
        }
        return {"epoch": self.epoch, "step": self.step, "images": self.step * self.images_per_step,
                "seconds": round(now, 2), **columns, **rates}  # fmt: skip

    def end_epoch(self, *, now, row, metrics, score, ckpt, schedule, plot, samples):
        """Log the epoch's row, write latest.pth (best.pth too when metrics[score] beats the best so far), redraw
        the plots when due (plot(log)) and samples.png (samples: maps, fake, real (N, S, S, 3) uint8) -> is_best.

        ckpt: the trainer's part of the checkpoint; schedule: its part of ckpt["schedule"].
        """
        self.log.append(row)
        is_best = metrics[score] > self.best[score]
        if is_best:
            self.best = {"epoch": self.epoch, **metrics}
        schedule = {"kind": "warmup-cosine", "progress": self.progress(now), "total_steps": self.total_steps,
                    "budget_s": self.budget, **schedule}  # fmt: skip
        ckpt = {
            **ckpt,
            "schedule": schedule,
            "epoch": self.epoch,
            "step": self.step,
            "train_seconds": now,
            "val": metrics,
            "best": self.best,
            "log": self.log.rows,
        }
        # Checkpoints first, the CSV copy of their log after: an interrupt in between leaves a consistent latest.pth
        # whose log the next epoch writes out again.
        save_checkpoint(ckpt, self.out / "latest.pth")
        if is_best:
            save_checkpoint(ckpt, self.out / "best.pth")
        self.log.write()
        self.last_good = self.epoch
        pause_here("train:epoch-saved")
        if self.progress(now) >= 1.0 or self.plot_seconds <= PLOT_SHARE * now:
            t_plot = time.perf_counter()
            plot(self.log)
            self.plot_seconds += time.perf_counter() - t_plot
        show = np.linspace(0, len(samples[0]) - 1, min(N_SAMPLES, len(samples[0]))).round().astype(int)
        sample_grid([rows[show] for rows in samples], self.out / "samples.png")
        return is_best

    def __enter__(self):
        """Hold the checkpoint folder for this run: a second training into it refuses instead of mixing two runs'
        best.pth, latest.pth and log."""
        from filelock import FileLock, Timeout

        with self.ranks.together():  # rank 0 writes the folder, so it alone holds it; a refusal stops every rank
            if self.ranks.main:
                self.out.mkdir(parents=True, exist_ok=True)
                self._lock = FileLock(self.out / ".training.lock", is_singleton=False)
                try:
                    self._lock.acquire(timeout=0)
                except Timeout:
                    raise UserError(f"another training is writing to {self.out} right now: wait for it to finish, or "
                                    "train into another folder with --out") from None  # fmt: skip
        return self

    def __exit__(self, *exc):
        if self.ranks.main:
            self._lock.release()
        return False

    def eta(self, now):
        left = (self.budget - now) if self.budget else now / max(self.step, 1) * (self.total_steps - self.step)
        return f"ETA {max(0.0, left) / 60:.1f} min"


# --------------------------------------------------------------------------- a trained generator


class TrainedGenerator:
    """A checkpoint rebuilt as a generator: generate(ske) / generate_batch(xy) -> uint8 BGR frames.

    Each trainer's generator class sets FORMAT (its checkpoints' format), KEYS (what it needs), RETRAIN (the
    fix for a file this version cannot use), and implements net_class(ckpt) and inputs(poses).
    `checkpoint` is a path or an already loaded checkpoint dict.
    """

    FORMAT = RETRAIN = None
    KEYS = CKPT_KEYS
    coherent = False  # True: generate_batch reads its poses as one clip (pass whole clips)

    def __init__(self, checkpoint, device="auto", *, gen_type=None, size=None):
        loaded = isinstance(checkpoint, dict)
        ckpt = checkpoint if loaded else load_checkpoint(
            checkpoint, fmt=self.FORMAT, gen_type=gen_type, size=size, keys=self.KEYS, fix=self.RETRAIN
        )  # fmt: skip
        self.what = "checkpoint" if loaded else f"checkpoint {checkpoint}"
        with unusable(self.what, self.RETRAIN):
            self.gen_type, self.size = int(ckpt["gen_type"]), int(ckpt["size"])
            cls = self.net_class(ckpt)
        self.device = pick_device(device)
        self.net = build_from_checkpoint(cls, ckpt["model_args"], ckpt["model"], what=self.what, fix=self.RETRAIN)
        self.net.to(self.device, memory_format=torch.channels_last).eval()
        self.epoch = ckpt.get("epoch")  # when it was saved
        self.val = ckpt.get("val", {})  # its validation metrics
        self.data = ckpt.get("data", {})  # what it trained on: sha256, params, [start, stop) of train and val

    @classmethod
    def load_best(cls, vs, gen_type, *, size, device, allow_foreign=False):
        """gen_type's best.pth on target vs as a generator, checked to be that footage's (check_same_data)."""
        gen = cls(best_checkpoint(vs, gen_type, size), device, gen_type=gen_type, size=size)
        check_same_data(gen, vs, allow_foreign=allow_foreign)
        return gen

    def net_class(self, ckpt):
        raise NotImplementedError

    def inputs(self, poses):
        """A batch of poses (as generate_batch passes them to render_poses) -> the net's input tensor."""
        raise NotImplementedError

    def generate(self, ske):
        """One Skeleton -> (S, S, 3) uint8 BGR."""
        return self.generate_batch(ske.xy[None])[0]

    def generate_batch(self, xy, batch=RENDER_BATCH):
        """(N, 13, 2) float32 joints in [0, 1] -> (N, S, S, 3) uint8 BGR; poses with NaN joints give black frames."""
        xy = np.asarray(xy, np.float32).reshape(-1, N_JOINTS, 2)
        return self.render(xy, np.isfinite(xy).all(axis=(1, 2)), batch)

    def generate_clip(self, xy, batch=RENDER_BATCH):
        """A whole clip's (N, 13, 2) poses -> its frames, yielded `batch` at a time ((b, S, S, 3) uint8 BGR): memory
        holds one batch however long the clip (DanceDemo, Evaluate)."""
        for i in range(0, len(xy), batch):
            yield self.generate_batch(xy[i : i + batch], batch)

    def render(self, poses, valid, batch=RENDER_BATCH):
        return render_poses(self.net, poses, self.inputs, size=self.size, device=self.device, valid=valid, batch=batch)


def report_trained(path, load, force_option, *, vs):
    """Print `already trained` for best.pth once it has loaded whole (load(path) -> its TrainedGenerator) and proved
    to be this target's (vs): a damaged or foreign file is reported now, not by the next demo."""
    gen = load(path)
    check_same_data(gen, vs)
    with unusable(f"checkpoint {path}", f"retrain it ({force_option})"):
        line = describe({"epoch": gen.epoch, **gen.val})
    print(f"already trained: {path} ({line}); {force_option} retrains, --resume continues")


def open_target(video, cfg, *, gen_type, out, retrain, force_option, load, framing):
    """A trainer CLI's start: (ranks, the target's VideoSkeleton, the checkpoint folder), or None when best.pth is
    there and retrain (force or --resume) is off: rank 0 then reports it (report_trained; load(path, gen_type=,
    size=) -> its generator). Under torchrun every rank opens the target, and a problem on any stops them all.
    framing: the target's square, "person" or "center" (--framing)."""
    from deepdance.cache import VideoSkeleton

    opened = partial(VideoSkeleton, video, framing=framing)

    ranks = setup_ranks(cfg.device)  # a missing GPU fails before any video work; under torchrun: meet the others
    ranks.split_batch(cfg.batch)  # more processes than --batch frames: said before any video work too
    with ranks.together():  # rank 0 first: it extracts an uncached video (with its progress bar) ...
        vs = opened() if ranks.main else None
    with ranks.together():  # ... then the others load its cache (another node: extract their own, quietly)
        vs = vs if vs is not None else opened(verbose=False)
        out = Path(out) if out else checkpoint_dir(vs, gen_type, cfg.size)
        trained = not retrain and (out / "best.pth").exists()
        if trained and ranks.main:
            load = partial(load, gen_type=gen_type, size=cfg.size)
            report_trained(out / "best.pth", load, force_option, vs=vs)
    return None if trained else (ranks, vs, out)


# --------------------------------------------------------------------------- the CLI both trainers share


def add_training_args(p, d, *, lr, lr_help, epochs_help, folder):
    """The arguments the trainers take: the target video, then --epochs .. --aug (defaults from the config d)."""
    from deepdance.cache import add_framing_arg

    p.add_argument("video", nargs="?", default=None, help="target video (default: the built-in sample)")
    p.add_argument("--epochs", type=int, default=0, help=epochs_help)
    p.add_argument("--time_budget", type=float, default=0.0, metavar="MINUTES",
                   help="train this long instead of --epochs; schedules follow the clock (default off)")  # fmt: skip
    p.add_argument("--batch", type=int, default=d.batch, help=f"frames per batch (default {d.batch})")
    p.add_argument("--lr", type=float, default=lr, help=f"{lr_help} (default {lr})")
    p.add_argument(
        "--size",
        type=int,
        default=d.size,
        choices=(64, 128, 256),
        help=f"frame side in px (default {d.size}; 256: a CUDA GPU)",
    )
    p.add_argument("--device", default=d.device, choices=("auto", "cpu", "cuda"), help="(default auto: cuda if any)")
    p.add_argument("--resume", action="store_true", help="continue latest.pth: its epochs, optimizers, schedule, RNG")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    p.add_argument("--out", default=None, help=f"checkpoint folder (default data/checkpoints/<target>/{folder})")
    add_framing_arg(p, "the target's square")
    p.add_argument("--aug", type=float, default=d.aug_prob, help=f"share of samples augmented (default {d.aug_prob})")
    p.add_argument(
        "--lambda_L1",
        type=float,
        nargs="+",
        default=list(d.lambda_L1),
        metavar="W",
        help=f"pixel L1 weight: one number, or START END for a linear schedule over training (default "
        f"{' '.join(f'{v:g}' for v in d.lambda_L1)})",
    )


def check_training_args(a, force, force_option):
    """UserError for what add_training_args' values cannot mean; force: whether force_option (start over) is on."""
    if force and a.resume:
        raise UserError(f"{force_option} (start over) and --resume (continue) contradict each other: pick one")
    if a.epochs < 0 or a.batch < 2 or a.lr <= 0 or a.time_budget < 0 or not 0 <= a.aug <= 1:
        raise UserError("need --epochs >= 0, --batch >= 2, --lr > 0, --time_budget >= 0 and --aug in [0, 1]")
    if len(a.lambda_L1) > 2 or min(a.lambda_L1) < 0:
        raise UserError(f"--lambda_L1 takes one weight or START END, all >= 0; got {' '.join(map(str, a.lambda_L1))}")


def lambda_pair(value):
    """--lambda_L1's one or two numbers (or an older checkpoint's single float) -> (start, end)."""
    values = [float(v) for v in (value if isinstance(value, list | tuple) else [value])]
    return (values[0], values[-1])


def lambda_at(progress, start_end):
    """A loss weight scheduled linearly from start to end as training progresses (progress in [0, 1])."""
    start, end = start_end
    return start + (end - start) * min(max(progress, 0.0), 1.0)


def config_from_args(cls, a, **options):
    """A config dataclass from parsed arguments: each field from the argument of its name, or of options[field]."""
    given = vars(a)
    names = {f.name: options.get(f.name, f.name) for f in fields(cls)}
    return cls(**{field: given[name] for field, name in names.items() if name in given})


# --------------------------------------------------------------------------- the one training loop


class TrainModel:
    """What the training loop (fit) asks of a generator's trainer, as pix2pix's BaseModel: each trainer builds one
    (its nets, optimizers, data and validation block, fresh or resumed) and fit() runs the epochs, the validation,
    the checkpoints, the log, the plots and the epoch line around it.

    Attributes a trainer sets:
        nets             the nets whose weights every torchrun rank must hold alike (the generator first)
        rng              torch.Generator drawing the epochs' permutations (and the trainer's augmentation)
        n_items          what an epoch's permutation runs over (frames, or the temporal GAN's windows)
        batch            items in one global step
        images_per_step  frames one global step trains on
        score            the validation metric that picks best.pth
    """

    nets: list
    rng: torch.Generator
    n_items: int
    batch: int
    images_per_step: int
    score: str

    def schedule(self, progress):
        """Set the learning rates (and scheduled weights) for `progress` (0 -> 1) of the plan -> {name: value},
        logged and stored in the checkpoint. The first entry is the learning rate the messages name."""
        raise NotImplementedError

    def make_batch(self, idx, shard):
        """The step's batch from idx (LongTensor (batch,): the global batch's items); this rank trains on shard."""
        raise NotImplementedError

    def step(self, batch, sched, *, step, check):
        """One optimisation step -> {term: 0-dim tensor or float}, averaged over the epoch into the log.
        check(name, loss) raises on a NaN / inf loss (call it before an optimizer step that must not see one)."""
        raise NotImplementedError

    def validate(self):
        """The selection block rendered -> (fake (N, S, S, 3) uint8 BGR, {metric: float})."""
        raise NotImplementedError

    def log_columns(self, means, sched):
        """The epoch's train_log.csv columns from its mean terms and schedule (before the validation metrics)."""
        return {**sched, **means}

    def checkpoint(self):
        """The trainer's part of the checkpoint (docs/training.md lists every key)."""
        raise NotImplementedError

    def samples(self, fake):
        """The rows of samples.png, each (N, S, S, 3) uint8: by default skeleton maps, generated, real."""
        raise NotImplementedError

    def epoch_line(self, *, epoch, now, means, metrics, row, is_best, run):
        """The one line printed per epoch."""
        raise NotImplementedError

    def plot(self, log):
        """Redraw the loss plots from the TrainLog."""
        raise NotImplementedError

    def warning(self, log):
        """A line worth printing after the epoch line (e.g. a discriminator that overpowers), or None."""
        return None


def start_run(model, cfg, *, out, images, nan_hint, verbose, ranks):
    """The TrainRun of a model: cfg's epochs (or as many as `images` training images), or its time budget; a resumed
    run's progress and log carried on."""
    epochs = cfg.epochs or epochs_for(images, model.steps_per_epoch * model.images_per_step)
    return TrainRun(out, epochs=epochs, steps_per_epoch=model.steps_per_epoch, images_per_step=model.images_per_step,
                    time_budget=cfg.time_budget, best={model.score: -math.inf}, restored=model.restored,
                    log_rows=resumed_log(model.state, out), nan_hint=nan_hint, verbose=verbose,
                    ranks=ranks)  # fmt: skip


GUARD_EVERY = 10  # steps between the NaN guard's checks of the running loss (each one syncs with the device)


def fit(model, run, *, ranks, verbose):
    """Train `model` for the plan of `run` (a TrainRun): the epochs, each step timed and NaN-guarded, and after each
    epoch (rank 0) validation, train_log.csv, latest.pth / best.pth, plots and samples.png -> the last log row."""
    last = None
    with run:  # holds the checkpoint folder: a second training into it refuses
        for epoch in run.epochs():
            perm = torch.randperm(model.n_items, generator=model.rng)  # the same on every rank: one seed
            sums, counts, sched = {}, {}, {}
            bar = run.bar()
            for i in bar:
                t0 = time.perf_counter()
                sched = model.schedule(run.progress(run.now()))  # by steps, or by rank 0's clock with a budget
                lr = next(iter(sched.values()))

                def check(name, loss, lr=lr):  # a NaN / inf loss never reaches the weights, on any rank
                    run.check(name, float(ranks.mean(loss.detach())), lr)

                batch = model.make_batch(perm[i * model.batch : (i + 1) * model.batch], ranks.shard)
                t1 = time.perf_counter()
                terms = model.step(batch, sched, step=run.step, check=check)
                for k, v in terms.items():  # tensors stay on the device: no per-step sync
                    sums[k], counts[k] = sums.get(k, 0.0) + v, counts.get(k, 0) + 1
                t2 = time.perf_counter()
                if i % GUARD_EVERY == 0 or i == run.steps_per_epoch - 1:
                    first = next(iter(sums))
                    total = float(
                        ranks.mean(torch.as_tensor(sums[first], device=ranks.device))
                    )  # every rank stops alike
                    run.check(first, total, lr)
                    bar.set_postfix({first: f"{total / counts[first]:.4f}", "lr": f"{lr:.2g}"})
                run.count(model.images_per_step, t0, t1, t2)
                if run.out_of_time():
                    break  # out of time: this partial epoch still gets validated and saved
            bar.close()
            means = ranks.mean_of({k: float(sums[k]) / counts[k] for k in sums})  # as one process would log
            ranks.check_same_weights(model.nets, epoch)
            if ranks.main:  # validation, log, checkpoints: rank 0's alone, the others wait at the next step
                last = end_of_epoch(model, run, epoch=epoch, means=means, sched=sched, verbose=verbose)
    return last


def end_of_epoch(model, run, *, epoch, means, sched, verbose):
    """Validate, log, checkpoint, plot and print one epoch -> its log row."""
    fake, metrics = model.validate()
    now = run.elapsed()
    row = run.row(now, **model.log_columns(means, sched), **{f"val_{k}": v for k, v in metrics.items()})
    is_best = run.end_epoch(now=now, row=row, metrics=metrics, score=model.score, ckpt=model.checkpoint(),
                            schedule=sched, plot=model.plot, samples=model.samples(fake))  # fmt: skip
    if verbose:
        tqdm.write(model.epoch_line(epoch=epoch, now=now, means=means, metrics=metrics, row=row, is_best=is_best,
                                    run=run))  # fmt: skip
        warning = model.warning(run.log)
        if warning:
            tqdm.write(f"  warning: {warning}")
    return row
