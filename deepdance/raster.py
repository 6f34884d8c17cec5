"""The Mannequin's rasteriser: anti-aliased, shaded primitives (capsules, ellipses, soft shadows) drawn into a float
RGB image. Every primitive touches only its bounding box; coverage is an anti-aliased 1-px ramp of a distance
estimate, and shading a Lambert term on the normal of the implied 3-D shape (capsule / ellipsoid / cylinder).
"""

import numpy as np

LIGHT = np.array([-0.35, -0.55, 0.76]) / np.linalg.norm([-0.35, -0.55, 0.76])  # from the upper left, in front
AMBIENT = 0.38
SPEC_HALF = (LIGHT + np.array([0.0, 0.0, 1.0])) / np.linalg.norm(LIGHT + np.array([0.0, 0.0, 1.0]))


# Every primitive touches only its bounding box; coverage is an anti-aliased 1-px ramp of a distance estimate,
# and shading a Lambert term on the normal of the implied 3-D shape (capsule / ellipsoid / flattened cylinder).


def _box(img, x0, y0, x1, y1):
    """Pixel slice and pixel-centre coordinates (1,w), (h,1) of a bounding box clipped to `img`, or None."""
    h, w = img.shape[:2]
    ix0, iy0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
    ix1, iy1 = min(int(np.ceil(x1)) + 1, w), min(int(np.ceil(y1)) + 1, h)
    if ix0 >= ix1 or iy0 >= iy1:
        return None
    xs = np.arange(ix0, ix1, dtype=np.float32)[None, :] + 0.5
    ys = np.arange(iy0, iy1, dtype=np.float32)[:, None] + 0.5
    return (slice(iy0, iy1), slice(ix0, ix1)), xs, ys


def _shade(rgb, nx, ny, nz, gloss=0.0):
    """Lit colour (h,w,3) of a surface with unit normal (nx, ny, nz) (each (h,w)) under LIGHT."""
    lam = np.clip(nx * LIGHT[0] + ny * LIGHT[1] + nz * LIGHT[2], 0.0, 1.0)
    out = np.asarray(rgb, np.float32) * (AMBIENT + (1.0 - AMBIENT) * lam)[..., None]
    if gloss:
        spec = np.clip(nx * SPEC_HALF[0] + ny * SPEC_HALF[1] + nz * SPEC_HALF[2], 0.0, 1.0) ** 24
        out = out + (255.0 * gloss * spec)[..., None]
    return out


def _blend(img, sl, cov, color):
    """Alpha-composite `color` ((h,w,3) or (3,)) over img[sl] with coverage cov (h,w)."""
    region = img[sl]
    region += cov[..., None] * (np.asarray(color, np.float32) - region)


def _capsule(img, a, b, ra, rb, rgb, gloss=0.0):
    """Tapered capsule from a (radius ra) to b (radius rb), shaded as a round limb."""
    r = max(ra, rb) + 1.0
    box = _box(img, min(a[0], b[0]) - r, min(a[1], b[1]) - r, max(a[0], b[0]) + r, max(a[1], b[1]) + r)
    if box is None:
        return
    sl, xs, ys = box
    dx, dy = b[0] - a[0], b[1] - a[1]
    t = np.clip(((xs - a[0]) * dx + (ys - a[1]) * dy) / max(dx * dx + dy * dy, 1e-6), 0.0, 1.0)
    ex, ey = xs - (a[0] + t * dx), ys - (a[1] + t * dy)
    d = np.sqrt(ex * ex + ey * ey)
    rad = ra + (rb - ra) * t
    cov = np.clip(rad - d + 0.5, 0.0, 1.0)
    nx, ny = np.clip(ex / rad, -1, 1), np.clip(ey / rad, -1, 1)
    nz = np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.0, 1.0))
    _blend(img, sl, cov, _shade(rgb, nx, ny, nz, gloss))


def _ellipse(img, c, rx, ry, ang, rgb, gloss=0.0, clip=None, flat=False):
    """Ellipse centred at c with semi-axes rx, ry rotated by ang; clip(lx, ly) -> extra coverage factor."""
    r = max(rx, ry) + 1.0
    box = _box(img, c[0] - r, c[1] - r, c[0] + r, c[1] + r)
    if box is None:
        return
    sl, xs, ys = box
    ca, sa = np.cos(ang), np.sin(ang)
    wx, wy = xs - c[0], ys - c[1]
    lx, ly = ca * wx + sa * wy, -sa * wx + ca * wy  # local frame
    u, v = lx / rx, ly / ry
    q = np.sqrt(u * u + v * v)
    grad = np.sqrt((u / rx) ** 2 + (v / ry) ** 2) / np.maximum(q, 1e-6)
    cov = np.clip((1.0 - q) / np.maximum(grad, 1e-6) + 0.5, 0.0, 1.0)
    if clip is not None:
        cov = cov * clip(lx, ly)
    if flat:
        color = np.asarray(rgb, np.float32)
    else:
        nxl, nyl = np.clip(u, -1, 1), np.clip(v, -1, 1)
        nz = np.sqrt(np.clip(1.0 - nxl * nxl - nyl * nyl, 0.0, 1.0))
        color = _shade(rgb, ca * nxl - sa * nyl, sa * nxl + ca * nyl, nz, gloss)
    _blend(img, sl, cov, color)


def _soft_shadow(img, c, rx, ry, strength):
    """Darken an elliptic patch with a soft falloff (a contact shadow on the floor)."""
    box = _box(img, c[0] - rx, c[1] - ry, c[0] + rx, c[1] + ry)
    if box is None:
        return
    sl, xs, ys = box
    q2 = ((xs - c[0]) / rx) ** 2 + ((ys - c[1]) / ry) ** 2
    img[sl] *= (1.0 - strength * np.clip(1.0 - q2, 0.0, 1.0) ** 1.5)[..., None]
