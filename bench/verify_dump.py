"""Recompute Evaluate.py's numbers from its --dump, with independent code (numpy only: no skimage, no OpenCV).

    python Evaluate.py --gen_type 1 --dump out/frames.npz
    python -m bench.verify_dump out/frames.npz            # exit 1 if any number differs at 3 decimals

SSIM follows Wang et al. (2004) with scikit-image's defaults, written from the paper: 7x7 uniform window,
K1 = 0.01, K2 = 0.03, data range 255, sample covariance (N / (N - 1)), the mean over the windows lying
wholly inside the image, averaged over the 3 channels. The window sums come from an integral image, not
from a filter, so nothing is shared with scikit-image's implementation. L1, PSNR, body-box L1, sharpness
, fine detail and flicker are recomputed from their definitions. Pose consistency needs MediaPipe and is not redone.
"""

import argparse
import sys
from pathlib import Path

from deepdance.cli import UserError, run_cli

import numpy as np

TOL = 5e-4  # "agree to 3 decimals"
WIN, K1, K2, DATA_RANGE = 7, 0.01, 0.03, 255.0
MSE_FLOOR = 1e-10  # Evaluate's PSNR convention: identical frames score 10 log10(255^2 / 1e-10) = 148 dB, not inf
GRAY = np.array([0.114, 0.587, 0.299])  # BGR -> luma (ITU-R BT.601), as Evaluate
SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
FINE_RADIUS = 4  # OpenCV's kernel for a float image: 2 * round(4 sigma) + 1 taps, sigma = Evaluate's FINE_SIGMA (1 px)
REQUIRED = ("real", "box", "consecutive", "gen_types", "metric_names")


def window_means(a, w=WIN):
    """Mean of every w x w window lying wholly inside a 2-D array: (H, W) -> (H - w + 1, W - w + 1)."""
    c = np.zeros((a.shape[0] + 1, a.shape[1] + 1))
    c[1:, 1:] = a.cumsum(0).cumsum(1)
    return (c[w:, w:] - c[:-w, w:] - c[w:, :-w] + c[:-w, :-w]) / (w * w)


def ssim_channel(x, y):
    """Mean SSIM of two 2-D float64 arrays over the valid 7x7 windows."""
    n = WIN * WIN
    mx, my = window_means(x), window_means(y)
    cov = n / (n - 1)  # unbiased (sample) variances and covariance
    vx = cov * (window_means(x * x) - mx * mx)
    vy = cov * (window_means(y * y) - my * my)
    vxy = cov * (window_means(x * y) - mx * my)
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def ssim(a, b):
    """SSIM of two (H, W, 3) uint8 images: the mean of the per-channel values."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(np.mean([ssim_channel(a[..., c], b[..., c]) for c in range(a.shape[-1])]))


def sobel_energy(img):
    """Mean of gx^2 + gy^2 of the luma of a (h, w, 3) uint8 crop, 3x3 Sobel, mirrored border (OpenCV's default)."""
    g = np.pad(img.astype(np.float64) @ GRAY, 1, mode="reflect")  # numpy 'reflect' = edge pixel not repeated
    h, w = img.shape[:2]
    gx = sum(SOBEL_X[i, j] * g[i : i + h, j : j + w] for i in range(3) for j in range(3))
    gy = sum(SOBEL_X.T[i, j] * g[i : i + h, j : j + w] for i in range(3) for j in range(3))
    return float(np.mean(gx * gx + gy * gy))


def fine_energy(img, crop):
    """Mean squared (luma - its sigma-1 Gaussian blur) of a (S, S, 3) uint8 frame inside crop: the blur from a
    written-out separable kernel, mirrored border with the edge pixel repeated (OpenCV's BORDER_REFLECT)."""
    t = np.arange(-FINE_RADIUS, FINE_RADIUS + 1, dtype=np.float64)
    k = np.exp(-(t**2) / 2.0)
    k /= k.sum()
    g = img.astype(np.float64) @ GRAY
    p = np.pad(g, FINE_RADIUS, mode="symmetric")  # numpy 'symmetric' = edge pixel repeated
    h, w = g.shape
    rows = sum(k[i] * p[:, i : i + w] for i in range(len(k)))
    blur = sum(k[i] * rows[i : i + h, :] for i in range(len(k)))
    return float(np.mean((g - blur)[crop] ** 2))


def mean_abs_step(frames, consecutive):
    """Mean |frame i+1 - frame i| (pixels in [0, 1]) over the consecutive pairs; NaN if there are none."""
    pairs = np.flatnonzero(consecutive)
    if len(pairs) == 0:
        return float("nan")
    return float(np.mean([np.abs(frames[i + 1].astype(float) - frames[i].astype(float)).mean() for i in pairs]) / 255)


def recompute(fake, real, boxes, consecutive):
    """Every image metric of one generator's frames: a dict of floats."""
    diff = fake.astype(np.float64) - real.astype(np.float64)
    mse = np.maximum((diff**2).mean(axis=(1, 2, 3)), MSE_FLOOR)
    crops = [(slice(y0, y1), slice(x0, x1)) for x0, y0, x1, y1 in boxes]
    e_fake = sum(sobel_energy(f[c]) for f, c in zip(fake, crops, strict=True))
    e_real = sum(sobel_energy(r[c]) for r, c in zip(real, crops, strict=True))
    d_fake = sum(fine_energy(f, c) for f, c in zip(fake, crops, strict=True))
    d_real = sum(fine_energy(r, c) for r, c in zip(real, crops, strict=True))
    t_fake, t_real = mean_abs_step(fake, consecutive), mean_abs_step(real, consecutive)
    return {
        "l1": float(np.abs(diff).mean() / 255),
        "psnr": float(np.mean(10 * np.log10(DATA_RANGE**2 / mse))),
        "ssim": float(np.mean([ssim(r, f) for r, f in zip(real, fake, strict=True)])),
        "box_ssim": float(np.mean([ssim(r[c], f[c]) for r, f, c in zip(real, fake, crops, strict=True)])),
        "box_l1": float(np.mean([np.abs(d[c]).mean() / 255 for d, c in zip(diff, crops, strict=True)])),
        "sharpness": e_fake / e_real if e_real > 0 else float("nan"),
        "detail": d_fake / d_real if d_real > 0 else float("nan"),
        "flicker": t_fake / t_real if t_real > 0 else float("nan"),
        "tdiff": t_fake,
        "tdiff_real": t_real,
    }


def load_dump(path, required=REQUIRED):
    """The dump's arrays (no pickle); UserError if it is not an Evaluate.py --dump (lacks one of `required`) or holds
    no generated frames (fake_<gen_type>). The other bench scripts that read a dump load it here."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"dump not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path} as an .npz without pickle: {e}") from None
    missing = [k for k in required if k not in data]
    if missing:
        raise UserError(f"{path} is not an Evaluate.py --dump (no {', '.join(missing)})")
    if not any(k.startswith("fake_") for k in data):
        raise UserError(f"{path} holds no generated frames (fake_<gen_type>)")
    return data


def generated(data):
    """{gen_type (str): (N, S, S, 3) uint8 frames} of a load_dump()'s fake_<gen_type> arrays, in the dump's order."""
    return {k.removeprefix("fake_"): v for k, v in data.items() if k.startswith("fake_")}


def verify(data, tol=TOL):
    """Compare the reported numbers with the recomputed ones: (rows [(g, metric, reported, recomputed)], max diff)."""
    real, boxes, consecutive = data["real"], data["box"], data["consecutive"]
    names = [str(n) for n in data["metric_names"]]
    rows, worst = [], 0.0
    for g in data["gen_types"].tolist():
        fake = data[f"fake_{g}"]
        if fake.shape != real.shape or fake.dtype != np.uint8 or real.dtype != np.uint8:
            raise UserError(f"fake_{g} {fake.dtype} {fake.shape} does not match real {real.dtype} {real.shape}")
        reported = dict(zip(names, data[f"metrics_{g}"].tolist(), strict=True))
        for k, v in recompute(fake, real, boxes, consecutive).items():
            r = reported.get(k, float("nan"))
            both_nan = np.isnan(r) and np.isnan(v)
            d = 0.0 if both_nan else abs(r - v) if np.isfinite(r - v) else float("inf")
            worst = max(worst, d)
            rows.append((g, k, r, v, d))
    return rows, worst


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dump", help="the .npz written by Evaluate.py --dump")
    p.add_argument("--tol", type=float, default=TOL, help=f"largest allowed difference (default {TOL:g})")
    a = p.parse_args(argv)
    data = load_dump(a.dump)
    n, s = data["real"].shape[:2]
    print(f"{a.dump}: {n} frames of {s} px, gen_types {data['gen_types'].tolist()}")
    rows, worst = verify(data, a.tol)
    print("| gen_type | metric | reported | recomputed | abs diff |")
    print("|---:|---|---:|---:|---:|")
    for g, k, r, v, d in rows:
        print(f"| {g} | {k} | {r:.6f} | {v:.6f} | {d:.2e} |")
    print(f"max abs difference {worst:.2e} (tolerance {a.tol:g}); pose consistency not recomputed (needs MediaPipe)")
    if worst > a.tol:
        print("DISAGREE: the dump does not reproduce the reported numbers", file=sys.stderr)
        sys.exit(1)
    print("agree")
    return worst


if __name__ == "__main__":
    run_cli(main)
