"""Image and pose measures shared by training, GenNearest and Evaluate (numpy / OpenCV / SciPy: no torch).

Frames are (N, S, S, 3) uint8 BGR; joints (N, 13, 2) in [0, 1] of the square frame. The body box is the
ground-truth skeleton's box widened by BOX_MARGIN body heights, so it holds the head and the feet.

    image_metrics   L1, PSNR, SSIM and body-box SSIM (SSIM exactly as skimage computes it, vectorised)
    box_l1          L1 inside the body box
    sharpness_ratio gradient energy in the body box, generated / real (1 = as sharp as real)
    flicker         frame-to-frame change, generated / real (1 = as steady as real)
    pose_error      joint distance in body heights; pose_consistency: MediaPipe on generated frames vs input
                    (found at all, and found within POSE_NEAR body heights)
"""

import math

from deepdance.skeleton import Skeleton, body_height

import cv2
import numpy as np

BOX_MARGIN = 0.12  # body box: skeleton bbox widened by this x body height (holds head and feet)
GRAY = np.array([0.114, 0.587, 0.299], np.float32)  # BGR -> luma (ITU-R BT.601)
POSE_NEAR = 0.5  # body heights: a pose MediaPipe finds whose joints lie further (on average) from the input skeleton
# has found something else, not the person asked for: real frames' detections lie ~0.02 away, a wrong-moment real
# frame's ~0.15, while generated frames can get detections 2-3 body heights off (docs/evaluation.md)


# --------------------------------------------------------------------------- body boxes


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


def body_boxes(xy, size, margin=BOX_MARGIN):
    """(N, 4) int32 pixel boxes (x0, y0, x1, y1), end-exclusive, of ground-truth poses (N,13,2): the body crop."""
    return np.array([body_box_px(p, size, margin) for p in np.asarray(xy, np.float32)], np.int32).reshape(-1, 4)


# --------------------------------------------------------------------------- similarity


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


def box_l1(fake, real, boxes):
    """(N,) mean |fake - real| inside each body box, pixels in [0, 1]."""
    out = np.empty(len(real))
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        d = fake[i, y0:y1, x0:x1].astype(np.float32) - real[i, y0:y1, x0:x1].astype(np.float32)
        out[i] = np.abs(d).mean() / 255.0
    return out


# --------------------------------------------------------------------------- detail and steadiness


def gradient_energy(images, boxes, weights=None):
    """(N,) mean squared Sobel gradient magnitude of the luma inside each box (0-255 scale): detail, not blur.

    weights (N, S, S) in [0, 1], optional: each pixel's gradient counts this much (still divided by the box's
    area), e.g. a person mask: the part of the box's energy that lies on the person."""
    out = np.empty(len(images))
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        gray = images[i, y0:y1, x0:x1].astype(np.float32) @ GRAY  # (h, w) in [0, 255]
        gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
        g2 = gx.astype(np.float64) ** 2 + gy.astype(np.float64) ** 2
        out[i] = float(np.mean(g2 if weights is None else g2 * weights[i, y0:y1, x0:x1]))
    return out


def sharpness_ratio(fake, real, boxes):
    """Gradient energy in the body boxes, generated / real, over all frames: ~1 as sharp as real, < 1 blurrier."""
    e_real = gradient_energy(real, boxes).sum()
    return float(gradient_energy(fake, boxes).sum() / e_real) if e_real > 0 else float("nan")


FINE_SIGMA = 1.0  # px: the band a sigma-1 blur removes, the level of the generators' blur (a 64-and-back resize)


def fine_energy(images, boxes):
    """(N,) mean squared high-pass of the luma inside each box (0-255 scale): the luma minus its Gaussian blur of
    FINE_SIGMA, the finest detail (cloth folds, hair, edges of fingers) that Sobel's 3x3 only partly sees."""
    out = np.empty(len(images))
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        gray = images[i].astype(np.float32) @ GRAY  # (S, S): blurred whole, so the box's border has real neighbours
        high = gray - cv2.GaussianBlur(gray, (0, 0), FINE_SIGMA, borderType=cv2.BORDER_REFLECT)
        out[i] = float(np.mean(high[y0:y1, x0:x1].astype(np.float64) ** 2))
    return out


def fine_detail_ratio(fake, real, boxes):
    """High-pass energy in the body boxes, generated / real, over all frames: 1 = as much fine detail as real."""
    e_real = fine_energy(real, boxes).sum()
    return float(fine_energy(fake, boxes).sum() / e_real) if e_real > 0 else float("nan")


def temporal_diff(images, consecutive=None):
    """Mean |frame t+1 - frame t| (pixels in [0, 1]) over the pairs marked consecutive ((N-1,) bool; None: all
    pairs); NaN if there is no pair."""
    pairs = np.arange(len(images) - 1) if consecutive is None else np.flatnonzero(consecutive)
    if len(pairs) == 0:
        return float("nan")
    d = [np.abs(images[i + 1].astype(np.int16) - images[i].astype(np.int16)).mean() for i in pairs]
    return float(np.mean(d) / 255.0)


def flicker(fake, real, consecutive):
    """Frame-to-frame change of the outputs / of the real frames: 1 = as steady as real, 0 = frozen, > 1 flickers."""
    d_fake, d_real = temporal_diff(fake, consecutive), temporal_diff(real, consecutive)
    ratio = d_fake / d_real if d_real > 0 else float("nan")
    return {"flicker": float(ratio), "tdiff": d_fake, "tdiff_real": d_real}


def all_metrics(fake, real, xy, consecutive, boxes=None):
    """Every image metric of generated vs real frames (N,S,S,3) uint8, GT joints xy (N,13,2): a dict of floats."""
    boxes = body_boxes(xy, real.shape[1]) if boxes is None else boxes
    out = image_metrics(fake, real, xy, BOX_MARGIN)
    out["box_l1"] = float(box_l1(fake, real, boxes).mean())
    out["sharpness"] = sharpness_ratio(fake, real, boxes)
    out["detail"] = fine_detail_ratio(fake, real, boxes)
    out.update(flicker(fake, real, consecutive))
    return out


# --------------------------------------------------------------------------- poses


def pose_errors(query_xy, shown_xy):
    """(N,) mean joint distance between each query (N,13,2) and the pose shown (N,13,2), in the query's body heights."""
    query_xy = np.asarray(query_xy)
    d = np.linalg.norm(query_xy - np.asarray(shown_xy), axis=-1).mean(axis=-1)
    return d / np.maximum(body_height(query_xy), 1e-6)


def pose_error(query_xy, shown_xy):
    """Mean joint distance between the queries (N,13,2) and the poses shown (N,13,2), in the query's body heights."""
    return float(np.mean(pose_errors(query_xy, shown_xy)))


def pose_consistency(found_xy, xy, near=POSE_NEAR):
    """MediaPipe's poses of generated frames (found_xy: NaN where nobody was found) against their input skeletons xy:
    {"pose_found": share of frames with a person found, "pose_near": share with one found within `near` body heights
    of the input (mean joint distance): the person, not something else, "pose_err": pose_error of the found ones}."""
    found = np.all(np.isfinite(found_xy), axis=(1, 2))
    if not found.any():
        return {"pose_found": 0.0, "pose_near": 0.0, "pose_err": float("nan")}
    err = pose_errors(xy[found], found_xy[found])
    return {"pose_found": float(found.mean()), "pose_near": float((err <= near).sum() / len(xy)),
            "pose_err": float(err.mean())}  # fmt: skip
