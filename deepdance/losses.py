"""Image losses the trainers share (the adversarial ones are in adversarial.py)."""

import torch
import torch.nn.functional as F


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


def grad_l1(fake, real):
    """L1 between horizontal and vertical finite differences: penalises blurred edges, which pixel L1 tolerates."""
    dx = (fake[..., :, 1:] - fake[..., :, :-1]) - (real[..., :, 1:] - real[..., :, :-1])
    dy = (fake[..., 1:, :] - fake[..., :-1, :]) - (real[..., 1:, :] - real[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()
