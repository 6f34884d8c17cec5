"""The 13-joint pose DeepDance works with: vector forms, normalisation and drawing."""

import cv2
import numpy as np

# MediaPipe Pose landmark indices of our 13 joints, in our order. "left" is the person's left.
MP_INDICES = (0, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
JOINT_NAMES = (
    "nose",
    "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
    "left_hip", "right_hip",
    "left_knee", "right_knee",
    "left_ankle", "right_ankle",
)  # fmt: skip
N_JOINTS = len(JOINT_NAMES)
NOSE, L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = range(7)
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = range(7, 13)
NECK = -1  # pseudo-joint: midpoint of the shoulders, only used for drawing

# One BGR colour per limb: warm hues on the person's left, cool on the right, so a generator
# (and a viewer) can tell a left arm from a right arm in the drawn skeleton map.
LIMBS = (
    (NOSE, NECK, (255, 255, 255)),
    (L_SHOULDER, R_SHOULDER, (200, 0, 200)),
    (L_SHOULDER, L_ELBOW, (0, 0, 255)),
    (L_ELBOW, L_WRIST, (0, 128, 255)),
    (R_SHOULDER, R_ELBOW, (255, 0, 0)),
    (R_ELBOW, R_WRIST, (255, 160, 0)),
    (L_SHOULDER, L_HIP, (0, 200, 255)),
    (R_SHOULDER, R_HIP, (255, 255, 0)),
    (L_HIP, R_HIP, (128, 0, 128)),
    (L_HIP, L_KNEE, (0, 255, 255)),
    (L_KNEE, L_ANKLE, (0, 255, 128)),
    (R_HIP, R_KNEE, (255, 0, 128)),
    (R_KNEE, R_ANKLE, (128, 255, 0)),
)
# Left/right swap of joint indices (for mirroring augmentation and tests).
FLIP_PERM = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11)


# --------------------------------------------------------------------------- project helpers


# --------------------------------------------------------------------------- pose maths


def body_height(xy):
    """Pose-invariant body size: nose-neck + neck-hips + mean thigh + mean shin. (...,13,2) -> (...)."""
    xy = np.asarray(xy, dtype=np.float32)
    neck = 0.5 * (xy[..., L_SHOULDER, :] + xy[..., R_SHOULDER, :])
    hips = 0.5 * (xy[..., L_HIP, :] + xy[..., R_HIP, :])

    def d(a, b):
        return np.linalg.norm(a - b, axis=-1)

    thigh = 0.5 * (d(xy[..., L_HIP, :], xy[..., L_KNEE, :]) + d(xy[..., R_HIP, :], xy[..., R_KNEE, :]))
    shin = 0.5 * (d(xy[..., L_KNEE, :], xy[..., L_ANKLE, :]) + d(xy[..., R_KNEE, :], xy[..., R_ANKLE, :]))
    return d(xy[..., NOSE, :], neck) + d(neck, hips) + thigh + shin


PERSON_WIDTH = 0.1  # person_mask's default: within 0.1 body heights of a limb holds the body and its clothes with a
# margin (on taichi1: half the body box, three quarters of its gradient energy)
PERSON_SEGMENTS = tuple((a, b) for a, b, _ in LIMBS) + ((L_SHOULDER, R_HIP), (R_SHOULDER, L_HIP))  # + diagonals:
# the limbs drawn thick leave a hole in the torso; the two diagonals fill it


def person_mask(xy, size, half_width=PERSON_WIDTH):
    """Where the person is, from the joints alone: (N, 13, 2) in [0, 1] -> (N, S, S) float32, 1 within about
    half_width x body height of a limb or a torso diagonal, 0 elsewhere. A share of the body height, so a pose gets
    the same mask at any distance from the camera. Drawn with OpenCV: a few ms a training batch at 128 px."""
    xy = np.asarray(xy, np.float32).reshape(-1, N_JOINTS, 2)
    found = np.isfinite(xy).all(axis=(1, 2))  # a pose with a missing joint draws nothing (as draw_skeleton)
    xy = np.where(found[:, None, None], xy, 0.0)
    ext = np.concatenate([xy, 0.5 * (xy[:, L_SHOULDER] + xy[:, R_SHOULDER])[:, None]], axis=1)  # NECK = -1
    pts = np.round(ext * size * 16 - 8).astype(np.int32)  # 4 fractional bits; pixel i's centre is at i + 0.5
    widths = np.maximum(1, np.round(2 * half_width * body_height(xy) * size)).astype(int)
    out = np.zeros((len(xy), size, size), np.uint8)
    for i in np.flatnonzero(found):  # (out[found] would be a copy)
        for a, b in PERSON_SEGMENTS:
            cv2.line(out[i], tuple(map(int, pts[i, a])), tuple(map(int, pts[i, b])), 1, int(widths[i]), cv2.LINE_8,
                     shift=4)  # fmt: skip
    return out.astype(np.float32)


def normalize(xy):
    """Hip-centred, body-height-scaled coordinates: (..., 13, 2) -> (..., 26) float32."""
    xy = np.asarray(xy, dtype=np.float32)
    hips = 0.5 * (xy[..., L_HIP, :] + xy[..., R_HIP, :])
    h = np.maximum(body_height(xy), 1e-6)[..., None, None]
    out = (xy - hips[..., None, :]) / h
    return out.reshape(*xy.shape[:-2], 2 * N_JOINTS)


def pck(pred, gt, thresh=0.05):
    """Share of joints within `thresh` (in units of the square frame's side) of the truth."""
    dist = np.linalg.norm(np.asarray(pred, np.float32) - np.asarray(gt, np.float32), axis=-1)
    return float(np.mean(dist < thresh))


def _limb_points(xy, size):
    """Pixel endpoints of every limb for one pose: (13,2) in [0,1] -> (L, 2, 2) int32 (x, y)."""
    ext = np.concatenate([xy, 0.5 * (xy[L_SHOULDER] + xy[R_SHOULDER])[None]], axis=0)
    a = np.array([lim[0] for lim in LIMBS])
    b = np.array([lim[1] for lim in LIMBS])
    pts = np.stack([ext[a], ext[b]], axis=1) * size
    return np.round(pts).astype(np.int32)


def draw_skeleton(image, xy, thickness=None):
    """Draw a (13,2) pose in [0,1] coordinates onto a square-ish BGR uint8 image, in place."""
    h, w = image.shape[:2]
    s = min(h, w)
    t = thickness or max(1, round(s / 40))
    ox, oy = (w - s) // 2, (h - s) // 2
    if not np.all(np.isfinite(xy)):
        return image
    for (p, q), (_, _, color) in zip(_limb_points(xy, s), LIMBS, strict=True):
        cv2.line(image, (int(p[0]) + ox, int(p[1]) + oy), (int(q[0]) + ox, int(q[1]) + oy), color, t, cv2.LINE_AA)
    r = max(1, t)
    for x, y in np.round(xy * s).astype(int):
        cv2.circle(image, (int(x) + ox, int(y) + oy), r, (255, 255, 255), -1, cv2.LINE_AA)
    return image


def render_maps(xy, size=64, thickness=None):
    """Skeleton maps for a batch of poses: (N,13,2) in [0,1] -> (N, size, size, 3) uint8 BGR."""
    xy = np.asarray(xy, dtype=np.float32).reshape(-1, N_JOINTS, 2)
    out = np.zeros((len(xy), size, size, 3), np.uint8)
    for i in range(len(xy)):
        draw_skeleton(out[i], xy[i], thickness)
    return out


def maps_to_tensor_layout(maps):
    """(N,S,S,3) uint8 BGR -> (N,3,S,S) float32 in [-1, 1]: the image-input models' layout."""
    return np.ascontiguousarray(maps.transpose(0, 3, 1, 2), dtype=np.float32) / 127.5 - 1.0


# --------------------------------------------------------------------------- the Skeleton


class Skeleton:
    """One person's 13 joints: xy (13, 2) in [0, 1] of the square frame, vis (13,) in [0, 1]."""

    def __init__(self, xy, vis=None):
        self.xy = np.asarray(xy, dtype=np.float32).reshape(N_JOINTS, 2)
        self.vis = np.ones(N_JOINTS, np.float32) if vis is None else np.asarray(vis, np.float32).reshape(N_JOINTS)

    @classmethod
    def from_vector(cls, v):
        """Inverse of `vector()`."""
        return cls(np.asarray(v, np.float32).reshape(N_JOINTS, 2))

    @classmethod
    def from_mediapipe(cls, landmarks):
        """From MediaPipe's 33 pose landmarks (normalised to the image MediaPipe was given)."""
        lm = [landmarks[i] for i in MP_INDICES]
        return cls([[p.x, p.y] for p in lm], [p.visibility for p in lm])

    def vector(self):
        """(26,) float32: x0, y0, x1, y1, ... in [0, 1] image coordinates."""
        return self.xy.reshape(-1).copy()

    def normalized(self):
        """(26,) float32, hip-centred and scaled by body height: position- and zoom-invariant."""
        return normalize(self.xy)

    def height(self):
        """Pose-invariant body size in frame units (see body_height)."""
        return float(body_height(self.xy))

    def bbox(self, margin=0.0):
        """(x0, y0, x1, y1) in [0, 1] around the joints, widened by `margin` x body height."""
        m = margin * self.height()
        x0, y0 = self.xy.min(0) - m
        x1, y1 = self.xy.max(0) + m
        return tuple(float(np.clip(v, 0.0, 1.0)) for v in (x0, y0, x1, y1))

    def draw(self, image, thickness=None):
        """Draw onto a BGR uint8 image (in place) and return it."""
        return draw_skeleton(image, self.xy, thickness)

    def to_image(self, size=64):
        """(3, size, size) float32 skeleton map in [-1, 1], as the image-input models eat it."""
        return maps_to_tensor_layout(render_maps(self.xy[None], size))[0]

    def flipped(self):
        """Mirror image (x -> 1 - x, left and right swapped)."""
        xy = self.xy[list(FLIP_PERM)].copy()
        xy[:, 0] = 1.0 - xy[:, 0]
        return Skeleton(xy, self.vis[list(FLIP_PERM)])

    def __repr__(self):
        return f"Skeleton(height={self.height():.3f}, bbox={tuple(round(v, 3) for v in self.bbox())})"
