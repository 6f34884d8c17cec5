"""The 13-joint pose DeepDance works with: vector forms, normalisation and drawing.

Also holds the few project-wide helpers every script needs (paths, one-line user errors,
atomic writes), since this is the lowest module of the import chain
Skeleton <- Mannequin <- VideoSkeleton <- Gen* <- DanceDemo / Evaluate / app.
"""

import argparse
import contextlib
import errno
import fcntl
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
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


# What an OSError means, in the words a user needs (errno -> phrase); the file it concerns is named too.
_OS_ERRORS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENAMETOOLONG: "file name too long (at most 255 bytes per name)",
    errno.ENOTDIR: "a file stands where a folder is needed",
    errno.EISDIR: "a folder stands where a file is needed",
    errno.ENOENT: "no such file or folder",
}
INTERRUPTED = "nothing half-written was kept, earlier results are intact"


def os_error_line(e, doing="cannot write"):
    """One line for an OSError: what failed, on which file, in plain words ('disk full', 'read-only ...')."""
    what = _OS_ERRORS.get(e.errno, e.strerror or type(e).__name__)
    where = f" {e.filename}" if e.filename else ""
    return f"{doing}{where}: {what}"


def run_cli(main, argv=None, interrupted=INTERRUPTED, after_error=None):
    """Run `main(argv)`; turn UserError, storage faults (OSError), bad arguments, Ctrl-C and SIGTERM into one
    stderr line and a non-zero exit. interrupted: what the Ctrl-C line adds (e.g. how to continue).
    after_error(e): called once a UserError's line is out, before the exit (torchrun's rank 0 releases the others)."""
    main_thread = threading.current_thread() is threading.main_thread()  # signal handlers can only be set there
    previous = argparse.ArgumentParser.error, signal.getsignal(signal.SIGTERM)
    argparse.ArgumentParser.error = _usage_error
    if main_thread:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return main(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        if after_error is not None:
            after_error(e)
        sys.exit(2)
    except OSError as e:  # a full or read-only disk, a name too long...: never a traceback
        print(f"error: {os_error_line(e, 'cannot read or write')}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"interrupted: {interrupted}", file=sys.stderr)
        sys.exit(130)
    finally:
        argparse.ArgumentParser.error = previous[0]
        if main_thread:
            signal.signal(signal.SIGTERM, previous[1])


_PAUSED = set()


def pause_here(point):
    """Test hook: with DEEPDANCE_TEST_PAUSE=<point>:<file> set, reaching `point` creates <file> and waits until it is
    removed (or a signal ends the process). Tests interrupt work at a known point instead of racing it. Costs one
    environment lookup when unset."""
    name, _, marker = os.environ.get("DEEPDANCE_TEST_PAUSE", "").rpartition(":")
    if name != point or not marker or marker in _PAUSED:
        return
    _PAUSED.add(marker)  # once per marker file: the test lets the work go on after looking
    Path(marker).write_text(str(os.getpid()))
    while Path(marker).exists():
        time.sleep(0.01)


# --------------------------------------------------------------------------- atomic writes

# atomic_path's temporary names: .tmp-<token>-<name> (being written), .old-<token>-<name> (being replaced), each
# owned by the process holding an flock on .lock-<token>. The kernel drops the lock when its owner dies, however
# it dies and in whatever PID namespace: that, not a PID, tells a stale temp from one being written.
_TEMP_NAME = re.compile(r"\.(tmp|old)-([0-9a-f]{16})-(.+)")
_MAX_NAME = 255  # bytes per file name on the usual file systems


def short_name(name, room):
    """`name` cut to `room` bytes of UTF-8 (whole characters), its suffix kept: ffmpeg picks the format by it."""
    if len(name.encode()) <= room:
        return name
    suffix = Path(name).suffix if len(Path(name).suffix.encode()) < room // 2 else ""
    stem = name[: len(name) - len(suffix)]
    while len((stem + suffix).encode()) > room:
        stem = stem[:-1]
    return stem + suffix


class _TempOwner:
    """The flock that marks this call's temporaries as alive (see _TEMP_NAME)."""

    def __init__(self, folder):
        while True:
            self.token = secrets.token_hex(8)
            self.lock = Path(folder) / f".lock-{self.token}"
            self.fd = os.open(self.lock, os.O_CREAT | os.O_RDWR, 0o644)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            try:  # a cleaner may have removed the file between open and flock: then take another token
                if os.fstat(self.fd).st_ino == os.stat(self.lock).st_ino:
                    return
            except FileNotFoundError:
                pass
            os.close(self.fd)

    def name(self, kind, path):
        return path.with_name(f".{kind}-{self.token}-{short_name(path.name, _MAX_NAME - 22)}")

    def release(self):
        try:
            self.lock.unlink()
        except OSError:
            pass
        os.close(self.fd)


def _owner_gone(folder, token):
    """True (and the lock file removed) if no live process owns `token`'s temporaries."""
    lock = Path(folder) / f".lock-{token}"
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return True  # never locked (its owner died before locking) or already cleaned
    except OSError:
        return False  # cannot tell (another user's, read-only): leave it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False  # held: being written right now
    try:
        lock.unlink()
    except OSError:
        pass
    os.close(fd)
    return True


def clean_stale_temps(folder):
    """Remove what atomic_path left in `folder` when its process was killed (SIGKILL, power loss): the entries
    whose owner's lock is free. An .old- folder whose target is missing (killed between the two renames) is the
    previous complete result: it is put back. Returns the names removed or restored."""
    folder = Path(folder)
    done = []
    try:
        entries = sorted(folder.iterdir(), key=lambda e: not e.name.startswith(".old-"))  # restores first
    except OSError:  # no folder yet, or unreadable: nothing to clean
        return done
    gone = {}
    for entry in entries:
        m = _TEMP_NAME.fullmatch(entry.name)
        if not m:
            continue
        if m[2] not in gone:
            had_lock = (folder / f".lock-{m[2]}").exists()
            gone[m[2]] = _owner_gone(folder, m[2])
            if gone[m[2]] and had_lock:
                done.append(f".lock-{m[2]}")
        if not gone[m[2]]:
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
    for lock in folder.glob(".lock-*"):  # locks whose temporaries are gone, left by a killed process
        if lock.name[6:] not in gone and _owner_gone(folder, lock.name[6:]):
            done.append(lock.name)
    return done


@contextlib.contextmanager
def _signals_deferred():
    """Ctrl-C / SIGTERM that arrive during the block are held and delivered when it is done.

    Handlers, not the signal mask: Python runs handlers in the main thread whichever thread the kernel picked.
    Outside the main thread handlers cannot be changed, and signals reach the main thread anyway.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in _DEFERRED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(caught):
            signal.raise_signal(sig)


_DEFERRED = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary sibling path; rename it onto `path` only if the block succeeds.

    The temporary's name is unique per process, thread and call, so two writers of one file never share it; the
    last to finish wins and both leave a complete file. A process killed outright cannot clean up: its leftovers
    are removed by the next atomic_path in that folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(path.parent)
    owner = _TempOwner(path.parent)
    tmp, old = owner.name("tmp", path), owner.name("old", path)
    try:
        yield tmp
        if tmp.is_dir() and path.is_dir():
            # Directories cannot be replaced atomically: move the old one aside first, both renames or neither.
            with _signals_deferred():
                os.replace(path, old)
                os.replace(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        if old.is_dir() and path.is_dir():  # the replaced one (also when a deferred Ctrl-C lands right after)
            shutil.rmtree(old, ignore_errors=True)
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        owner.release()


def check_writable(folder, *, need_bytes=0, what="the results"):
    """UserError now, before long work, if `folder` cannot take `what`: a file in the way, read-only, or fewer than
    need_bytes free. Creates nothing: a folder that does not exist yet is judged by its nearest existing parent."""
    folder = Path(folder).absolute()
    place = folder
    while not place.exists() and place != place.parent:
        place = place.parent
    if not place.is_dir():
        raise UserError(f"cannot write {what} to {folder}: a file stands where a folder is needed ({place})")
    try:
        with tempfile.NamedTemporaryFile(dir=place, prefix=".probe-"):
            pass
    except OSError as e:
        raise UserError(f"cannot write {what} to {folder}: {_OS_ERRORS.get(e.errno, e.strerror)}") from None
    free = shutil.disk_usage(place).free
    if free < need_bytes:
        raise UserError(f"cannot write {what} to {folder}: disk full ({free / 2**20:.0f} MB free, about "
                        f"{need_bytes / 2**20:.0f} MB needed)")  # fmt: skip


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


PERSON_WIDTH = 0.1  # person_mask's default: within 0.1 body heights of a limb holds the body and its clothes with a
# margin (README "Texture": 51% of the body box, 75% of its gradient energy on taichi1)
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
            self._tmp = tmp = self._ctx.__enter__()
            self._gen = imageio_ffmpeg.write_frames(
                str(tmp), (w, h), fps=self.fps, codec="libx264", pix_fmt_in="bgr24", pix_fmt_out="yuv420p",
                quality=None, macro_block_size=2, ffmpeg_log_level="error",
                output_params=["-crf", str(self.crf), "-preset", "veryfast", "-movflags", "+faststart"],
            )  # fmt: skip
            self._gen.send(None)
        try:
            self._gen.send(np.ascontiguousarray(frame, dtype=np.uint8))
        except OSError:  # ffmpeg died (disk full, killed): its pipe broke
            self.close(ok=False)
            free = self._free_mb()
            raise UserError(f"cannot write {self.path}: ffmpeg stopped after {self.n} frames ({free:.0f} MB free "
                            "there: disk full?); nothing was replaced") from None  # fmt: skip
        self.n += 1

    def _free_mb(self):
        try:
            return shutil.disk_usage(self.path.parent).free / 2**20
        except OSError:
            return float("nan")

    def close(self, ok=True):
        """Finish the file (ok=True) or throw it away (ok=False).

        The file is renamed into place only once ffmpeg has finished it and it reads back with every frame written:
        a full disk or a dying ffmpeg raise a UserError and leave any previous file at `path` as it was.
        """
        if self._gen is None:
            return
        gen, ctx, self._gen, self._ctx = self._gen, self._ctx, None, None
        problem = None
        try:
            gen.close()
            if ok:
                problem = self._unreadable(self._tmp)
        except OSError:  # ffmpeg's pipe broke at the end: it died (disk full, killed)
            problem = "ffmpeg stopped before finishing the file"
        finally:
            ctx.__exit__(*((None, None, None) if ok and problem is None else (RuntimeError, RuntimeError(), None)))
        if ok and problem:
            raise UserError(f"cannot write {self.path}: {problem} ({self._free_mb():.0f} MB free there: disk full?); "
                            "nothing was replaced")  # fmt: skip

    def _unreadable(self, tmp):
        """Why the finished temporary file is not a complete video (a phrase), or None."""
        import imageio_ffmpeg

        try:
            n, _ = imageio_ffmpeg.count_frames_and_secs(str(tmp))
        except Exception:  # ffmpeg cannot open it: "moov atom not found" on a truncated mp4
            return "ffmpeg could not finish the video"
        return None if n == self.n else f"only {n} of {self.n} frames reached the file"

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(ok=exc_type is None)
        return False
