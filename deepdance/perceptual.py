"""Loss terms for a generator from mediapipe's frozen nets (deepdance.mediapipe_nets): what pixel losses miss.

- features: distance between the pose net's intermediate features of the generated and the real frame, inside the
  person's box (from the known skeleton). Pixel L1/L2 rate the generators' blur at a tenth of a 2-px misalignment and so
  learn to blur; these features rate it above the misalignment (docs in /work/shared/reference, measured).
- pose: BlazePose's landmarks on the generated frame against the input skeleton (pose consistency).
- presence: -log of BlazePose's "a person is there" flag on the generated frame (the flag that keeps the project's
  tracking alive drops on blurred frames).
- mask: selfie segmentation of the generated frame against the real frame's (it collapses on generated frames).

Frames are the project's (B, 3, S, S) BGR in [-1, 1]; xy is the input skeleton, (B, 13, 2) x, y in [0, 1] of the frame
(deepdance.skeleton's joint order; NaN joints are ignored). Only the generated frame gets gradients.
"""

from deepdance.mediapipe_nets import NATIVE_SIZE, pose_net, selfie_net
from deepdance.skeleton import MP_INDICES

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_TAPS = ("add_1", "add_5", "add_8")  # pose net encoder blocks; at a 128 crop: 32x16², 88x8², 144x4²
FEATURE_EXPAND = 0.15  # box around the skeleton grown by this x its side on each side: head top, hands, feet
POSE_EXPAND = 0.25  # BlazePose misses a person who fills its input: the skeleton spans 2/3 of the pose crop


def skeleton_boxes(xy, expand):
    """Square boxes around the skeletons: centres (B, 2) and sides (B,) in frame units; a skeleton without any joint
    gives the whole frame. xy: (B, 13, 2) in [0, 1]."""
    valid = torch.isfinite(xy).all(dim=-1, keepdim=True)
    lo = torch.where(valid, xy, torch.inf).amin(dim=1)
    hi = torch.where(valid, xy, -torch.inf).amax(dim=1)
    empty = ~valid.any(dim=1).squeeze(-1)
    centre = torch.where(empty[:, None], torch.full_like(lo, 0.5), (lo + hi) / 2)
    side = torch.where(empty, torch.ones_like(lo[:, 0]), ((hi - lo).amax(dim=-1) * (1 + 2 * expand)).clamp(min=0.05))
    return centre, side


def crop(frames, centre, side, size):
    """(B, 3, size, size) crops of the frames' square boxes, bilinear, differentiable; outside the frame is black."""
    zeros = torch.zeros_like(side)
    theta = torch.stack(
        [torch.stack([side, zeros, 2 * centre[:, 0] - 1], -1), torch.stack([zeros, side, 2 * centre[:, 1] - 1], -1)],
        dim=1,
    ).to(frames.dtype)
    grid = F.affine_grid(theta, (frames.shape[0], 3, size, size), align_corners=False)
    # grid_sample pads with 0, mid-grey in [-1, 1]: shift so that the padding is black, as mediapipe's crops are.
    return F.grid_sample(frames + 1.0, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1.0


def feature_distance(fake, real):
    """LPIPS-style: channel vectors unit-normalised, squared difference summed over channels, mean over positions."""

    def unit(f):
        return f / (f.pow(2).sum(dim=1, keepdim=True) + 1e-10).sqrt()

    return (unit(fake) - unit(real)).pow(2).sum(dim=1).mean()


class PerceptualLoss(nn.Module):
    """One weight per term; a term whose weight is 0 is not computed (the pose and presence terms cost a whole 256 pose
    net pass, ~3-10x the features'). Frozen nets only: no parameters, nothing in a state_dict.

    crop_size: side of the feature crop around the person (the pose net runs on it at that size, no resizing).
    """

    def __init__(self, *, features=1.0, pose=0.0, presence=0.0, mask=0.0, taps=FEATURE_TAPS, crop_size=128):
        super().__init__()
        self.weights = {"features": features, "pose": pose, "presence": presence, "mask": mask}
        self.taps, self.crop_size = tuple(taps), crop_size
        self.pose_net = pose_net() if features or pose or presence else None
        self.selfie_net = selfie_net() if mask else None

    def terms(self, fake, real, xy):
        """{term: scalar tensor} (unweighted) for the terms with a non-zero weight."""
        out = {}
        xy = xy.to(fake)
        if self.weights["features"]:
            centre, side = skeleton_boxes(xy, FEATURE_EXPAND)
            got = self.pose_net(crop(fake, centre, side, self.crop_size), taps=self.taps, outputs=False, size=None)
            with torch.no_grad():
                ref = self.pose_net(crop(real, centre, side, self.crop_size), taps=self.taps, outputs=False, size=None)
            out["features"] = sum(feature_distance(got[t], ref[t]) for t in self.taps) / len(self.taps)
        if self.weights["pose"] or self.weights["presence"]:
            out |= self._pose_terms(fake, xy)
        if self.weights["mask"]:
            logits = self.selfie_net(fake)["mask_logits"]
            with torch.no_grad():
                real_logits = self.selfie_net(real)["mask_logits"]
                target = torch.sigmoid(real_logits)
                entropy = F.binary_cross_entropy_with_logits(real_logits, target)
            # KL(real || fake) per pixel: 0 when the masks agree, and logits keep a gradient where the fake's mask is
            # saturated (on generated frames it mostly is: all background).
            out["mask"] = F.binary_cross_entropy_with_logits(logits, target) - entropy
        return {k: v for k, v in out.items() if self.weights[k]}

    def _pose_terms(self, fake, xy):
        centre, side = skeleton_boxes(xy, POSE_EXPAND)
        got = self.pose_net(crop(fake, centre, side, NATIVE_SIZE))
        # Landmarks from the crop's [0, 1] back to the frame's, then against the skeleton's joints that are known.
        joints = got["landmarks"][:, list(MP_INDICES), :2]
        joints = centre[:, None] + (joints - 0.5) * side[:, None, None]
        valid = torch.isfinite(xy).all(dim=-1)
        dist = ((joints - torch.nan_to_num(xy)).pow(2).sum(dim=-1) + 1e-8).sqrt()
        pose = (dist * valid).sum() / valid.sum().clamp(min=1)
        return {"pose": pose, "presence": F.softplus(-got["flag_logit"]).mean()}

    def forward(self, fake, real, xy):
        """The weighted sum of the terms, and the terms themselves (detached, for logging)."""
        terms = self.terms(fake, real, xy)
        total = sum(self.weights[k] * v for k, v in terms.items())
        return total, {k: v.detach() for k, v in terms.items()}
