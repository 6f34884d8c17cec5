"""What the trainers train and validate on: the split and its fingerprint, the selection block, augmentation that
moves frames and joints alike, and the temporal GAN's windows of consecutive frames.
"""

from dataclasses import dataclass

from deepdance.cli import UserError
from deepdance.skeleton import N_JOINTS

import numpy as np
import torch
import torch.nn.functional as F

AUG_SHIFT = 0.05  # max random shift, in units of the frame side, applied to image and skeleton alike


AUG_SCALE = 0.08  # max random zoom, +-


AUG_PROB = 0.7  # share of training samples augmented (GenGAN sets its own)


# the training time, and always after the last epoch: on short CPU epochs that is every few epochs
MIN_TRAIN_FRAMES = 16  # fewer training frames than this is refused (two batches of 8 at least)


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
