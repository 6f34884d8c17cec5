"""What deepdance.perceptual's terms see that pixel losses do not: blur against misalignment, on real frames.

    python -m bench.perceptual                                   # taichi1 (../shared/data), 64 px, both parts
    python -m bench.perceptual --size 128 --frames 32 --steps 300
    python -m bench.perceptual --video sample --part table       # the built-in sample (no real footage needed)
    python -m bench.perceptual --part toy --loss l1 l1+features --steps 100 --threads 2

1. Sensitivity: every loss (pixel MSE / L1 on the project's [-1, 1] frames, each pose-net feature tap on the
   skeleton-box crop PerceptualLoss uses, and PerceptualLoss's features, pose, presence and mask terms) between the
   real frames and: a Gaussian blur (sigma 1 px), a shrink by 2 and back, a 2-px shift, and a wrong pose (a frame of
   another time whose joints lie --wrong-pose frame units away on average: 16 px at 128). A generator's blur is about
   the first two; a 2-px misalignment is what no generator can avoid. Pixel losses rate the blur far below the shift,
   the nets' deeper features above it: the blur / shift columns.
2. The uncertainty toy: a learned 9x9 kernel per colour (softmax over its taps: it can stay a delta or spread into a
   blur), started nearly sharp, trained per loss to map each real frame to itself shifted by a random +-3 px (the
   misalignment a pose-conditioned generator cannot predict). Detail kept = gradient energy of its output in the body
   box over the real frame's (Metrics.sharpness_ratio): 1 sharp, << 1 blurred.

Frames: ~--frames of the selection block of taichi1's cache (extracted on first use), or of the built-in sample
(--video sample, also used when ../shared/data/taichi1.mp4 is absent).
"""

import argparse
import math
import os
import sys
import time
from pathlib import Path

from deepdance.cache import VideoSkeleton
from deepdance.cli import UserError, run_cli
from deepdance.mediapipe_nets import POSE_DECODER, POSE_FEATURES, pose_net
from deepdance.metrics import body_boxes, sharpness_ratio
from deepdance.perceptual import FEATURE_EXPAND, PerceptualLoss, crop, feature_distance, skeleton_boxes
from deepdance.skeleton import maps_to_tensor_layout

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

TAICHI1 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "taichi1.mp4"
VIDEOS = ("taichi1", "sample")
SIZES = (64, 128)
PARTS = ("table", "toy", "both")
TAPS = (*POSE_FEATURES, POSE_DECODER)  # encoder add .. add_8, then the heatmap decoder
WRONG_POSE = 0.125  # frame units of mean joint displacement: 16 px at 128, 8 at 64
SHIFT_PX = 2
BLUR_SIGMA = 1.0
CHUNK = 8  # frames per net pass in the sensitivity table
TOY_LOSSES = ("l2", "l1", "features", "l1+features")
TOY_SHIFT = 3  # px: the targets' random misalignment, each axis uniform in [-3, 3]
KERNEL = 9
START_CENTRE = 0.9  # the toy kernel's starting weight on its centre tap: nearly a delta
VARIANTS = ("real", "blur", "down-up", "shift", "wrong pose")
RATIO_OF = ("blur", "down-up", "wrong pose")  # each against the shift


# --------------------------------------------------------------------------- frames


def load_frames(video, *, size, n, wrong_pose=WRONG_POSE):
    """(real (n, S, S, 3) uint8 BGR, xy (n, 13, 2), other (n, S, S, 3): a frame of another time per frame, its mean
    joint displacement (n,) in frame units, a description) from ~n frames spread over the selection block.
    wrong_pose: the least mean joint displacement (frame units) of the other frame."""
    if video == "taichi1" and not TAICHI1.exists():
        print(f"note: {TAICHI1} is absent: using the built-in sample", file=sys.stderr)
        video = "sample"
    if video == "sample":
        from deepdance.mannequin import ensure_sample

        path = ensure_sample("target")
    else:
        path = TAICHI1
    vs = VideoSkeleton(path, verbose=False)
    frames, xy = vs.frames(size), vs.skeletons()
    select = vs.split().select
    select = select if len(select) >= 2 else np.arange(len(vs))
    pick = np.unique(select[np.linspace(0, len(select) - 1, min(n, len(select))).round().astype(int)])
    other, moved = wrong_pose_partners(xy, pick, target=wrong_pose)
    what = f"{path.name}: {len(pick)} frames of the selection block (positions {pick[0]}..{pick[-1]} of {len(vs)})"
    return frames[pick], xy[pick], frames[other], moved, what


def wrong_pose_partners(xy, pick, *, target):
    """For each picked frame, the nearest frame in time whose joints lie >= target (frame units) from its own on
    average (else the farthest one): (positions (n,), mean displacements (n,))."""
    others, moved = [], []
    for i in pick:
        d = np.nanmean(np.linalg.norm(xy - xy[i], axis=-1), axis=-1)  # (N,)
        far = np.flatnonzero(d >= target)
        j = far[np.argmin(np.abs(far - i))] if len(far) else int(np.nanargmax(d))
        others.append(j)
        moved.append(d[j])
    return np.array(others), np.array(moved)


def to_tensor(frames):
    """(N, S, S, 3) uint8 BGR -> (N, 3, S, S) float32 in [-1, 1]."""
    return torch.from_numpy(maps_to_tensor_layout(frames))


def to_uint8(x):
    """(N, 3, S, S) in [-1, 1] -> (N, S, S, 3) uint8 BGR."""
    return ((x.detach().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


# --------------------------------------------------------------------------- degradations


def gaussian_blur(x, sigma):
    """Separable Gaussian blur of (B, C, H, W), reflect-padded, radius ceil(3 sigma)."""
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = (k / k.sum()).repeat(x.shape[1], 1, 1, 1)  # (C, 1, 1, 2r+1)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k, groups=x.shape[1])
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.transpose(2, 3), groups=x.shape[1])


def down_up(x, factor=2):
    """Shrunk by factor (antialiased) and enlarged back, bilinear: the detail of a frame 1/factor the size."""
    small = F.interpolate(x, scale_factor=1 / factor, mode="bilinear", align_corners=False, antialias=True)
    return F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)


def shift(x, dx, dy):
    """x's content moved dx px right and dy px down (integers), the edges repeated."""
    px, py = abs(dx), abs(dy)
    padded = F.pad(x, (px, px, py, py), mode="replicate")
    h, w = x.shape[-2:]
    return padded[..., py - dy : py - dy + h, px - dx : px - dx + w]


# --------------------------------------------------------------------------- 1. sensitivity


def _chunk_losses(fake, real, xy, *, net, loss, crop_size):
    """{loss name: value} of one chunk (no grad)."""
    out = {"pixel MSE": F.mse_loss(fake, real).item(), "pixel L1": F.l1_loss(fake, real).item()}
    centre, side = skeleton_boxes(xy, FEATURE_EXPAND)
    got = net(crop(fake, centre, side, crop_size), taps=TAPS, outputs=False, size=None)
    ref = net(crop(real, centre, side, crop_size), taps=TAPS, outputs=False, size=None)
    out |= {f"tap {t}": feature_distance(got[t], ref[t]).item() for t in TAPS}
    out |= {f"term {k}": v.item() for k, v in loss.terms(fake, real, xy).items()}
    return out


def sensitivity(real, xy, other, *, crop_size=128, chunk=CHUNK):
    """{variant: {loss name: mean over the frames}} plus {variant: detail kept}; real, other (N, S, S, 3) uint8."""
    loss = PerceptualLoss(features=1.0, pose=1.0, presence=1.0, mask=1.0, crop_size=crop_size)
    net = pose_net()
    r, o, xy_t = to_tensor(real), to_tensor(other), torch.from_numpy(np.ascontiguousarray(xy, np.float32))
    make = {
        "real": lambda x, k: x,
        "blur": lambda x, k: gaussian_blur(x, BLUR_SIGMA),
        "down-up": lambda x, k: down_up(x, 2),
        "shift": lambda x, k: shift(x, SHIFT_PX, 0),
        "wrong pose": lambda x, k: o[k],
    }
    table, detail = {}, {}
    with torch.no_grad():
        for name, fn in make.items():
            sums, done = {}, []
            for a in range(0, len(r), chunk):
                k = slice(a, a + chunk)
                fake = fn(r[k], k)
                done.append(to_uint8(fake))
                for key, v in _chunk_losses(fake, r[k], xy_t[k], net=net, loss=loss, crop_size=crop_size).items():
                    sums[key] = sums.get(key, 0.0) + v * len(fake)
            table[name] = {key: v / len(r) for key, v in sums.items()}
            detail[name] = sharpness_ratio(np.concatenate(done), real, body_boxes(xy, real.shape[1]))
    return table, detail


def sensitivity_markdown(table, detail):
    """The sensitivity table as markdown lines: a row per loss, a column per variant, then blur / shift ratios."""
    head = "| loss | " + " | ".join(VARIANTS) + " | blur / shift | down-up / shift | wrong pose / shift |"
    lines = [head, "|---|" + "---:|" * (len(VARIANTS) + 3)]
    for key in table["real"]:
        vals = [table[v][key] for v in VARIANTS]
        base = table["shift"][key]
        ratios = [table[v][key] / base if base else float("nan") for v in RATIO_OF]
        cells = [f"{x:.4g}" for x in vals] + [f"**{x:.2f}**" for x in ratios]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines.append(
        "| detail kept (gradient energy / real) | " + " | ".join(f"{detail[v]:.2f}" for v in VARIANTS) + " | | | |"
    )
    return lines


# --------------------------------------------------------------------------- 2. the uncertainty toy


class SoftKernel(nn.Module):
    """A learned size x size filter per colour, its taps a softmax: non-negative, summing to 1 (a delta .. a blur)."""

    def __init__(self, size=KERNEL, centre=START_CENTRE):
        super().__init__()
        n, self.size = size * size, size
        logits = torch.zeros(3, n)
        logits[:, n // 2] = math.log(centre * (n - 1) / (1 - centre))  # softmax gives the centre `centre`
        self.logits = nn.Parameter(logits)

    def kernel(self):
        return torch.softmax(self.logits, dim=-1).view(3, 1, self.size, self.size)

    def forward(self, x):
        r = self.size // 2
        return F.conv2d(F.pad(x, (r, r, r, r), mode="replicate"), self.kernel(), groups=3)

    def spread(self):
        """(RMS radius of the taps in px, centre weight), averaged over the colours."""
        k = self.kernel().detach()[:, 0]
        t = torch.arange(self.size) - self.size // 2
        r2 = (t[:, None] ** 2 + t[None, :] ** 2).to(k)
        return float((k * r2).sum(dim=(-2, -1)).sqrt().mean()), float(k[:, self.size // 2, self.size // 2].mean())


def toy_loss(name, crop_size=128):
    """loss(fake, target, xy) -> scalar for one of TOY_LOSSES."""
    if name not in TOY_LOSSES:
        raise UserError(f"unknown toy loss {name!r}; expected one of {', '.join(TOY_LOSSES)}")
    feats = PerceptualLoss(features=1.0, crop_size=crop_size) if "features" in name else None
    pixel = {"l2": F.mse_loss, "l1": F.l1_loss, "features": None, "l1+features": F.l1_loss}[name]

    def loss(fake, target, xy):
        total = pixel(fake, target) if pixel is not None else 0.0
        return total + (feats.terms(fake, target, xy)["features"] if feats is not None else 0.0)

    return loss


def train_toy(real, xy, *, loss, steps=200, batch=4, lr=0.1, seed=0, crop_size=128):
    """Train a SoftKernel on real (N, S, S, 3) uint8 against targets shifted by a random +-TOY_SHIFT px; returns
    {detail, radius, centre, seconds}. The same seed gives every loss the same frames and shifts."""
    gen = torch.Generator().manual_seed(seed)
    r, xy_t = to_tensor(real), torch.from_numpy(np.ascontiguousarray(xy, np.float32))
    model, fn = SoftKernel(), toy_loss(loss, crop_size)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(len(r), (batch,), generator=gen)
        dxy = torch.randint(-TOY_SHIFT, TOY_SHIFT + 1, (batch, 2), generator=gen).tolist()
        x = r[idx]
        target = torch.cat([shift(x[i : i + 1], dx, dy) for i, (dx, dy) in enumerate(dxy)])
        opt.zero_grad(set_to_none=True)
        fn(model(x), target, xy_t[idx]).backward()
        opt.step()
    seconds = time.perf_counter() - t0
    return toy_result(model, real, xy) | {"seconds": seconds}


def toy_result(model, real, xy):
    """{detail, radius, centre} of a filter applied to all the frames."""
    with torch.no_grad():
        out = to_uint8(model(to_tensor(real)))
    radius, centre = model.spread()
    return {"detail": sharpness_ratio(out, real, body_boxes(xy, real.shape[1])), "radius": radius, "centre": centre}


def shift_average(real, xy):
    """The L2 optimum for the toy's targets (an all-shifts average: a (2 TOY_SHIFT + 1)² box), for reference."""
    model = SoftKernel()
    n = 2 * TOY_SHIFT + 1
    with torch.no_grad():
        logits = torch.full((3, KERNEL, KERNEL), -1e9)
        lo = KERNEL // 2 - TOY_SHIFT
        logits[:, lo : lo + n, lo : lo + n] = 0.0
        model.logits.copy_(logits.view(3, -1))
    return toy_result(model, real, xy)


def toy_markdown(results):
    lines = [
        "| trained with | detail kept (1 = sharp) | kernel RMS radius px | centre weight | s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        s = f"{r['seconds']:.0f}" if "seconds" in r else "-"
        lines.append(f"| {name} | **{r['detail']:.3f}** | {r['radius']:.2f} | {r['centre']:.2f} | {s} |")
    return lines


# --------------------------------------------------------------------------- CLI


def _print_header(a, what, moved):
    print("command: " + " ".join(["python -m bench.perceptual", *sys.argv[1:]]))
    print(
        f"options: video={a.video} size={a.size} frames={a.frames} part={a.part} steps={a.steps} batch={a.batch} "
        f"lr={a.lr} loss={' '.join(a.loss)} crop={a.crop} seed={a.seed}"
    )
    print(
        f"machine: {os.cpu_count()} CPU cores, torch {torch.__version__} with {torch.get_num_threads()} thread(s), "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"frames: {what}, {a.size} px; wrong pose: joints {moved.mean() * a.size:.1f} px away on average "
        f"(min {moved.min() * a.size:.1f})"
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", choices=VIDEOS, default="taichi1", help="frames to use (default taichi1)")
    p.add_argument("--size", type=int, choices=SIZES, default=64, help="frame side px (default 64)")
    p.add_argument("--frames", type=int, default=32, help="frames of the selection block (default 32)")
    p.add_argument(
        "--wrong-pose",
        type=float,
        default=WRONG_POSE,
        help=f"wrong pose's mean joint displacement, frame units (default {WRONG_POSE}: 16 px at 128)",
    )
    p.add_argument("--part", choices=PARTS, default="both", help="what to measure (default both)")
    p.add_argument(
        "--loss",
        nargs="+",
        choices=TOY_LOSSES,
        default=list(TOY_LOSSES),
        help=f"toy losses (default {' '.join(TOY_LOSSES)})",
    )
    p.add_argument("--steps", type=int, default=200, help="toy Adam steps per loss (default 200)")
    p.add_argument("--batch", type=int, default=4, help="toy frames per step (default 4)")
    p.add_argument("--lr", type=float, default=0.1, help="toy Adam learning rate on the kernel logits (default 0.1)")
    p.add_argument("--crop", type=int, choices=(64, 128, 256), default=128, help="feature crop side (default 128)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--seed", type=int, default=0, help="toy seed (default 0)")
    a = p.parse_args(argv)
    if a.frames < 2 or a.steps < 1 or a.batch < 1 or a.threads < 1:
        raise UserError("need --frames >= 2 and --steps, --batch, --threads >= 1")
    torch.set_num_threads(a.threads)
    real, xy, other, moved, what = load_frames(a.video, size=a.size, n=a.frames, wrong_pose=a.wrong_pose)
    _print_header(a, what, moved)
    if a.part in ("table", "both"):
        t0 = time.perf_counter()
        table, detail = sensitivity(real, xy, other, crop_size=a.crop)
        print(
            f"\n## Sensitivity ({time.perf_counter() - t0:.0f} s): loss against the real frame, mean over frames; the"
            " ratios are variant / shift (pose and presence are not 0 on the real frames themselves: the real column)\n"
        )
        print("\n".join(sensitivity_markdown(table, detail)))
    if a.part in ("toy", "both"):
        print(
            f"\n## Uncertainty toy: {KERNEL}x{KERNEL} softmax kernel per colour, targets shifted +-{TOY_SHIFT} px, "
            f"{a.steps} steps of {a.batch} frames\n"
        )
        results = {
            "untrained (start)": toy_result(SoftKernel(), real, xy),
            "all-shift average (L2 optimum)": shift_average(real, xy),
        }
        for name in a.loss:
            results[name] = train_toy(
                real, xy, loss=name, steps=a.steps, batch=a.batch, lr=a.lr, seed=a.seed, crop_size=a.crop
            )
            print(f"  {name}: detail {results[name]['detail']:.3f} ({results[name]['seconds']:.0f} s)", flush=True)
        print()
        print("\n".join(toy_markdown(results)))
    return 0


if __name__ == "__main__":
    run_cli(main)
