"""A trained generator: a checkpoint rebuilt as generate(ske) / generate_batch(xy), and the one rendering loop that
validation, the demo and Evaluate share.
"""

from deepdance.checkpoints import (
    CKPT_KEYS,
    best_checkpoint,
    build_from_checkpoint,
    check_same_data,
    checkpoint_size,
    load_checkpoint,
    unusable,
)
from deepdance.distributed import autocast, pick_device
from deepdance.gentypes import RENDER_BATCH
from deepdance.skeleton import N_JOINTS

import numpy as np
import torch


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
            self.gen_type, self.size = int(ckpt["gen_type"]), checkpoint_size(ckpt)
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
