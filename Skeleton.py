"""The 13-joint pose DeepDance works with: vector forms, normalisation and drawing.

Also holds the few project-wide helpers every script needs (paths, one-line user errors,
atomic writes), since this is the lowest module of the import chain
Skeleton <- Mannequin <- VideoSkeleton <- Gen* <- DanceDemo / Evaluate / app.
"""

import argparse
import contextlib
import os
import re
import shutil
import signal
import sys
import threading
from pathlib import Path

# FFmpeg (inside OpenCV) prints its own lines for unreadable files; we report those in one line ourselves.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent
# Caches, checkpoints and the sample live here; DEEPDANCE_DATA moves them (tests use a temp dir).
DATA_DIR = Path(os.environ.get("DEEPDANCE_DATA", ROOT / "data")).resolve()

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


class UserError(Exception):
    """A problem with the user's input: reported as one line on stderr, never a traceback."""


def _usage_error(parser, message):
    """argparse's usage errors as a UserError: one line naming the problem and --help, not the usage block."""
    raise UserError(f"{message} (see: python {parser.prog} --help)")


def _terminate(signum, frame):
    raise KeyboardInterrupt  # `kill <pid>` cleans up like Ctrl-C: temporary files removed, previous results kept


def run_cli(main, argv=None):
    """Run `main(argv)`; turn UserError, bad arguments, Ctrl-C and SIGTERM into one stderr line and a non-zero exit."""
    main_thread = threading.current_thread() is threading.main_thread()  # signal handlers can only be set there
    previous = argparse.ArgumentParser.error, signal.getsignal(signal.SIGTERM)
    argparse.ArgumentParser.error = _usage_error
    if main_thread:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return main(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(
            "interrupted: nothing half-written was kept, earlier caches and checkpoints are intact "
            "(a training run continues with --resume)",
            file=sys.stderr,
        )
        sys.exit(130)
    finally:
        argparse.ArgumentParser.error = previous[0]
        if main_thread:
            signal.signal(signal.SIGTERM, previous[1])


# atomic_path's temporary names: .tmp-<pid>-<name> (being written), .old-<pid>-<name> (being replaced)
_TEMP_NAME = re.compile(r"\.(tmp|old)-(\d+)-(.+)")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def clean_stale_temps(folder):
    """Remove what atomic_path left in `folder` when its process was killed (SIGKILL, power loss): the entries
    of pids no longer running. An .old- folder whose target is missing (killed between the two renames) is the
    previous complete result: it is put back. Returns the names removed or restored."""
    folder = Path(folder)
    done = []
    try:
        entries = list(folder.iterdir())
    except OSError:  # no folder yet: nothing to clean
        return done
    for entry in entries:
        m = _TEMP_NAME.fullmatch(entry.name)
        if not m or int(m[2]) == os.getpid() or _pid_alive(int(m[2])):
            continue
        target = folder / m[3]
        try:
            if m[1] == "old" and not target.exists():
                os.replace(entry, target)
            elif entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:  # another process cleaned it first
            continue
        done.append(entry.name)
    return done


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary sibling path; rename it onto `path` only if the block succeeds.

    A process killed outright cannot clean up: its leftovers are removed by the next atomic_path in that folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(path.parent)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        yield tmp
        if tmp.is_dir() and path.is_dir():
            # Directories cannot be replaced atomically: move the old one aside first.
            old = path.with_name(f".old-{os.getpid()}-{path.name}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_png(path, image, compression=9):
    """Write a (H, W, 3) uint8 BGR image as a PNG, atomically (encoded first: a bad image leaves no file)."""
    ok, data = cv2.imencode(".png", np.ascontiguousarray(image), [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise UserError(f"cannot encode {Path(path).name} as PNG (image of shape {np.shape(image)})")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.tobytes())


def parse_bool(text):
    """Parse the reference CLI's booleans ('True', 'false', '1', 'no', ...)."""
    t = str(text).strip().lower()
    if t in ("1", "true", "yes", "y", "t"):
        return True
    if t in ("0", "false", "no", "n", "f"):
        return False
    raise UserError(f"expected true/false, got {text!r}")


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


# --------------------------------------------------------------------------- video output


class VideoWriter:
    """Browser-playable H.264 mp4 writer (ffmpeg shipped by imageio-ffmpeg), written atomically.

    Use as a context manager: the file appears under its name only if the block succeeds.
    """

    def __init__(self, path, fps, crf=18):
        self.path, self.fps, self.crf = Path(path), float(fps), int(crf)
        self._ctx = self._gen = None
        self.n = 0

    def write(self, frame):
        """Append one HxWx3 uint8 BGR frame (all frames the same even size)."""
        if self._gen is None:
            import imageio_ffmpeg

            h, w = frame.shape[:2]
            self._ctx = atomic_path(self.path)
            tmp = self._ctx.__enter__()
            self._gen = imageio_ffmpeg.write_frames(
                str(tmp), (w, h), fps=self.fps, codec="libx264", pix_fmt_in="bgr24", pix_fmt_out="yuv420p",
                quality=None, macro_block_size=2, ffmpeg_log_level="error",
                output_params=["-crf", str(self.crf), "-preset", "veryfast", "-movflags", "+faststart"],
            )  # fmt: skip
            self._gen.send(None)
        self._gen.send(np.ascontiguousarray(frame, dtype=np.uint8))
        self.n += 1

    def close(self, ok=True):
        """Finish the file (ok=True) or throw it away (ok=False)."""
        if self._gen is None:
            return
        gen, ctx, self._gen, self._ctx = self._gen, self._ctx, None, None
        try:
            gen.close()
        finally:
            if ok:
                ctx.__exit__(None, None, None)
            else:
                ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(ok=exc_type is None)
        return False
