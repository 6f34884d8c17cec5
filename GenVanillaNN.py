"""Skeleton -> image regression ("VanillaNN"): gen_type 2 (26-vector -> image) and 3 (skeleton map -> image).

    python GenVanillaNN.py <video> <force> <variant>          # reference CLI: variant 1 = vector, 2 = image
    python GenVanillaNN.py ../shared/data/taichi1.mp4 false 2
    python GenVanillaNN.py                                    # the built-in sample, variant 2
    python GenVanillaNN.py data/taichi1.mp4 false 2 --time_budget 7

Also what GenGAN reuses: set_seed, pick_device, image_metrics, the checkpoint loaders (load_checkpoint,
build_from_checkpoint, resume_checkpoint, restore_progress), TrainRun (a run's bookkeeping: schedule clock, NaN guard,
log, checkpoints, plots), the shared CLI arguments, and the UNet generator itself.
"""

import argparse
import csv
import math
import os
import random
import shlex
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from functools import partial
from pathlib import Path

# Set before torch loads its OpenMP runtime. The CPU is shared: OpenMP threads that spin-wait for a descheduled
# sibling made 2-thread training 4-7x slower than 1 thread on the busy 2-core machine (10-19 vs 70 images/s at load
# ~5); passive waiting gave 70-75. Only effective if torch is not imported yet; OMP_WAIT_POLICY=ACTIVE overrides.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tqdm import tqdm  # noqa: E402

from Skeleton import (  # noqa: E402
    N_JOINTS,
    ROOT,
    Skeleton,
    UserError,
    atomic_path,
    maps_to_tensor_layout,
    parse_bool,
    render_maps,
    run_cli,
)
from VideoSkeleton import VideoSkeleton, train_command  # noqa: E402

# --------------------------------------------------------------------------- defaults

SIZE = 64  # px; 128 works with the same code
VARIANT = 2  # 1 = vector (gen_type 2), 2 = skeleton image (gen_type 3)
EPOCHS = {1: 60, 2: 40}  # per variant: ~3 CPU minutes on the built-in sample, ~6 on taichi1 (a quiet 2-core CPU
# does ~185 images/s for variant 1, ~115 for variant 2)
BATCH = 32
LR = 2e-3  # AdamW peak learning rate (linear warm-up, then cosine decay to LR * LR_FLOOR)
LR_FLOOR = 0.02
WARMUP = 0.03  # share of training spent warming up
WEIGHT_DECAY = 1e-4
LAMBDA_L1 = 1.0  # pixel L1 (the reference's loss)
LAMBDA_GRAD = 0.0  # L1 between image gradients, against blur: off, since on taichi1 0.5 gave a worse val L1
# (0.0454 vs 0.0444) and body-box SSIM (0.735 vs 0.737) than pure L1 after 40 epochs
AUG_SHIFT = 0.05  # max random shift, in units of the frame side, applied to image and skeleton alike
AUG_SCALE = 0.08  # max random zoom, +-
AUG_PROB = 0.7  # share of training samples augmented
SEED = 1337
BOX_MARGIN = 0.12  # body-box SSIM: skeleton bbox widened by this x body height (holds head and feet)
N_SAMPLES = 8  # validation frames shown in samples.png
PLOT_SHARE = 0.03  # loss.png is redrawn (~0.5-2 s with matplotlib) only while that stays under this share of
# the training time, and always after the last epoch: on short CPU epochs that is every few epochs
CKPT_FORMAT = "deepdance-vanilla-1"
CKPT_KEYS = ("model", "model_args", "gen_type", "size")  # what every checkpoint needs to rebuild its generator
RESUME_KEYS = ("rng", "epoch", "step", "train_seconds", "best", "config", "data")  # what --resume needs as well
RETRAIN = "retrain it (GenVanillaNN.py with force=true)"  # the fix for a best.pth this version cannot use

VARIANTS = {1: "vector", 2: "image"}
GEN_TYPE = {1: 2, 2: 3}  # variant -> gen_type of the project-wide table
VARIANT_OF = {v: k for k, v in GEN_TYPE.items()}


# --------------------------------------------------------------------------- run helpers


def set_seed(seed):
    """Seed Python, NumPy and torch (CPU and CUDA) at once."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name="auto"):
    """'auto' -> cuda when a GPU is visible, else cpu; UserError if an unavailable device is asked for."""
    name = str(name).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name} asked for, but no CUDA GPU is visible: use --device auto or cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}: use auto, cpu or cuda") from None


def autocast(device):
    """bf16 autocast on CUDA (tensor cores); plain fp32 on CPU, where bf16 has no fast path here (no AVX512-BF16)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def to_uint8(t):
    """(N, 3, S, S) float in [-1, 1] -> (N, S, S, 3) uint8 numpy (channel order untouched, BGR here)."""
    t = ((t.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return t.permute(0, 2, 3, 1).cpu().numpy()


# --------------------------------------------------------------------------- metrics


def body_box_px(xy, size, margin=BOX_MARGIN, min_side=7):
    """Pixel box (x0, y0, x1, y1), end-exclusive, around one pose's joints widened by margin x body height.

    At least `min_side` px each way (SSIM's 7x7 window) and clipped to the frame.
    """
    x0, y0, x1, y1 = (np.asarray(Skeleton(xy).bbox(margin)) * size).tolist()
    box = [math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1)]
    for lo, hi in ((0, 2), (1, 3)):
        short = min_side - (box[hi] - box[lo])
        if short > 0:
            box[lo] -= short // 2
            box[hi] += short - short // 2
        shift = max(0, -box[lo]) - max(0, box[hi] - size)
        box[lo], box[hi] = box[lo] + shift, box[hi] + shift
    return tuple(int(v) for v in box)


def ssim_maps(fake, real, data_range=255.0, win=7, k1=0.01, k2=0.03):
    """Per-pixel SSIM of image pairs, exactly as skimage's structural_similarity defaults compute it.

    (N, S, S, 3) uint8 -> (N, S - win + 1, S - win + 1) float64, channel-averaged; entry (i, j) belongs to the
    win x win window with top-left corner (i, j). skimage averages this over the windows inside the image, so the
    SSIM of any crop is the mean over the windows inside that crop: one pass serves the image and its body box.
    """
    from scipy.ndimage import uniform_filter

    x, y = np.asarray(fake, np.float64), np.asarray(real, np.float64)
    pad = (win - 1) // 2

    def mean(t):  # uniform window means over the whole batch at once (separable), valid positions only
        return uniform_filter(t, size=(1, win, win, 1))[:, pad:-pad, pad:-pad]

    ux, uy = mean(x), mean(y)
    cov = win * win / (win * win - 1.0)  # sample covariance, as skimage's use_sample_covariance=True
    vx, vy, vxy = cov * (mean(x * x) - ux * ux), cov * (mean(y * y) - uy * uy), cov * (mean(x * y) - ux * uy)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(axis=-1)


def image_metrics(fake, real, xy, margin=BOX_MARGIN, reduce=True):
    """L1 (pixels in [0, 1]), PSNR (dB), SSIM and body-box SSIM of generated vs real frames.

    fake, real: (N, S, S, 3) uint8 BGR; xy: (N, 13, 2) ground-truth joints in [0, 1] (they place the body box).
    SSIM is skimage.metrics.structural_similarity(channel_axis=-1, data_range=255), vectorised (see ssim_maps).
    Returns a dict of floats (means), or of (N,) arrays with reduce=False.
    """
    fake, real = np.asarray(fake, np.uint8), np.asarray(real, np.uint8)
    if fake.shape != real.shape or fake.ndim != 4 or fake.shape[1] < 7:
        raise ValueError(f"fake {fake.shape} and real {real.shape} must both be (N, S, S, 3), S >= 7")
    size = real.shape[1]
    diff = fake.astype(np.float32) - real.astype(np.float32)
    l1 = np.abs(diff).mean(axis=(1, 2, 3)) / 255.0
    mse = np.maximum((diff**2).mean(axis=(1, 2, 3)), 1e-10)
    psnr = 10.0 * np.log10(255.0**2 / mse)
    smap = ssim_maps(fake, real)
    ssim = smap.mean(axis=(1, 2))
    box_ssim = np.empty(len(real))
    for i in range(len(real)):
        x0, y0, x1, y1 = body_box_px(xy[i], size, margin)
        box_ssim[i] = smap[i, y0 : y1 - 6, x0 : x1 - 6].mean()  # windows wholly inside the box
    out = {"l1": l1, "psnr": psnr, "ssim": ssim, "box_ssim": box_ssim}
    return {k: float(v.mean()) for k, v in out.items()} if reduce else out


GRAY = np.array([0.114, 0.587, 0.299], np.float32)  # BGR -> luma (ITU-R BT.601)


def body_boxes(xy, size, margin=BOX_MARGIN):
    """(N, 4) int32 pixel boxes (x0, y0, x1, y1), end-exclusive, of ground-truth poses (N,13,2): the body crop."""
    return np.array([body_box_px(p, size, margin) for p in np.asarray(xy, np.float32)], np.int32).reshape(-1, 4)


def gradient_energy(images, boxes):
    """(N,) mean squared Sobel gradient magnitude of the luma inside each box (0-255 scale): detail, not blur."""
    out = np.empty(len(images))
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        gray = images[i, y0:y1, x0:x1].astype(np.float32) @ GRAY  # (h, w) in [0, 255]
        gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
        out[i] = float(np.mean(gx.astype(np.float64) ** 2 + gy.astype(np.float64) ** 2))
    return out


def sharpness_ratio(fake, real, boxes):
    """Gradient energy in the body boxes, generated / real, over all frames: ~1 as sharp as real, < 1 blurrier."""
    e_real = gradient_energy(real, boxes).sum()
    return float(gradient_energy(fake, boxes).sum() / e_real) if e_real > 0 else float("nan")


def temporal_diff(images, consecutive):
    """Mean |frame t+1 - frame t| (pixels in [0, 1]) over the pairs marked consecutive ((N-1,) bool); NaN if none."""
    pairs = np.flatnonzero(consecutive)
    if len(pairs) == 0:
        return float("nan")
    d = [np.abs(images[i + 1].astype(np.int16) - images[i].astype(np.int16)).mean() for i in pairs]
    return float(np.mean(d) / 255.0)


def flicker(fake, real, consecutive):
    """Frame-to-frame change of the outputs / of the real frames: 1 = as steady as real, 0 = frozen, > 1 flickers."""
    d_fake, d_real = temporal_diff(fake, consecutive), temporal_diff(real, consecutive)
    ratio = d_fake / d_real if d_real > 0 else float("nan")
    return {"flicker": float(ratio), "tdiff": d_fake, "tdiff_real": d_real}


# --------------------------------------------------------------------------- networks


def _conv_bn_act(cin, cout, k=3, stride=1, act="relu"):
    """Conv (no bias: BatchNorm follows) + BatchNorm + ReLU / LeakyReLU(0.2)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, padding=(k - 1) // 2 if stride == 1 else 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.2, inplace=True) if act == "lrelu" else nn.ReLU(inplace=True),
    )


def _up_bn_relu(cin, cout):
    """x2 upsampling by a 4x4 stride-2 transposed conv (cheaper than upsample + 3x3 conv) + BN + ReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class ResBlock(nn.Module):
    """Two 3x3 convs with a residual skip: (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c),
        )

    def forward(self, x):
        return F.relu(x + self.body(x))


class SelfAttention(nn.Module):
    """SAGAN self-attention over all H*W positions; gamma starts at 0 so the block starts as the identity."""

    def __init__(self, c):
        super().__init__()
        self.dk = max(8, c // 8)
        self.qkv = nn.Conv2d(c, 2 * self.dk + c, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):  # (B, C, H, W)
        b, c, h, w = x.shape
        q, k, v = self.qkv(x).flatten(2).transpose(1, 2).split([self.dk, self.dk, c], dim=-1)  # (B, HW, *)
        out = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]  # (B, HW, C)
        return x + self.gamma * out.transpose(1, 2).reshape(b, c, h, w)


class UpSkip(nn.Module):
    """Decoder stage: x2 upsample, concatenate the encoder's skip, fuse with a 3x3 conv."""

    def __init__(self, cin, cout):
        super().__init__()
        self.up = _up_bn_relu(cin, cout)
        self.fuse = _conv_bn_act(2 * cout, cout)

    def forward(self, x, skip):
        return self.fuse(torch.cat([self.up(x), skip], dim=1))


class UNet(nn.Module):
    """Skeleton map -> image (gen_type 3, and GenGAN's generator): U-Net, residual blocks + self-attention at the
    bottleneck. (B, in_ch, S, S) in [-1, 1] -> (B, out_ch, S, S) in [-1, 1].

    ps = 2 folds each 2x2 pixel block into channels on the way in (pixel_unshuffle) and unfolds the output
    (pixel_shuffle): no information is lost, and no layer runs at full resolution, where small-channel convs
    are slowest on CPU.
    """

    def __init__(self, size=SIZE, in_ch=3, out_ch=3, ch=(32, 64, 128, 256), n_res=2, attn=True, ps=1):
        super().__init__()
        ch = tuple(ch)
        if size % (ps * 2 ** (len(ch) - 1)):
            raise ValueError(f"size {size} is not divisible by ps * 2**(len(ch) - 1) = {ps * 2 ** (len(ch) - 1)}")
        self.size, self.ps = size, ps
        self.stem = _conv_bn_act(in_ch * ps * ps, ch[0], 3, 1, "lrelu")
        self.down = nn.ModuleList(_conv_bn_act(ch[i], ch[i + 1], 4, 2, "lrelu") for i in range(len(ch) - 1))
        mid = [ResBlock(ch[-1]) for _ in range(n_res)]
        if attn:
            mid.insert(len(mid) // 2, SelfAttention(ch[-1]))
        self.mid = nn.Sequential(*mid)
        self.up = nn.ModuleList(UpSkip(ch[i + 1], ch[i]) for i in reversed(range(len(ch) - 1)))
        self.head = nn.Conv2d(ch[0], out_ch * ps * ps, 3, 1, 1)

    def forward(self, x):
        h = self.stem(F.pixel_unshuffle(x, self.ps) if self.ps > 1 else x)
        skips = [h]
        for down in self.down:
            h = down(h)
            skips.append(h)
        h = self.mid(skips.pop())
        for up in self.up:
            h = up(h, skips.pop())
        h = self.head(h)
        return torch.tanh(F.pixel_shuffle(h, self.ps) if self.ps > 1 else h)


class SE(nn.Module):
    """Squeeze-and-excitation for feature vectors: each feature rescaled by a gate computed from all of them."""

    def __init__(self, d, reduction=4):
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(d, d // reduction), nn.ReLU(inplace=True), nn.Linear(d // reduction, d))

    def forward(self, x):  # (B, D)
        return x * torch.sigmoid(self.gate(x))


class MLPBlock(nn.Module):
    """Residual MLP block with SE: x + SE(Linear(ReLU(BN(Linear(x)))))."""

    def __init__(self, d):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(d, d, bias=False), nn.BatchNorm1d(d), nn.ReLU(inplace=True), nn.Linear(d, d), SE(d)
        )

    def forward(self, x):
        return F.relu(x + self.body(x))


class VectorToImage(nn.Module):
    """26-vector -> image (gen_type 2): residual MLP with SE blocks, then a ConvTranspose2d decoder from 4x4.

    (B, in_dim) in [-1, 1] -> (B, 3, S, S) in [-1, 1], S = ps * 4 * 2**(len(ch) - 1); ps as in UNet.
    """

    def __init__(self, size=SIZE, in_dim=2 * N_JOINTS, hidden=512, n_blocks=3, ch=(256, 128, 64, 32), ps=2, fourier=0):
        super().__init__()
        ch = tuple(ch)
        if size != ps * 4 * 2 ** (len(ch) - 1):
            raise ValueError(f"size {size} != ps * 4 * 2**(len(ch) - 1) = {ps * 4 * 2 ** (len(ch) - 1)}")
        self.size, self.ps, self.fourier = size, ps, fourier
        # Fourier features (sin/cos of the coordinates at `fourier` octaves) let an MLP express sharp functions of
        # position, which plain coordinates make it learn slowly (Tancik et al. 2020).
        self.inp = nn.Sequential(nn.Linear(in_dim * (1 + 2 * fourier), hidden), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*(MLPBlock(hidden) for _ in range(n_blocks)))
        # The raw input joins the MLP's features (a long skip) so exact joint positions reach the decoder.
        self.to_map = nn.Linear(hidden + in_dim, ch[0] * 16)
        self.bn0 = nn.BatchNorm2d(ch[0])
        self.up = nn.Sequential(
            *(
                nn.Sequential(_up_bn_relu(ch[i], ch[i + 1]), _conv_bn_act(ch[i + 1], ch[i + 1]))
                for i in range(len(ch) - 1)
            )
        )
        self.head = nn.Conv2d(ch[-1], 3 * ps * ps, 3, 1, 1)

    def encode(self, v):
        """(B, in_dim) -> (B, in_dim * (1 + 2 * fourier)): the coordinates and their Fourier features."""
        if not self.fourier:
            return v
        f = v[:, None, :] * (math.pi * 2.0 ** torch.arange(self.fourier, device=v.device, dtype=v.dtype))[:, None]
        return torch.cat([v, f.sin().flatten(1), f.cos().flatten(1)], dim=1)

    def forward(self, v):  # (B, in_dim)
        h = self.blocks(self.inp(self.encode(v)))
        h = self.to_map(torch.cat([h, v], dim=1)).view(len(v), -1, 4, 4)  # (B, ch0, 4, 4)
        h = self.head(self.up(F.relu(self.bn0(h))))
        return torch.tanh(F.pixel_shuffle(h, self.ps) if self.ps > 1 else h)


def default_model_args(variant, size=SIZE):
    """Architecture defaults of a variant at a frame size: what checkpoints store and Net(**model_args) rebuilds."""
    if size % 32:
        raise UserError(f"--size must be a multiple of 32 (64 and 128 are tested), got {size}")
    if variant == 2:
        # Bottleneck (residual blocks + self-attention) at 8x8: one more level per doubling of the size.
        levels = int(math.log2(size // 16))
        return {"size": size, "in_ch": 3, "out_ch": 3, "ch": [32 * 2**i for i in range(levels + 1)], "n_res": 2,
                "attn": True, "ps": 2}  # fmt: skip
    ups = int(math.log2(size // 8))  # 4x4 -> size / 2, then pixel_shuffle
    return {"size": size, "in_dim": 2 * N_JOINTS, "hidden": 512, "n_blocks": 3,
            "ch": [256 // 2**i for i in range(ups + 1)], "ps": 2, "fourier": 6}  # fmt: skip


def net_class(variant):
    """The network class of a variant: 1 -> VectorToImage, 2 -> UNet."""
    return VectorToImage if variant == 1 else UNet


def build_net(variant, model_args):
    """The network of a variant, rebuilt from its model_args (as nanoGPT's GPT(GPTConfig(**model_args)))."""
    return net_class(variant)(**model_args)


def pose_input(xy, variant, size):
    """Network input for (N, 13, 2) joints in [0, 1]: variant 1 (N, 26), variant 2 (N, 3, S, S) maps; both in [-1, 1].

    The same transform as PoseDataset.batch, for poses that are not in a dataset (inference, augmentation).
    """
    xy = np.asarray(xy, np.float32).reshape(-1, N_JOINTS, 2)
    if variant == 1:
        return torch.from_numpy(xy.reshape(len(xy), -1) * 2.0 - 1.0)
    return torch.from_numpy(maps_to_tensor_layout(render_maps(xy, size)))


# --------------------------------------------------------------------------- losses and augmentation


def grad_l1(fake, real):
    """L1 between horizontal and vertical finite differences: penalises blurred edges, which pixel L1 tolerates."""
    dx = (fake[..., :, 1:] - fake[..., :, :-1]) - (real[..., :, 1:] - real[..., :, :-1])
    dy = (fake[..., 1:, :] - fake[..., :-1, :]) - (real[..., 1:, :] - real[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()


def random_affine(xy, shift=AUG_SHIFT, scale=AUG_SCALE, prob=AUG_PROB, generator=None):
    """Random zoom about the frame centre + shift for a batch of poses.

    xy (B, 13, 2) in [0, 1] -> (new xy (B, 13, 2), theta (B, 2, 3) for F.affine_grid, which maps output to input
    coordinates, so warping an image by theta moves its content exactly as the joints moved). Samples left
    alone (probability 1 - prob) get the identity.
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


# --------------------------------------------------------------------------- training hygiene (reused by GenGAN)


class TrainLog:
    """train_log.csv: one row per epoch, the whole file rewritten atomically each time (never half a row)."""

    def __init__(self, path, resume_epoch=None):
        self.path, self.rows = Path(path), []
        if resume_epoch is not None and self.path.exists():
            with open(self.path, newline="") as f:
                # Rows past the checkpoint being resumed belong to epochs whose weights were never kept.
                self.rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= resume_epoch]

    def append(self, row):
        self.rows.append({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        fields = list(dict.fromkeys(k for r in self.rows for k in r))
        with atomic_path(self.path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fields)
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
    img = np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)
    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    with atomic_path(path) as tmp:  # the temporary name keeps the .png suffix cv2 picks the format from
        if not cv2.imwrite(str(tmp), img):
            raise UserError(f"cannot write {path}: use a .png name in a writable folder")
    return img


def save_checkpoint(ckpt, path):
    """torch.save one dict atomically: a crash mid-write leaves the previous file intact."""
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def load_checkpoint(path, fmt=CKPT_FORMAT, gen_type=None, size=None, keys=CKPT_KEYS, fix=None):
    """Load a checkpoint dict safely (weights_only) and check it is what the caller expects; UserError if not.

    fix: what to do about an unreadable or incomplete file (e.g. RETRAIN), appended to those messages.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    then = f"; {fix}" if fix else ""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated file, foreign pickle, ...: one line, not a traceback
        error = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
        raise UserError(f"cannot read checkpoint {path}: {error}{then}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != fmt:
        raise UserError(f"{path} is not a {fmt} checkpoint{then}")
    # Another gen_type or size first: that names the fix, where a list of missing keys would not.
    if gen_type is not None and ckpt.get("gen_type", gen_type) != gen_type:
        raise UserError(f"checkpoint {path} is for gen_type {ckpt['gen_type']}, not {gen_type}")
    if size is not None and ckpt.get("size", size) != size:
        raise UserError(f"checkpoint {path} is for size {ckpt['size']}, not {size}: pass --size {ckpt['size']}")
    missing = [k for k in keys if k not in ckpt]
    if missing:
        raise UserError(f"checkpoint {path} lacks {', '.join(missing)}: damaged or from another version{then}")
    return ckpt


@contextmanager
def unusable(what, fix, net=None):
    """Turns what a damaged or foreign checkpoint raises while it is used into one UserError naming it and the fix.

    what: e.g. "checkpoint <path>"; net: the class it was meant for, named in the message.
    """
    try:
        yield
    except UserError:
        raise
    except Exception as e:  # size mismatch (RuntimeError), unknown model_args (TypeError), missing entry (KeyError)...
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        # load_state_dict's first line only says "Error(s) in loading state_dict"; the second names the tensor.
        detail = f"{type(e).__name__}: {lines[min(1, len(lines) - 1)] if lines else ''}"
        detail = detail if len(detail) <= 160 else detail[:157] + "..."
        whose = f"'s {net}" if net else ""
        raise UserError(f"{what} does not fit this version{whose} ({detail}): {fix}") from None


def build_from_checkpoint(cls, model_args, state, what, fix=RETRAIN):
    """cls(**model_args) holding the weights `state` (nanoGPT's rebuild); UserError if the checkpoint does not fit."""
    with unusable(what, fix, cls.__name__):
        net = cls(**model_args)
        net.load_state_dict(state)
    return net


def resume_checkpoint(vs, out, default_out, fingerprint, fmt, gen_type, size, force, keys=()):
    """out/latest.pth checked for --resume: there, readable, complete and trained on this data; else a UserError.

    force: the option that starts over ("force=true", "--force"), named in the messages.
    """
    path = Path(out) / "latest.pth"
    if not path.is_file():
        scratch = train_command(gen_type, vs.video_path, size)
        if Path(out).resolve() != Path(default_out).resolve():
            shown = Path(out).resolve()
            scratch += f" --out {shlex.quote(str(shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else shown))}"
        raise UserError(f"nothing to resume: checkpoint not found: {path}; train from scratch with {scratch}")
    fix = f"start over with {force}"
    state = load_checkpoint(path, fmt, gen_type, size, keys=(*CKPT_KEYS, *RESUME_KEYS, *keys), fix=fix)
    with unusable(f"checkpoint {path}", fix):
        data = state["data"]
        if data["sha256"] != fingerprint["sha256"] or data["params"] != fingerprint["params"]:
            raise UserError(f"{path} was trained on other data ({data['key']}): use {force}")
    return state


def restore_progress(state, path, force, rng, optimizers, score):
    """Optimizer and RNG states of the checkpoint being resumed -> (epoch, step, train_seconds, best).

    optimizers: (optimizer, checkpoint key) pairs; score: the key of `best` that picks best.pth.
    """
    with unusable(f"checkpoint {path}", f"start over with {force}"):
        for opt, key in optimizers:
            opt.load_state_dict(state[key])
        rng.set_state(state["rng"])
        best = dict(state["best"])
        best[score] = float(best[score])  # checked now, not when the first epoch ends
        return int(state["epoch"]), int(state["step"]), float(state["train_seconds"]), best


def data_fingerprint(vs, train_pos, val_pos):
    """What a checkpoint was trained on: the video's content hash, extraction params and the split."""
    return {
        "key": vs.key,
        "sha256": vs.meta["sha256"],
        "params": vs.meta["params"],
        "train": [int(train_pos[0]), int(train_pos[-1]) + 1],
        "val": [int(val_pos[0]), int(val_pos[-1]) + 1],
    }


def split_data(vs):
    """(train positions, val positions, data_fingerprint) of a target; UserError if too few frames to train on."""
    train_pos, val_pos = vs.split()
    if len(train_pos) < 2 or len(val_pos) < 1:
        raise UserError(f"{vs.video_path.name} has {len(vs)} frames with a person: too few to train on (need ~50+)")
    return train_pos, val_pos, data_fingerprint(vs, train_pos, val_pos)


class TrainRun:
    """The bookkeeping both trainers share (GenGAN's too): the plan (epochs, or minutes with the schedules on the
    clock), progress, step timing, the NaN guard, and per epoch train_log.csv, latest.pth / best.pth, the plots
    and samples.png. `restored` = restore_progress(...) continues a resumed run's epoch, step, clock and best.
    """

    def __init__(self, out, epochs, steps_per_epoch, time_budget, best, restored=None, nan_hint="", verbose=True):
        self.out, self.nan_hint, self.verbose = Path(out), nan_hint, verbose
        self.n_epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.budget = 60.0 * time_budget  # s; 0: run n_epochs epochs
        self.total_steps = epochs * steps_per_epoch
        self.epoch, self.step, self.seconds, self.best = restored or (0, 0, 0.0, best)
        self.last_good = self.epoch  # the epoch whose checkpoint is on disk (0: none written)
        self.log = TrainLog(self.out / "train_log.csv", resume_epoch=self.epoch if restored else None)
        self.t_origin, self.plot_seconds = None, 0.0
        self.totals = {"images": 0, "step_seconds": 0.0, "data_seconds": 0.0}  # this call's steps

    def plan(self):
        return f"{self.budget / 60:g} min" if self.budget else f"{self.n_epochs} epochs"

    def progress(self, now):
        """Share of the plan done (0 -> 1) at `now` seconds of training: by the clock with a budget, else by steps."""
        return (now / self.budget) if self.budget else self.step / max(self.total_steps, 1)

    def elapsed(self):
        return time.perf_counter() - self.t_origin

    def epochs(self):
        """Epoch numbers until the plan is done; starts the clock (a resumed run's train_seconds carry over)."""
        self.t_origin = time.perf_counter() - self.seconds
        while self.progress(self.elapsed()) < 1.0:
            self.epoch += 1
            self.n_img, self.t_data, self.t_steps = 0, 0.0, 0.0  # this epoch's
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
        self.n_img += n_img
        self.t_data += t1 - t0
        self.t_steps += t2 - t0
        self.totals["images"] += n_img
        self.totals["step_seconds"] += t2 - t0
        self.totals["data_seconds"] += t1 - t0

    def out_of_time(self, t):
        return self.budget and t - self.t_origin >= self.budget

    def rates(self):
        """This epoch's training images / s and the share of step time spent preparing batches."""
        return {"img_per_s": self.n_img / max(self.t_steps, 1e-9), "data_share": self.t_data / max(self.t_steps, 1e-9)}

    def end_epoch(self, now, row, metrics, score, ckpt, schedule, plot, samples):
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
        ckpt = {**ckpt, "schedule": schedule, "epoch": self.epoch, "step": self.step, "train_seconds": now,
                "val": metrics, "best": self.best}  # fmt: skip
        save_checkpoint(ckpt, self.out / "latest.pth")
        if is_best:
            save_checkpoint(ckpt, self.out / "best.pth")
        self.last_good = self.epoch
        if self.progress(now) >= 1.0 or self.plot_seconds <= PLOT_SHARE * now:
            t_plot = time.perf_counter()
            plot(self.log)
            self.plot_seconds += time.perf_counter() - t_plot
        show = np.linspace(0, len(samples[0]) - 1, min(N_SAMPLES, len(samples[0]))).round().astype(int)
        sample_grid([rows[show] for rows in samples], self.out / "samples.png")
        return is_best

    def eta(self, now):
        left = (self.budget - now) if self.budget else now / max(self.step, 1) * (self.total_steps - self.step)
        return f"ETA {max(0.0, left) / 60:.1f} min"


# --------------------------------------------------------------------------- the generator


class GenVanillaNN:
    """A trained VanillaNN as a generator: generate(ske) / generate_batch(xy) -> uint8 BGR frames.

    `checkpoint` is a path or an already loaded checkpoint dict; the network is rebuilt from its model_args.
    """

    def __init__(self, checkpoint, device="auto", gen_type=None, size=None):
        ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(
            checkpoint, gen_type=gen_type, size=size, fix=RETRAIN
        )  # fmt: skip
        what = "checkpoint" if isinstance(checkpoint, dict) else f"checkpoint {checkpoint}"
        with unusable(what, RETRAIN):
            self.gen_type, self.size = int(ckpt["gen_type"]), int(ckpt["size"])
        if self.gen_type not in VARIANT_OF:
            raise UserError(f"{what} has gen_type {self.gen_type}; GenVanillaNN handles 2 and 3")
        self.variant = VARIANT_OF[self.gen_type]
        self.device = pick_device(device)
        self.net = build_from_checkpoint(net_class(self.variant), ckpt["model_args"], ckpt["model"], what)
        self.net.to(self.device, memory_format=torch.channels_last).eval()
        self.epoch = ckpt.get("epoch")  # when it was saved
        self.val = ckpt.get("val", {})  # its validation metrics
        self.data = ckpt.get("data", {})  # what it trained on: sha256, params, [start, stop) of train and val

    def generate(self, ske):
        """One Skeleton -> (S, S, 3) uint8 BGR."""
        return self.generate_batch(ske.xy[None])[0]

    def generate_batch(self, xy, batch=64):
        """(N, 13, 2) float32 joints in [0, 1] -> (N, S, S, 3) uint8 BGR; poses with NaN joints give black frames."""
        xy = np.asarray(xy, np.float32).reshape(-1, N_JOINTS, 2)
        valid = np.isfinite(xy).all(axis=(1, 2))
        return render_poses(
            self.net, xy, valid, lambda p: pose_input(p, self.variant, self.size), self.size, self.device, batch
        )


@torch.no_grad()
def render_poses(net, poses, valid, to_input, size, device, batch=64):
    """net over poses[valid] in batches -> (N, S, S, 3) uint8 BGR, black frames where not valid (both generators)."""
    out = np.zeros((len(poses), size, size, 3), np.uint8)
    ok = np.flatnonzero(valid)
    for i in range(0, len(ok), batch):
        idx = ok[i : i + batch]
        x = to_input(poses[idx]).to(device)
        if x.dim() == 4:  # the nets are channels_last
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device):
            out[idx] = to_uint8(net(x))
    return out


def checkpoint_dir(vs, variant, size=SIZE):
    """Default checkpoint folder of a variant: data/checkpoints/<target>/vanilla-<vector|image>-<size>/."""
    return vs.checkpoint_dir(f"vanilla-{VARIANTS[variant]}-{size}")


def load_generator(vs, gen_type, size=SIZE, device="auto"):
    """The best trained model of gen_type 2 or 3 for this target, ready to generate; UserError names how to train it."""
    if gen_type not in VARIANT_OF:
        raise UserError(f"GenVanillaNN handles gen_type 2 (vector) and 3 (skeleton image), not {gen_type}")
    variant = VARIANT_OF[gen_type]
    path = checkpoint_dir(vs, variant, size) / "best.pth"
    if not path.exists():
        cmd = train_command(gen_type, vs.video_path, size)
        raise UserError(f"no checkpoint for gen_type {gen_type} on {vs.video_path.stem}: train it with {cmd}")
    return GenVanillaNN(path, device, gen_type=gen_type, size=size)


# --------------------------------------------------------------------------- training


@dataclass
class RunConfig:
    """What shapes any training run, GenGAN's too (add_training_args' options); subclasses add the model's own."""

    size: int = SIZE
    epochs: int = 0  # 0: the trainer's default (EPOCHS)
    time_budget: float = 0.0  # minutes; > 0: train until then (schedules follow the clock), ignoring epochs
    batch: int = BATCH
    aug_prob: float = AUG_PROB
    aug_shift: float = AUG_SHIFT
    aug_scale: float = AUG_SCALE
    seed: int = SEED
    device: str = "auto"


@dataclass
class TrainConfig(RunConfig):
    """Everything that shapes a VanillaNN training run (stored in the checkpoint as `config`)."""

    variant: int = VARIANT
    lr: float = LR
    weight_decay: float = WEIGHT_DECAY
    lambda_L1: float = LAMBDA_L1
    lambda_grad: float = LAMBDA_GRAD
    model_args: dict | None = None  # overrides of default_model_args (experiments; not on the command line)


def lr_at(progress, lr, warmup=WARMUP, floor=LR_FLOOR):
    """Learning rate at a point of training (progress in [0, 1]): linear warm-up, then cosine down to lr * floor."""
    if progress < warmup:
        return lr * max(progress / warmup, 0.05)
    p = min(1.0, (progress - warmup) / (1.0 - warmup))
    return lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * p)))


@torch.no_grad()
def predict(net, inputs, device, batch=64):
    """Run a net in eval mode over (N, ...) inputs -> (N, S, S, 3) uint8; restores its train/eval mode."""
    was_training = net.training
    net.eval()
    out = []
    for i in range(0, len(inputs), batch):
        x = inputs[i : i + batch].to(device)
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device):
            out.append(to_uint8(net(x)))
    net.train(was_training)
    return np.concatenate(out)


def dataset_arrays(ds, variant):
    """(net inputs, maps (N, S, S, 3) uint8, real frames (N, S, S, 3) uint8, xy (N, 13, 2)) of a whole PoseDataset."""
    maps, vec, _ = ds.batch(torch.arange(len(ds)))
    return (
        (vec if variant == 1 else maps),
        ds.maps.permute(0, 2, 3, 1).numpy(),
        ds.images.permute(0, 2, 3, 1).numpy(),
        ds.xy.numpy(),
    )


def train(vs, cfg=None, out=None, resume=False, verbose=True):
    """Train one variant on a VideoSkeleton; writes best.pth, latest.pth, train_log.csv, loss.png, samples.png.

    Returns a summary dict (epochs, images, seconds, images/s, data share, last and best validation metrics).
    """
    cfg = cfg or TrainConfig()
    device = pick_device(cfg.device)
    set_seed(cfg.seed)
    out = Path(out) if out else checkpoint_dir(vs, cfg.variant, cfg.size)
    gen_type = GEN_TYPE[cfg.variant]
    train_pos, val_pos, fingerprint = split_data(vs)

    state, latest, fix = None, out / "latest.pth", "start over with force=true"  # fix: for a damaged latest.pth
    model_args = {**default_model_args(cfg.variant, cfg.size), **(cfg.model_args or {})}
    if resume:
        default_out = checkpoint_dir(vs, cfg.variant, cfg.size)
        state = resume_checkpoint(vs, out, default_out, fingerprint, CKPT_FORMAT, gen_type, cfg.size, "force=true",
                                  keys=("optimizer",))  # fmt: skip
        model_args = state["model_args"]
        if not cfg.epochs and not cfg.time_budget:  # a plain --resume finishes the interrupted run's plan
            with unusable(f"checkpoint {latest}", fix):
                cfg = replace(cfg, epochs=state["config"]["epochs"], time_budget=state["config"]["time_budget"])
        net = build_from_checkpoint(net_class(cfg.variant), model_args, state["model"], f"checkpoint {latest}", fix)
    else:
        net = build_net(cfg.variant, model_args)
    net = net.to(device, memory_format=torch.channels_last)
    # fused: one kernel per step instead of ~10 per tensor (CPU: 7 vs 16-22 ms a step at 2 threads)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    rng = torch.Generator().manual_seed(cfg.seed + 1)  # shuffling + augmentation, apart from the init's stream
    restored = state and restore_progress(state, latest, "force=true", rng, [(opt, "optimizer")], "box_ssim")

    train_ds, val_ds = vs.dataset(train_pos, cfg.size), vs.dataset(val_pos, cfg.size)  # a bad --resume failed first
    bsz = min(cfg.batch, len(train_ds))
    run = TrainRun(out, cfg.epochs or EPOCHS[cfg.variant], len(train_ds) // bsz, cfg.time_budget, {"box_ssim": -1.0},
                   restored, "try a lower --lr", verbose)  # fmt: skip
    val_in, val_maps, val_real, val_xy = dataset_arrays(val_ds, cfg.variant)
    what = f"variant {cfg.variant} ({VARIANTS[cfg.variant]}, gen_type {gen_type}) at {cfg.size} px"
    n_params = sum(p.numel() for p in net.parameters())
    if verbose:
        resumed = f" from epoch {run.epoch}" if state else ""
        print(f"training {what}, {n_params / 1e6:.2f}M parameters, on {device}: {len(train_ds)} train / "
              f"{len(val_ds)} val frames, batch {bsz}, {run.plan()}{resumed} -> {out}")  # fmt: skip

    def plot(log):
        plot_losses(log, out / "loss.png", title=f"{vs.key}: {what}")

    last = None
    for epoch in run.epochs():
        perm = torch.randperm(len(train_ds), generator=rng)
        loss_sum, l1_sum = torch.zeros((), device=device), torch.zeros((), device=device)  # no per-step sync
        bar = run.bar()
        for i in bar:
            t0 = time.perf_counter()
            lr = lr_at(run.progress(t0 - run.t_origin), cfg.lr)
            for g in opt.param_groups:
                g["lr"] = lr
            idx = perm[i * bsz : (i + 1) * bsz]
            maps, vec, real = train_ds.batch(idx)  # (B, 3, S, S), (B, 26), (B, 3, S, S) in [-1, 1]
            real = real.to(device)
            if cfg.aug_prob > 0:
                xy, theta, on = random_affine(train_ds.xy[idx], cfg.aug_shift, cfg.aug_scale, cfg.aug_prob, rng)
                if on.any():
                    real[on.to(device)] = warp(real[on.to(device)], theta[on])  # on the GPU when there is one
                    if cfg.variant == 2:  # redrawn, not warped: crisp lines, as at inference
                        maps[on] = pose_input(xy[on].numpy(), 2, cfg.size)
                    else:
                        vec = pose_input(xy.numpy(), 1, cfg.size)
            x = vec.to(device) if cfg.variant == 1 else maps.to(device).contiguous(memory_format=torch.channels_last)
            real = real.contiguous(memory_format=torch.channels_last)
            t1 = time.perf_counter()
            with autocast(device):
                fake = net(x)
            fake = fake.float()
            l1 = (fake - real).abs().mean()
            loss = cfg.lambda_L1 * l1 + (cfg.lambda_grad * grad_l1(fake, real) if cfg.lambda_grad else 0.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach()
            l1_sum += l1.detach()
            t2 = time.perf_counter()
            if i % 10 == 0 or i == run.steps_per_epoch - 1:  # the NaN guard syncs: not every step
                run.check("loss", loss_sum.item(), lr)
                bar.set_postfix(loss=f"{loss_sum.item() / (i + 1):.4f}", lr=f"{lr:.2g}")
            run.count(len(idx), t0, t1, t2)
            if run.out_of_time(t2):
                break  # out of time: this partial epoch still gets validated and saved
        bar.close()

        val_fake = predict(net, val_in, device)
        metrics = image_metrics(val_fake, val_real, val_xy)
        now = run.elapsed()
        n_steps = max(1, i + 1)
        last = {
            "epoch": epoch, "step": run.step, "images": run.step * bsz, "seconds": round(now, 2), "lr": lr,
            "train_loss": loss_sum.item() / n_steps, "train_l1": l1_sum.item() / n_steps / 2.0,  # [-1,1] -> [0,1]
            **{f"val_{k}": v for k, v in metrics.items()}, **run.rates(),
        }  # fmt: skip
        ckpt = {
            "format": CKPT_FORMAT, "gen_type": gen_type, "variant": cfg.variant, "size": cfg.size,
            "model_class": type(net).__name__, "model_args": model_args, "model": net.state_dict(),
            "optimizer": opt.state_dict(), "rng": rng.get_state(), "config": asdict(cfg), "data": fingerprint,
        }  # fmt: skip
        is_best = run.end_epoch(now, last, metrics, "box_ssim", ckpt, {"lr": lr}, plot, (val_maps, val_fake, val_real))
        if verbose:
            tqdm.write(
                f"epoch {epoch:3d}  {now / 60:5.1f} min  loss {last['train_loss']:.4f}  val L1 {metrics['l1']:.4f}  "
                f"PSNR {metrics['psnr']:5.2f}  SSIM {metrics['ssim']:.3f}  box SSIM {metrics['box_ssim']:.3f}"
                f"{' *' if is_best else '  '}  {last['img_per_s']:.0f} img/s  data {100 * last['data_share']:.1f}%"
                f"  {run.eta(now)}"
            )
    return {"out": str(out), "epoch": run.epoch, "last": last, "best": run.best, "parameters": n_params, **run.totals}


# --------------------------------------------------------------------------- CLI (shared with GenGAN)


def add_training_args(p, d, lr, lr_help, epochs_help, folder):
    """The arguments both trainers take: the target video, then --epochs .. --aug (defaults from the config d)."""
    p.add_argument("video", nargs="?", default=None, help="target video (default: the built-in sample)")
    p.add_argument("--epochs", type=int, default=0, help=epochs_help)
    p.add_argument("--time_budget", type=float, default=0.0, metavar="MINUTES",
                   help="train this long instead of --epochs; schedules follow the clock (default off)")  # fmt: skip
    p.add_argument("--batch", type=int, default=d.batch, help=f"frames per batch (default {d.batch})")
    p.add_argument("--lr", type=float, default=lr, help=f"{lr_help} (default {lr})")
    p.add_argument("--size", type=int, default=d.size, choices=(64, 128), help=f"frame side in px (default {d.size})")
    p.add_argument("--device", default=d.device, choices=("auto", "cpu", "cuda"), help="(default auto: cuda if any)")
    p.add_argument("--resume", action="store_true", help="continue latest.pth: its epochs, optimizers, schedule, RNG")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    p.add_argument("--out", default=None, help=f"checkpoint folder (default data/checkpoints/<target>/{folder})")
    p.add_argument("--aug", type=float, default=d.aug_prob, help=f"share of samples augmented (default {d.aug_prob})")


def check_training_args(a, force, force_option):
    """UserError for what add_training_args' values cannot mean; force: whether force_option (start over) is on."""
    if force and a.resume:
        raise UserError(f"{force_option} (start over) and --resume (continue) contradict each other: pick one")
    if a.epochs < 0 or a.batch < 2 or a.lr <= 0 or a.time_budget < 0 or not 0 <= a.aug <= 1:
        raise UserError("need --epochs >= 0, --batch >= 2, --lr > 0, --time_budget >= 0 and --aug in [0, 1]")


def config_from_args(cls, a, **options):
    """A config dataclass from parsed arguments: each field from the argument of its name, or of options[field]."""
    given = vars(a)
    names = {f.name: options.get(f.name, f.name) for f in fields(cls)}
    return cls(**{field: given[name] for field, name in names.items() if name in given})


def report_trained(path, load, describe, force_option):
    """Print `already trained` for best.pth once it has loaded whole (load(path) rebuilds its net): a damaged file
    is reported now, not by the next demo. describe(metrics) -> one line of its epoch and validation metrics."""
    gen = load(path)
    with unusable(f"checkpoint {path}", f"retrain it ({force_option})"):
        line = describe({"epoch": gen.epoch, **gen.val})
    print(f"already trained: {path} ({line}); {force_option} retrains, --resume continues")


def main(argv=None):
    d = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_args(p, d, d.lr, "AdamW peak learning rate", f"(default {EPOCHS[1]} for variant 1, {EPOCHS[2]} for 2)",
                      "vanilla-...")  # fmt: skip
    p.add_argument("force", nargs="?", default="false", help="true: retrain from scratch (default false)")
    p.add_argument(
        "variant",
        nargs="?",
        type=int,
        default=VARIANT,
        choices=(1, 2),
        help=f"1 = 26-vector -> image (gen_type 2), 2 = skeleton map -> image (gen_type 3) (default {VARIANT})",
    )
    p.add_argument("--lambda_L1", type=float, default=d.lambda_L1, help=f"pixel L1 weight (default {d.lambda_L1})")
    p.add_argument("--lambda_grad", type=float, default=d.lambda_grad, help=f"gradient L1 (default {d.lambda_grad})")
    a = p.parse_args(argv)
    force = parse_bool(a.force)
    check_training_args(a, force, "force=true")
    cfg = config_from_args(TrainConfig, a, aug_prob="aug")
    pick_device(cfg.device)  # fail on a missing GPU before any video work
    vs = VideoSkeleton(a.video)
    out = Path(a.out) if a.out else checkpoint_dir(vs, cfg.variant, cfg.size)
    if not force and not a.resume and (out / "best.pth").exists():
        load = partial(GenVanillaNN, device="cpu", gen_type=GEN_TYPE[cfg.variant], size=cfg.size)
        report_trained(out / "best.pth", load, describe, "force=true")
        return 0
    summary = train(vs, cfg, out, resume=a.resume)
    print(f"best: {describe(summary['best'])} -> {Path(summary['out']) / 'best.pth'}")
    return 0


def describe(m):
    """One line of validation metrics (with GenGAN's sharpness and flicker when there)."""
    extra = "".join(f", {k} {m[k]:.2f}" for k in ("sharpness", "flicker") if k in m)
    return (f"epoch {m['epoch']}, val L1 {m['l1']:.4f}, PSNR {m['psnr']:.2f}, SSIM {m['ssim']:.3f}, "
            f"body-box SSIM {m['box_ssim']:.3f}{extra}")  # fmt: skip


if __name__ == "__main__":
    run_cli(main)
