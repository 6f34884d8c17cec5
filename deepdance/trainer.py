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
import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from deepdance.checkpoints import (
    resumed_log,
    save_checkpoint,
)
from deepdance.cli import UserError, pause_here
from deepdance.distributed import Ranks
from deepdance.files import atomic_path, write_png
from deepdance.gentypes import SIZE
from deepdance.training_data import AUG_PROB, AUG_SCALE, AUG_SHIFT

import numpy as np
import torch
from tqdm import tqdm

SEED = 1337
LAMBDA_FEAT = 0.0
LAMBDA_POSE = 0.0
LAMBDA_PRESENCE = 0.0
LAMBDA_SELFIE = 0.0
# Frames of each batch the MediaPipe terms score: batches are shuffled, so these are a random sample, and a quarter
# of the default batch cuts the terms' cost (the pose net on a 128 px crop: about a generator step's) by 4.
MP_FRAMES = 8
N_SAMPLES = 8  # validation frames shown in samples.png
PLOT_SHARE = 0.03  # loss plots are redrawn (~0.5-2 s with matplotlib) only while that stays under this share of


# --------------------------------------------------------------------------- run setup


def set_seed(seed):
    """Seed Python, NumPy and torch (CPU and CUDA) at once."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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
    # MediaPipe's own nets as loss terms (perceptual.py), weights next to the trainer's pixel L1 on [-1, 1]:
    lambda_feat: float = LAMBDA_FEAT  # pose-net features inside the person's box: detail pixel losses blur away
    lambda_pose: float = LAMBDA_POSE  # BlazePose's joints on the generated frame against the input skeleton
    lambda_presence: float = LAMBDA_PRESENCE  # -log BlazePose's "a person is there" on the generated frame
    lambda_selfie: float = LAMBDA_SELFIE  # selfie segmentation of the generated frame against the real one's
    mp_frames: int = MP_FRAMES  # frames of each batch those terms score (0: all)
    # Not a field (no annotation), so never stored: the fields typed on the command line (options.config_from_args),
    # which --resume judges against the run whatever their value; None for a config made in code.
    typed = None


def perceptual_loss(cfg, device):
    """cfg's MediaPipe loss terms as one module on device (perceptual.PerceptualLoss), or None when all weigh 0:
    then nothing is built and a run is bit for bit what it was without them."""
    weights = {"features": cfg.lambda_feat, "pose": cfg.lambda_pose, "presence": cfg.lambda_presence,
               "mask": cfg.lambda_selfie}  # fmt: skip
    if not any(weights.values()):
        return None
    from deepdance.perceptual import PerceptualLoss  # builds the nets from the mediapipe wheel (< 0.5 s)

    return PerceptualLoss(**weights).to(device)


def perceptual_columns(means):
    """The log's columns for the MediaPipe terms of an epoch's means (mp_features -> train_mp_features)."""
    return {f"train_{k}": v for k, v in means.items() if k.startswith("mp_")}


# --------------------------------------------------------------------------- data


def epochs_for(images, images_per_epoch):
    """A trainer's default plan: enough epochs to see `images` training images (at least one). Counting images, not
    epochs, gives a short clip as many updates as a long one (README "Training length")."""
    return max(1, math.ceil(images / max(images_per_epoch, 1)))


# --------------------------------------------------------------------------- losses


# --------------------------------------------------------------------------- inference


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


def describe_metrics(m):
    """One line of validation metrics (with GenGAN's sharpness and flicker when there)."""
    extra = "".join(f", {k} {m[k]:.2f}" for k in ("sharpness", "flicker") if k in m)
    return (f"epoch {m['epoch']}, val L1 {m['l1']:.4f}, PSNR {m['psnr']:.2f}, SSIM {m['ssim']:.3f}, "
            f"body-box SSIM {m['box_ssim']:.3f}{extra}")  # fmt: skip


# --------------------------------------------------------------------------- the run's bookkeeping

TRAINING_LOCK = ".training.lock"  # in a checkpoint folder: held (flock) by the training writing there
LOCK_GRACE_S = 1.0  # how long a training waits for the folder's lock before refusing (folder_busy may hold it briefly)


def busy_line(out):
    """What a training refuses with when another one holds checkpoint folder `out`."""
    return f"another training is writing to {out} right now: wait for it to finish, or train into another folder " \
           "with --out"  # fmt: skip


def folder_busy(out):
    """True while another training holds checkpoint folder `out` (TrainRun): its best.pth is a model half-trained,
    not a finished one. Looks by taking the lock for an instant; False where there is no lock or it cannot tell."""
    from filelock import FileLock, Timeout

    lock = Path(out) / TRAINING_LOCK
    if not lock.is_file():
        return False  # no training ever wrote there: nothing is created to look
    probe = FileLock(lock, is_singleton=False)
    try:
        probe.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:
        return False  # a read-only folder: no training can be writing there
    probe.release()
    return False


PREVIOUS = "previous"  # where a forced retrain keeps the run it replaces until it has something better, or ends
HELD_BEST = "retrain-best.pth"  # a forced retrain's best while it scores below the previous run's best.pth
KEPT_FILES = ("best.pth", "latest.pth", "train_log.csv")


class PreviousRun:
    """What a retrain from scratch into a trained folder keeps: best.pth stays the previous run's model until the
    new run scores better (or ends: its plan done, the new best replaces it); meanwhile the new best waits in
    HELD_BEST, and the previous best.pth, latest.pth and train_log.csv stay in PREVIOUS/ (hard links: no copy). An
    interrupted retrain, resumed, goes on holding."""

    def __init__(self, out, score, *, resumed):
        self.out, self.score, self.folder = Path(out), score, Path(out) / PREVIOUS
        self.created = False
        if not (self.folder / "best.pth").is_file():
            if resumed or not (self.out / "best.pth").is_file():
                self.value = None  # nothing to hold: a first training, or a resumed one that held nothing
                return
            with atomic_path(self.folder) as tmp:
                tmp.mkdir()
                for name in KEPT_FILES:
                    if (self.out / name).is_file():
                        _link_or_copy(self.out / name, tmp / name)
            self.created = True
        elif not resumed:
            (self.out / HELD_BEST).unlink(missing_ok=True)  # an earlier retrain's, interrupted: this one starts over
        self.epoch, self.value = self._previous_best()

    def _previous_best(self):
        """(epoch, score) of the held best.pth; a file torch cannot read counts as beaten by anything."""
        try:
            ckpt = torch.load(self.folder / "best.pth", weights_only=True, map_location="cpu")
            best = ckpt.get("best") or ckpt.get("val") or {}
            return ckpt.get("epoch"), float(best.get(self.score, -math.inf))
        except Exception:  # damaged or foreign: the new run replaces it at its first epoch
            return None, -math.inf

    @property
    def holding(self):
        return self.value is not None

    def save_best(self, ckpt, value):
        """The new run's best so far: best.pth once it beats the previous run's, HELD_BEST until then."""
        if value > self.value:
            save_checkpoint(ckpt, self.out / "best.pth")
            self.release()
        else:
            save_checkpoint(ckpt, self.out / HELD_BEST)

    def end(self):
        """The new run's plan is done: its best replaces the previous run's; nothing is held any more."""
        held = self.out / HELD_BEST
        if held.is_file():
            os.replace(held, self.out / "best.pth")
        self.release()

    def release(self):
        (self.out / HELD_BEST).unlink(missing_ok=True)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.value = None

    def kept_line(self, last_good):
        """What an interrupt leaves, exactly (run_cli's `interrupted:` line)."""
        if not last_good:
            return "nothing of this run was saved; best.pth, latest.pth and train_log.csv are the previous run's"
        previous = f"epoch {self.epoch}, " if self.epoch is not None else ""
        held = f"this run's best so far is in {HELD_BEST}; " if (self.out / HELD_BEST).is_file() else ""
        return (f"best.pth is still the previous run's model ({previous}{self.score} {self.value:.4g}), its "
                f"latest.pth and train_log.csv are in {self.folder}; {held}latest.pth and train_log.csv are this "
                f"run's epoch {last_good} (continue it with --resume)")  # fmt: skip


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:  # a file system without hard links
        shutil.copy2(src, dst)


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
        self.resumed = bool(restored)
        self.previous = None  # PreviousRun, made at the first epoch's end (the score's name is known there)
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
        if self.previous is None:
            self.previous = PreviousRun(self.out, score, resumed=self.resumed)
        save_checkpoint(ckpt, self.out / "latest.pth")
        self.last_good = self.epoch  # latest.pth is this epoch's from here on
        if is_best and self.previous.holding:
            self.previous.save_best(ckpt, metrics[score])
        elif is_best:
            save_checkpoint(ckpt, self.out / "best.pth")
        self.log.write()
        if self.previous.holding and self.progress(now) >= 1.0:
            self.previous.end()
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
                self._lock = FileLock(self.out / TRAINING_LOCK, is_singleton=False)
                try:  # a grace, not 0: folder_busy holds the lock for an instant to look
                    self._lock.acquire(timeout=LOCK_GRACE_S)
                except Timeout:
                    raise UserError(busy_line(self.out)) from None
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.ranks.main:
            self._lock.release()
        if exc_type is KeyboardInterrupt and self.previous is not None and self.previous.holding:
            if not self.last_good and self.previous.created:
                self.previous.release()  # nothing of this run reached the folder: it is as it was
            raise KeyboardInterrupt(self.previous.kept_line(self.last_good)) from None
        return False

    def eta(self, now):
        left = (self.budget - now) if self.budget else now / max(self.step, 1) * (self.total_steps - self.step)
        return f"ETA {max(0.0, left) / 60:.1f} min"


# --------------------------------------------------------------------------- a trained generator


# --------------------------------------------------------------------------- the CLI both trainers share


def lambda_pair(value):
    """--lambda_L1's one or two numbers (or an older checkpoint's single float) -> (start, end)."""
    values = [float(v) for v in (value if isinstance(value, list | tuple) else [value])]
    return (values[0], values[-1])


def lambda_at(progress, start_end):
    """A loss weight scheduled linearly from start to end as training progresses (progress in [0, 1])."""
    start, end = start_end
    return start + (end - start) * min(max(progress, 0.0), 1.0)


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

    def mp_terms(self, fake, real, xy):
        """The MediaPipe loss terms of a generated batch -> (weighted sum, {"mp_<term>": detached value}); (0, {})
        when the run weighs none. fake, real (B, 3, S, S) in [-1, 1]; xy (B, 13, 2) the joints fake was made for."""
        if getattr(self, "_perceptual", False) is False:
            self._perceptual = perceptual_loss(self.cfg, self.device)
        if self._perceptual is None:
            return 0.0, {}
        n = self.cfg.mp_frames or len(fake)
        total, terms = self._perceptual(fake[:n], real[:n], xy[:n])
        return total, {f"mp_{k}": v for k, v in terms.items()}


def start_run(model, cfg, *, out, images, nan_hint, verbose, ranks):
    """The TrainRun of a model: cfg's epochs (or as many as `images` training images), or its time budget; a resumed
    run's progress and log carried on."""
    epochs = cfg.epochs or epochs_for(images, model.steps_per_epoch * model.images_per_step)
    return TrainRun(out, epochs=epochs, steps_per_epoch=model.steps_per_epoch, images_per_step=model.images_per_step,
                    time_budget=cfg.time_budget, best={model.score: -math.inf}, restored=model.restored,
                    log_rows=resumed_log(model.state, out), nan_hint=nan_hint, verbose=verbose,
                    ranks=ranks)  # fmt: skip


GUARD_EVERY = 10  # steps between the NaN guard's checks of the running loss (each one syncs with the device)


def write_config(out, cfg, **facts):
    """config.json beside the checkpoints, for people (pix2pix's opt.txt): every setting of the run's config, the
    ones that differ from the command's defaults again under "changed" with their default, and `facts` (e.g. the
    gen_type). The checkpoints hold the same config; this is a copy to read."""
    default = asdict(type(cfg)())
    values = asdict(cfg)
    changed = {k: {"value": v, "default": default[k]} for k, v in values.items() if v != default[k]}
    doc = {**facts, "config": values, "changed": changed}
    with atomic_path(Path(out) / "config.json") as tmp:
        tmp.write_text(json.dumps(doc, indent=1, default=str) + "\n")


def fit(model, run, *, ranks, verbose):
    """Train `model` for the plan of `run` (a TrainRun): the epochs, each step timed and NaN-guarded, and after each
    epoch (rank 0) validation, train_log.csv, latest.pth / best.pth, plots and samples.png -> the last log row."""
    last = None
    with run:  # holds the checkpoint folder: a second training into it refuses
        if ranks.main:
            write_config(run.out, model.cfg, world_size=ranks.world)
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
