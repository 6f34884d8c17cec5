"""Video files and the square a clip is cut to: checks (a file, a video, not a still image, not audio only), reading
(upright, by timestamps so a variable frame rate is read right), content hashes, and the person-centred square.
"""

import functools
import hashlib
import mmap
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from deepdance.cli import UserError, pause_here
from deepdance.files import atomic_path
from deepdance.skeleton import body_height

import cv2
import numpy as np

# The square holds the joints' box widened by these shares of the body height (Skeleton.body_height, ~0.88 of a
# standing height): the top of the head is ~0.09 above the nose, a hand ~0.11 beyond its wrist, a sole ~0.06 below
# its ankle; the rest is room for MediaPipe's error.
MARGIN_SIDE, MARGIN_TOP, MARGIN_BOTTOM = 0.15, 0.17, 0.10
OUTLIER_SHARE = 0.01  # share of the frames, at each side, whose box may stick out (a misdetection must not set the
# square for the whole clip)
OFF_PICTURE = 0.25  # joints further outside the picture than this share of its size are MediaPipe's guesses: the
# square does not grow for them
DETECT_MAX_SIDE = 640  # MediaPipe sees the whole frame (not the crop: the crop loses ~5x more
# detections on taichi1), downscaled to at most this side since its models run at 256 px anyway
SOUND_TOLERANCE_S = 0.1  # a soundtrack added to a video must last as long as it within this
SOUND_TIMEOUT_S = 600  # s: adding a soundtrack re-encodes only the audio (seconds for minutes of it)
# Still images FFmpeg would read as a one-frame "video": refused by their first bytes, whatever their name.
IMAGE_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"BM": "BMP", b"II*\x00": "TIFF",
                    b"MM\x00*": "TIFF"}  # fmt: skip


def crop_square(frame):
    """Centre crop to a square of side min(H, W): (H, W, 3) -> (s, s, 3) view."""
    h, w = frame.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    return frame[y0 : y0 + s, x0 : x0 + s]


def square_frame(frame, size):
    """Centre-cropped and resized frame: (H, W, 3) uint8 -> (size, size, 3) uint8."""
    sq = crop_square(frame)
    if sq.shape[0] == size:
        return np.ascontiguousarray(sq)
    interp = cv2.INTER_AREA if sq.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(sq, (size, size), interpolation=interp)


def detect_size(width, height, max_side=DETECT_MAX_SIDE):
    """(w, h) of the picture MediaPipe sees for a (width x height) frame."""
    k = max_side / max(height, width)
    return (width, height) if k >= 1 else (round(width * k), round(height * k))


def detect_image(frame, max_side=DETECT_MAX_SIDE):
    """The whole frame, downscaled so its longer side is at most max_side: what MediaPipe sees."""
    h, w = frame.shape[:2]
    k = max_side / max(h, w)
    if k >= 1:
        return frame
    # INTER_AREA only pays off for strong reductions; it is ~3x slower than bilinear.
    interp = cv2.INTER_LINEAR if k >= 0.5 else cv2.INTER_AREA
    return cv2.resize(frame, (round(w * k), round(h * k)), interpolation=interp)


def frame_to_square(xy, shape, crop=None):
    """Coordinates in [0,1] of the whole (H, W) frame -> [0,1] of the square crop = (x0, y0, side) px (default: the
    centre square)."""
    h, w = shape[:2]
    x0, y0, side = center_square(w, h) if crop is None else crop
    return ((np.asarray(xy) * (w, h) - (x0, y0)) / side).astype(np.float32)


def center_square(width, height):
    """The course's square: the centre crop of the shorter side, (x0, y0, side) px."""
    s = min(width, height)
    return (width - s) // 2, (height - s) // 2, s


def _place(a, b, side, extent):
    """Start of a segment of length `side` that holds [a, b]: centred on it, then moved as far towards the picture
    [0, extent) as holding [a, b] allows (inside it if it fits, else covering it: the least black padding)."""
    start = 0.5 * (a + b - side)
    start = min(max(start, min(0, extent - side)), max(0, extent - side))
    return int(round(min(max(start, b - side), a)))


def person_square(xy, width, height, *, outliers=OUTLIER_SHARE):
    """One square for a whole clip that holds the person's whole body in every frame: (x0, y0, side) px.

    xy: (N,13,2) joints in [0,1] of the (width x height) frame, NaN where nobody was found. The union of the
    per-frame joint boxes (ignoring the `outliers` share of frames at each side), widened by MARGIN_* body heights
    for the head, hands and feet, made square around the person, then moved into the picture where that cuts
    nothing. None if no frame has a person.
    """
    px = np.asarray(xy, np.float64)[..., :2] * (width, height)
    px = px[np.isfinite(px).all(axis=(1, 2))]
    if not len(px):
        return None
    bh = float(np.median(body_height(px)))
    # "higher"/"lower": an actual frame's value, the most extreme frame always left out (a lone misdetection)
    lo = np.quantile(px.min(axis=1), outliers, axis=0, method="higher") - bh * np.array([MARGIN_SIDE, MARGIN_TOP])
    hi = np.quantile(px.max(axis=1), 1 - outliers, axis=0, method="lower") + bh * np.array([MARGIN_SIDE, MARGIN_BOTTOM])
    size = np.array([width, height], np.float64)
    lo, hi = np.maximum(lo, -OFF_PICTURE * size), np.minimum(hi, (1 + OFF_PICTURE) * size)
    side = int(np.ceil(max(hi - lo)))
    side = max(side, 8)
    return _place(lo[0], hi[0], side, width), _place(lo[1], hi[1], side, height), side


def padding_of(crop, width, height):
    """Black borders of a square crop (x0, y0, side) px of a (width x height) picture: (left, top, right, bottom) px."""
    x0, y0, side = crop
    return max(0, -x0), max(0, -y0), max(0, x0 + side - width), max(0, y0 + side - height)


def cut_square(frame, crop, size):
    """The stored picture: the square crop = (x0, y0, side) px of frame (H,W,3), black where it leaves the picture,
    resized to (size, size, 3) uint8."""
    x0, y0, side = (int(v) for v in crop)
    h, w = frame.shape[:2]
    ax0, ay0, ax1, ay1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if (ax0, ay0, ax1, ay1) == (x0, y0, x0 + side, y0 + side):
        return _resized(frame[y0:ay1, x0:ax1], size, size)
    out = np.zeros((size, size, 3), np.uint8)
    k = size / side
    dx0, dy0, dx1, dy1 = (round((v - o) * k) for v, o in ((ax0, x0), (ay0, y0), (ax1, x0), (ay1, y0)))
    if dx1 > dx0 and dy1 > dy0:
        out[dy0:dy1, dx0:dx1] = _resized(frame[ay0:ay1, ax0:ax1], dx1 - dx0, dy1 - dy0)
    return out


def _resized(img, w, h):
    """img resized to (h, w): area averaging when shrinking (no aliasing), bilinear when enlarging.

    OpenCV's area averaging is fast for a ratio of exactly 2 and ~3x slower for others: a bigger shrink halves
    (Gaussian pyramid) down to under 4x, goes bilinearly to twice the size, then averages 2x2.
    """
    if img.shape[:2] == (h, w):
        return np.ascontiguousarray(img)
    if img.shape[0] <= h:
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    while img.shape[0] >= 4 * h and img.shape[1] >= 4 * w:
        img = cv2.pyrDown(img)
    if img.shape[0] > 2 * h and img.shape[1] > 2 * w:
        img = cv2.resize(img, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def check_video_path(path):
    """Resolve a user-given video path; UserError if it is missing or not a file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"video not found: {path}")
    if path.is_dir():
        raise UserError(f"{path} is a directory, expected a video file")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty (0 bytes), expected a video file")
    return path.resolve()


def image_kind(head):
    """'PNG', 'JPEG', ... if a file's first bytes are a still image's signature, else None."""
    head = bytes(head[:16])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((kind for sig, kind in IMAGE_SIGNATURES.items() if head.startswith(sig)), None)


def open_video(path):
    """cv2.VideoCapture whose frames come out upright: phones store the pictures turned and say so in the file
    (display rotation), which OpenCV's FFmpeg reader ignores unless told."""
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


def video_info(path):
    """What extraction needs to know of a video; UserError if it is not a readable one.

    {"frames": declared count, "fps": nominal rate, "width", "height": of the upright picture, "rotation": degrees
    (clockwise) the stored pictures are turned to stand upright, "timed": its frames carry increasing timestamps (a
    variable frame rate is then read right), "t0": the first frame's timestamp (s)}.
    """
    with open(path, "rb") as f:
        kind = image_kind(f.read(16))
    if kind:
        raise UserError(f"{path} is a {kind} image, not a video: give a video file (mp4, mov, avi, mkv, webm)")
    cap = open_video(path)
    try:
        ok, frame = cap.read() if cap.isOpened() else (False, None)
        if not ok or frame is None:
            if _stream_kinds(path) == {"Audio"}:
                raise UserError(f"{path} has sound but no picture (an audio-only file): give a video of the person")
            raise UserError(
                f"cannot read a frame from {path}: not a video, corrupt or truncated, or no frames; "
                "use a video file that plays in a video player"
            )
        times = [cap.get(cv2.CAP_PROP_POS_MSEC)]
        while len(times) < 3 and cap.grab():  # raw streams (.h264) carry no timestamps: OpenCV says 0 for each
            times.append(cap.get(cv2.CAP_PROP_POS_MSEC))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        rotation = int(round(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0)) % 360
        h, w = frame.shape[:2]
    finally:
        cap.release()
    if n <= 0:  # some containers do not declare a count: count by decoding
        n = count_frames(path)
    return {
        "frames": n,
        "fps": float(fps if 0 < fps < 1000 else 25.0),
        "width": w,
        "height": h,
        "rotation": rotation,
        "timed": len(times) == 3 and times[0] < times[1] < times[2],
        "t0": times[0] / 1000.0,
    }


def _stream_kinds(path):
    """The kinds of stream ffmpeg finds in a file ({"Video", "Audio", ...}; empty if it reads none)."""
    import imageio_ffmpeg

    try:
        r = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True,
                           text=True, errors="replace", timeout=60)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return set(re.findall(r"Stream #\S+.*?: (Video|Audio|Subtitle|Data):", r.stderr))


def probe_video(path):
    """(n_frames, fps, width, height) of a readable video, width and height upright; UserError if it is not one."""
    info = video_info(path)
    return info["frames"], info["fps"], info["width"], info["height"]


def count_frames(path):
    """Number of frames found by decoding the whole video (slow path for odd containers)."""
    cap = open_video(path)
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def iter_frames(path, start=0, stop=None, step=1):
    """Yield (index, HxWx3 uint8 BGR, upright) for frames start, start+step, ... < stop, decoding once.

    Seeks by frame number, which OpenCV gets right for a constant frame rate only (extraction uses read_span).
    """
    cap = open_video(path)
    try:
        if start:
            cap.set(cv2.CAP_PROP_POS_FRAMES, start)
        i = start
        while stop is None or i < stop:
            if (i - start) % step:
                if not cap.grab():
                    return
            else:
                ok, frame = cap.read()
                if not ok:
                    return
                yield i, frame
            i += 1
    finally:
        cap.release()


def read_span(path, *, fps, first=0, stop=None, step=1, timed=True, t0=0.0, counts=None):
    """Yield (position, seconds, HxWx3 uint8 BGR upright frame) for one span of a video, in order.

    A frame's slot is round(seconds * fps), its seconds (since the first frame) taken from the file's timestamps
    (timed) or from its count (untimed: read from the start). The span is the frames with first <= slot < stop
    (stop None: to the end); of those, the first frame of every `step` slots is kept (for a constant frame rate,
    every step-th frame; step 1 keeps every frame). position: the frame's place among all the span's frames, kept
    or not. OpenCV seeks by frame number as if the rate were constant, which lands a variable-rate file elsewhere:
    a seek is checked against the timestamps and redone further back until it lands before the span, so spans
    read in parallel meet exactly. counts (a dict) ends with "seen" = frames in the span and "backwards" = True if
    the timestamps went backwards (the span then ends there: read the file untimed).
    """
    counts = {} if counts is None else counts
    counts.update(seen=0, backwards=False)
    if first and not timed:
        raise ValueError("an untimed video is read from its start, in one span")
    cap = open_video(path)
    try:
        have = False  # a frame is grabbed and not yet looked at
        back = 1
        while first:
            target = max(0, first - back)
            if target == 0:
                cap.release()
                cap = open_video(path)
            else:
                cap.set(cv2.CAP_PROP_POS_FRAMES, target)
            have = cap.grab()
            if target == 0 or have and round((cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 - t0) * fps) < first:
                break
            back *= 4  # landed in or past the span (or past the end): seek further back
        index, last_t, last_bucket = 0, -np.inf, None
        while True:
            if not have and not cap.grab():
                return
            have = False
            if timed:
                t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 - t0
                if t < last_t - 0.5 / fps:
                    counts["backwards"] = True
                    return
                last_t = max(last_t, t)
            else:
                t = index / fps
            index += 1
            slot = round(t * fps)
            if slot < first:
                continue
            if stop is not None and slot >= stop:
                return
            pos = counts["seen"]
            counts["seen"] += 1
            if step > 1 and slot // step == last_bucket:
                continue
            ok, frame = cap.retrieve()
            if not ok or frame is None:
                return
            last_bucket = slot // step
            yield pos, t, frame
    finally:
        cap.release()


def read_rows(frames, start, stop):
    """frames[start:stop] as an in-memory array; a cache's memory-mapped frames.npy is read from its file instead.

    Pages touched through a memory map stay mapped and count as the process's memory, so streaming a long clip
    through one grows with the clip; reading chunks keeps it bounded.
    """
    start, stop = max(0, int(start)), min(int(stop), len(frames))
    if stop <= start or not isinstance(getattr(frames, "base", None), mmap.mmap):
        return np.array(frames[start:stop])
    row = int(np.prod(frames.shape[1:]))  # items per frame
    count = (stop - start) * row
    with open(frames.filename, "rb") as f:
        f.seek(frames.offset + start * row * frames.itemsize)
        data = np.fromfile(f, frames.dtype, count)
    if data.size != count:
        raise UserError(f"{frames.filename} is shorter than its header says: rerun with force_recompute=True")
    return data.reshape(stop - start, *frames.shape[1:])


def file_hash(path):
    """Hex SHA-256 of the file's bytes (identifies a video's content, not its name).

    Remembered per (path, size, mtime) in this process: a first extraction asks twice (cache lookup, then the
    cache it writes), and the app asks on every run.
    """
    st = os.stat(path)
    return _file_hash(os.path.realpath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _file_hash(path, size, mtime_ns, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- sound


@dataclass(frozen=True)
class Sound:
    """The audio to put under a rendered video: the first audio stream of `path`, from `start` s after the file's
    start (where ffmpeg's -ss counts from), for as long as the video lasts."""

    path: Path
    start: float


def _ffmpeg(*args, timeout=60):
    """Run the ffmpeg shipped by imageio-ffmpeg -> CompletedProcess (str output); OSError or TimeoutExpired if it
    cannot run."""
    import imageio_ffmpeg

    return subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", *map(str, args)],
                          capture_output=True, text=True, errors="replace", timeout=timeout)  # fmt: skip


def picture_offset(path):
    """Seconds from the start of a video file to its first picture, or None if the file has no audio stream (or
    ffmpeg cannot read it): where its sound lines up with its frames. VideoSkeleton's times count from the first
    picture, ffmpeg's -ss from the file's start, and a camera may start recording sound before the picture."""
    try:  # one decoded frame: showinfo prints its time, the stream list whether there is sound
        r = _ffmpeg("-i", path, "-map", "0:v:0", "-frames:v", "1", "-vf", "showinfo", "-f", "null", "-")
    except (OSError, subprocess.TimeoutExpired):
        return None
    if not re.search(r"Stream #\S+.*?: Audio:", r.stderr):
        return None
    m = re.search(r"pts_time:\s*(-?[\d.]+(?:e-?\d+)?)", r.stderr)
    return max(0.0, float(m[1])) if m else 0.0


def source_sound(path, first_time=0.0):
    """The Sound of a video's frames from the one at first_time s (since its first picture, as VideoSkeleton.times
    count) on; None if the video has no sound."""
    offset = picture_offset(path)
    return None if offset is None else Sound(Path(path), offset + float(first_time))


def audio_span(path):
    """(start, duration) in s of a file's first audio stream as a player has it (decoded: an encoder's priming
    samples left out, start counted from the file's start), or None if it has none."""
    try:
        r = _ffmpeg("-v", "error", "-i", path, "-map", "0:a:0", "-c:a", "pcm_s16le", "-f", "framecrc", "-",
                    timeout=SOUND_TIMEOUT_S)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    tb = re.search(r"^#tb 0: (\d+)/(\d+)", r.stdout, re.M)
    rows = re.findall(r"^0,\s*-?\d+,\s*(-?\d+),\s*(\d+),", r.stdout, re.M)  # stream, dts, pts, duration, ...
    if r.returncode or not tb or not rows:
        return None
    unit = int(tb[1]) / int(tb[2])
    pts = np.array([int(p) for p, _ in rows])
    ends = pts + np.array([int(d) for _, d in rows])
    return pts.min() * unit, (ends.max() - pts.min()) * unit


def mux_sound(video, sound, out, duration):
    """Write `out`: the (silent) `video`'s picture, copied, with sound's audio from sound.start for `duration` s,
    re-encoded to AAC (cut to the sample; padded with silence where the source's sound starts late or ends early, so
    it lasts exactly as long as the picture). Returns None, or why it failed (a phrase)."""
    # Decoded from the file's start and cut by the filters, not seeked to with -ss: ffmpeg seeks an mp4 by its picture,
    # which drops any sound before the first picture, and a sound decoded from a seek point starts with a click or
    # silence (AAC frames overlap the one before). -t only bounds the reading: it counts from the sound's own start.
    chain = (
        "aresample=async=1:first_pts=0",  # the file's timeline from 0: silence where the sound starts late
        f"atrim=start={sound.start:.6f}:end={sound.start + duration:.6f}",  # to the sample
        "asetpts=PTS-STARTPTS",
        f"apad=whole_dur={duration:.6f}",  # silence where the source's sound ends before the video
    )
    try:
        r = _ffmpeg("-v", "error", "-y", "-i", video, "-t", f"{sound.start + duration + 1:.6f}", "-i", sound.path,
                    "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-af", ",".join(chain), "-c:a", "aac",
                    "-movflags", "+faststart", "-f", "mp4", out, timeout=SOUND_TIMEOUT_S)  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"ffmpeg took over {SOUND_TIMEOUT_S} s"
    except OSError as e:
        return f"ffmpeg could not run: {e.strerror or e}"
    if r.returncode:
        lines = r.stderr.strip().splitlines()
        return f"ffmpeg failed: {lines[-1] if lines else f'exit status {r.returncode}'}"
    span = audio_span(out)
    if span is None:
        return "no audio reached the file"
    start, length = span
    if abs(start) > SOUND_TOLERANCE_S or abs(length - duration) > SOUND_TOLERANCE_S:
        return f"its audio runs {start:.2f}-{start + length:.2f} s, not 0-{duration:.2f} s"
    return None


# --------------------------------------------------------------------------- video output


class _SoundFailed(Exception):
    """Adding a soundtrack failed: the muxed temporary is thrown away, the silent video kept."""


class VideoWriter:
    """Browser-playable H.264 mp4 writer (ffmpeg shipped by imageio-ffmpeg), written atomically.

    Use as a context manager: the file appears under its name only if the block succeeds. sound (a Sound): its audio
    goes under the picture once every frame is written, trimmed to the video's length; if that fails the video is
    kept silent with a warning line. sound_s: seconds of sound the finished file has (0.0: silent).
    """

    def __init__(self, path, fps, crf=18, *, sound=None):
        self.path, self.fps, self.crf, self.sound = Path(path), float(fps), int(crf), sound
        self._ctx = self._gen = None
        self.n = 0
        self.sound_s = 0.0

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
        problem, keep = None, False
        try:
            gen.close()
            pause_here("video:finish")  # tests signal the process here: ffmpeg done, the file not yet checked
            if ok:
                problem = self._unreadable(self._tmp)
                if problem is None and self.sound is not None:
                    self._add_sound(self._tmp)
                keep = problem is None  # only now: a Ctrl-C before this line must not rename a partial file
        except OSError:  # ffmpeg's pipe broke at the end: it died (disk full, killed)
            problem = "ffmpeg stopped before finishing the file"
        finally:
            ctx.__exit__(*((None, None, None) if keep else (RuntimeError, RuntimeError(), None)))
        if ok and problem:
            raise UserError(f"cannot write {self.path}: {problem} ({self._free_mb():.0f} MB free there: disk full?); "
                            "nothing was replaced")  # fmt: skip

    def _add_sound(self, video):
        """Put self.sound under the finished silent `video` (a temporary), in place; where that fails, `video` stays
        as it was (silent) and one warning line says why."""
        duration = self.n / self.fps
        why = None
        try:
            with atomic_path(video) as muxed:  # replaces `video` only once the muxed file checks out
                why = mux_sound(video, self.sound, muxed, duration) or self._unreadable(muxed)
                if why:
                    raise _SoundFailed
        except _SoundFailed:
            source = self.sound.path
            print(f"warning: could not add the sound of {source} ({why}); {self.path.name} is silent", file=sys.stderr)
            return
        self.sound_s = duration

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
