"""A target's frames as training data: the blocks it is split into and the tensors the trainers read.

    Split        train | selection | test positions (VideoSkeleton.split makes it)
    PoseDataset  skeleton maps, 26-vectors and frames preloaded as tensors (VideoSkeleton.dataset makes it)

Below VideoSkeleton; torch is imported only when a PoseDataset is built (extraction and the demo never need it).
"""

from typing import NamedTuple

from deepdance.skeleton import render_maps

import numpy as np


class Split(NamedTuple):
    """A target's blocks, as usable-frame positions (VideoSkeleton.split)."""

    train: np.ndarray  # what the trainers learn from and gen_types 1 and 9 retrieve from
    select: np.ndarray  # where the trainers validate and choose best.pth
    test: np.ndarray  # what Evaluate reports: seen by nothing


class PoseDataset:
    """Tensors preloaded once (no per-item I/O): skeleton maps, 26-vectors and target images.

    Items: (map (3,S,S) in [-1,1], vector (26,) in [-1,1], image (3,S,S) in [-1,1]); `batch(idx)`
    returns the same for a whole index tensor without Python-level per-item work.
    """

    def __init__(self, xy, images, positions):
        import torch

        size = images.shape[1]
        self.size = size
        self.positions = torch.as_tensor(np.asarray(positions))
        self.xy = torch.as_tensor(np.asarray(xy, np.float32))  # (N, 13, 2) in [0, 1]
        self.maps = torch.from_numpy(render_maps(xy, size)).permute(0, 3, 1, 2).contiguous()  # (N,3,S,S) uint8
        self.images = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()  # uint8

    def __len__(self):
        return len(self.images)

    def batch(self, idx):
        """(maps, vectors, images) for an index tensor, as float tensors in [-1, 1]."""
        maps = self.maps[idx].float() / 127.5 - 1.0  # (B, 3, S, S) in [-1, 1]
        vec = self.xy[idx].reshape(len(idx), -1) * 2.0 - 1.0  # (B, 26) in [-1, 1]
        img = self.images[idx].float() / 127.5 - 1.0  # (B, 3, S, S) in [-1, 1]
        return maps, vec, img

    def __getitem__(self, i):
        maps, vec, img = self.batch([i])
        return maps[0], vec[0], img[0]
