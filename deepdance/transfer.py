"""Motion transfer's machinery: the source's poses made usable (gaps filled, One-Euro smoothing, normalised onto the
target's placement), the frame times, the rendering in panels (VIEWS), the coverage warnings and the transfer loop that
writes the video. The command line is DanceDemo.py's (and, for the live mode, deepdance/live.py's).
"""

import copy
import functools
import os
import sys
import time
from dataclasses import dataclass

from deepdance.cache import READ_CHUNK
from deepdance.cli import UserError
from deepdance.files import ROOT
from deepdance.gentypes import RENDER_BATCH
from deepdance.skeleton import L_ANKLE, L_HIP, R_ANKLE, R_HIP, body_height, draw_skeleton
from deepdance.video import VideoWriter, read_rows, source_sound

import cv2
import numpy as np
from tqdm import tqdm

DEFAULT_GEN_TYPE = 1  # nearest neighbour: nothing to train
COVERAGE_SHARE = 0.05  # warn when more than this share of the source's frames is far from every target pose: a
# few odd frames (a turn, a detection glitch) are normal in any clip
STRIDE = 1  # use every k-th source frame
OUT = ROOT / "out" / "demo.mp4"
PANEL = 256  # px side of each of the three panels in the output video
WHITE, RED = (255, 255, 255), (60, 60, 255)  # BGR caption colours
LABEL_H = 22  # px: the caption strip at the top of each panel
WINDOW = "DeepDance (q closes this window)"
STILLS = 3  # --stills: output frames shown, evenly spread over the clip (its first and last tenth left out)
# The output's layouts, --view: each one's panels, left to right, each PANEL px square. "side" shows the source as
# filmed (no skeleton drawn on it): the real moves beside the generated ones, to compare by eye.
VIEWS = {
    "three": ("source + its skeleton", "normalised pose", "generated target"),
    "side": ("source", "generated target"),
    "generated": ("generated target",),
}
VIEW = "three"
CRF = 20  # H.264 quality of the output (lower = better, bigger)
HEIGHT_QUANTILE = 0.9  # robust standing height: this quantile of body_height over a clip (crouched or
# foreshortened frames read shorter, a few mis-detections longer)
MAX_INTERP_S = 0.5  # gaps without a person up to this long are interpolated; longer ones hold the last pose
TIME_ROUNDING_S = 1e-3  # s: frame steps this close to 1 / fps are an even rate (a container's timestamps in ms
# round each step by up to 1 ms), so such a source is smoothed and filled by frame counts, exactly as before
MIN_DT = 1e-3  # s: the smallest step the One-Euro filter takes (two frames with one timestamp)
# One-Euro filter (Casiez et al. 2012), speeds in body heights per second so the settings do not depend on
# how large the person is in the frame. Run forwards then backwards over a clip (zero phase: no lag), these
# bring the sample source's jitter to its ground truth's level without moving the joints off it and cut
# taichi2's by two thirds (python -m bench.demo; docs/RESULTS.md, motion transfer).
MIN_CUTOFF = 2.0  # Hz: cutoff when still (lower = smoother, more lag)
BETA = 8.0  # cutoff gained per (body height / s) of joint speed: fast moves keep their detail
D_CUTOFF = 1.0  # Hz: cutoff of the speed estimate itself


# --------------------------------------------------------------------------- source poses


def uneven_times(times, fps):
    """The frames' times (N,) float64 s when they are not evenly 1 / fps apart (a phone's variable frame rate: slow
    stretches, bursts, dropped frames), else None: times None, fewer than two, or every step within TIME_ROUNDING_S of
    1 / fps. Smoothing and gap filling step by these times, or count frames at fps when None."""
    if times is None:
        return None
    times = np.asarray(times, np.float64)
    if len(times) < 2 or np.all(np.abs(np.diff(times) - 1.0 / fps) <= TIME_ROUNDING_S):
        return None
    return times


def fill_missing(xy, valid, fps=25.0, max_interp_s=MAX_INTERP_S, *, times=None):
    """Give every frame a pose: (N,13,2) with junk where ~valid (N,) -> (N,13,2) float32, all finite.

    Gaps up to max_interp_s are linearly interpolated; longer gaps hold the last pose before them, and
    frames before the first detection take the first detected pose. times (N,) s (VideoSkeleton.times): a
    variable frame rate's gaps are measured and interpolated in time (uneven_times); an even rate counts frames.
    """
    xy = np.array(xy, np.float32).reshape(len(valid), 13, 2)
    valid = np.asarray(valid, bool) & np.all(np.isfinite(xy), axis=(1, 2))
    if not valid.any():
        raise UserError("no person was found in any frame of the source video")
    if times is not None and len(times) != len(valid):
        raise ValueError(f"{len(times)} frame times for {len(valid)} frames")
    t = uneven_times(times, fps)  # (N,) s, or None at an even rate
    idx = np.flatnonzero(valid)
    out = xy.copy()
    out[: idx[0]] = xy[idx[0]]
    out[idx[-1] + 1 :] = xy[idx[-1]]
    max_gap = max_interp_s * fps
    for a, b in zip(idx[:-1], idx[1:], strict=True):
        if b - a <= 1:
            continue
        if t is None:
            short = b - a - 1 <= max_gap
            w = (np.arange(a + 1, b, dtype=np.float32) - a)[:, None, None] / (b - a)  # (b-a-1,1,1)
        else:
            # The time nobody was seen: the detections around the gap less one frame, as k missing frames are k / fps
            # at an even rate (a burst's many frames can be a short gap, a slow stretch's few a long one).
            span = t[b] - t[a]
            short = span - 1.0 / fps <= max_interp_s
            w = ((t[a + 1 : b] - t[a]) / span if span > 0 else np.zeros(b - a - 1)).astype(np.float32)[:, None, None]
        if short:
            out[a + 1 : b] = (1 - w) * xy[a] + w * xy[b]
        else:
            out[a + 1 : b] = xy[a]
    return out


class OneEuroFilter:
    """One-Euro filter (Casiez et al., CHI 2012) for a stream of poses: smooth when still, quick when moving.

    Feed (13,2) poses one at a time with __call__, each dt s after the previous one (1 / fps unless given: a
    variable frame rate, a camera's dropped frames); `scale` is the length unit of the speeds (body height).
    """

    def __init__(self, fps, min_cutoff=MIN_CUTOFF, beta=BETA, d_cutoff=D_CUTOFF, scale=1.0):
        if fps <= 0 or min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise UserError(
                f"One-Euro needs fps, min_cutoff, d_cutoff > 0 and beta >= 0 (got {fps}, "
                f"{min_cutoff}, {d_cutoff}, {beta})"
            )
        self.dt, self.min_cutoff, self.beta, self.d_cutoff = 1.0 / fps, min_cutoff, beta, d_cutoff
        self.scale = max(float(scale), 1e-6)
        self.x = self.dx = None

    @staticmethod
    def _alpha(cutoff, dt):
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x, *, dt=None):
        """Next pose (13,2), dt s after the previous one (None: 1 / fps) -> filtered pose (13,2) float32."""
        x = np.asarray(x, np.float32)
        if self.x is None:
            self.x, self.dx = x.copy(), np.zeros_like(x)
            return self.x.copy()
        # A Python float: a NumPy float64 step would turn the float32 arithmetic into float64 (NEP 50).
        dt = self.dt if dt is None else max(float(dt), MIN_DT)
        a_d = self._alpha(self.d_cutoff, dt)
        self.dx = a_d * (x - self.x) / dt + (1 - a_d) * self.dx
        speed = np.linalg.norm(self.dx, axis=-1, keepdims=True) / self.scale  # (13,1) body heights / s
        a = self._alpha(self.min_cutoff + self.beta * speed, dt)
        self.x = (a * x + (1 - a) * self.x).astype(np.float32)
        return self.x.copy()


def smooth_poses(xy, fps, min_cutoff=MIN_CUTOFF, beta=BETA, d_cutoff=D_CUTOFF, zero_phase=True, *, times=None):
    """One-Euro smoothing of a whole clip: (N,13,2) finite poses -> (N,13,2) float32.

    zero_phase runs the filter forwards then backwards, so the result does not lag the motion (offline use);
    speeds are measured in the clip's median body height. times (N,) s (VideoSkeleton.times): a variable frame
    rate's frames are stepped by their own intervals (uneven_times), the backward pass by the same ones reversed.
    """
    xy = np.asarray(xy, np.float32)
    if len(xy) == 0:
        return xy.copy()
    if times is not None and len(times) != len(xy):
        raise ValueError(f"{len(times)} frame times for {len(xy)} poses")
    t = uneven_times(times, fps)
    steps = [None] * (len(xy) - 1) if t is None else np.diff(t).tolist()  # (N-1,) s between frames; None: 1 / fps
    scale = float(np.median(body_height(xy)))

    def run(poses, dts):  # dts: the steps into poses[1:]
        f = OneEuroFilter(fps, min_cutoff, beta, d_cutoff, scale)
        return np.stack([f(poses[0])] + [f(p, dt=dt) for p, dt in zip(poses[1:], dts, strict=True)])

    out = run(xy, steps)
    if zero_phase:
        out = run(out[::-1], steps[::-1])[::-1]
    return np.ascontiguousarray(out)


def ground_anchor(xy):
    """Where a person stands, per frame: (...,13,2) -> (...,2) = (x of the hip centre, y of the lower ankle)."""
    xy = np.asarray(xy, np.float32)
    x = 0.5 * (xy[..., L_HIP, 0] + xy[..., R_HIP, 0])
    y = np.maximum(xy[..., L_ANKLE, 1], xy[..., R_ANKLE, 1])  # image y grows downwards: the foot on the floor
    return np.stack([x, y], axis=-1)


@dataclass(frozen=True)
class PoseNormalizer:
    """Global pose normalisation (Everybody Dance Now): xy -> (xy - src_anchor) * scale + dst_anchor.

    One uniform scale (the ratio of robust standing heights) so a tall source drives a short target
    without stretching, and a shift taking the source's median floor point (ankle line, hip x) onto the
    target's, so the motion stays where the target was filmed.
    """

    scale: float
    src_anchor: tuple
    dst_anchor: tuple

    @classmethod
    def fit(cls, source_xy, target_xy, quantile=HEIGHT_QUANTILE):
        """From two clips' poses (N,13,2) and (M,13,2) in [0,1] (rows with NaN are ignored)."""
        stats = []
        for name, xy in (("source", source_xy), ("target", target_xy)):
            xy = np.asarray(xy, np.float32).reshape(-1, 13, 2)
            xy = xy[np.all(np.isfinite(xy), axis=(1, 2))]
            if len(xy) == 0:
                raise UserError(f"the {name} has no frame with a person: cannot normalise poses")
            stats.append((float(np.quantile(body_height(xy), quantile)), np.median(ground_anchor(xy), axis=0)))
        (h_src, a_src), (h_dst, a_dst) = stats
        if h_src <= 1e-6:
            raise UserError("the source skeletons have no size (all joints at one point): cannot normalise")
        return cls(h_dst / h_src, tuple(map(float, a_src)), tuple(map(float, a_dst)))

    @classmethod
    def identity(cls):
        return cls(1.0, (0.0, 0.0), (0.0, 0.0))

    def apply(self, xy):
        """(...,13,2) source poses -> the same in the target's placement, float32."""
        xy = np.asarray(xy, np.float32)
        return ((xy - np.float32(self.src_anchor)) * np.float32(self.scale) + np.float32(self.dst_anchor)).astype(
            np.float32
        )


def prepare_poses(ske_all, valid, fps, target_xy, smooth=True, normalize=True, *, times=None):
    """Source skeletons (N,13,>=2, NaN where missing) -> (source poses, normalised poses, PoseNormalizer).

    Both pose arrays are (N,13,2) float32, finite: the source's (filled, smoothed) in its own frame and
    the same mapped onto the target (what the generator is asked for). times (N,) s: the frames' own times
    (VideoSkeleton.times), which a variable frame rate's gap filling and smoothing go by.
    """
    src = fill_missing(np.asarray(ske_all)[..., :2], valid, fps, times=times)
    if smooth:
        src = smooth_poses(src, fps, times=times)
    norm = PoseNormalizer.fit(src[np.asarray(valid, bool)], target_xy) if normalize else PoseNormalizer.identity()
    return src, norm.apply(src), norm


# --------------------------------------------------------------------------- the video


def placement(times, fps):
    """How many times each source frame goes into an output written at the constant rate fps so that every frame
    shows at its own time: (N,) int64 from the frames' times (s, increasing; VideoSkeleton.times). Output frame k
    (at k / fps) shows the source frame nearest that time, so a frame is repeated through a gap in a variable frame
    rate (a phone slowing down in the dark) and dropped (0) when a later one is nearer its output frame (a burst).
    Frames 1 / fps apart (a constant rate) give all ones: nothing changes."""
    times = np.asarray(times, np.float64)
    if len(times) < 2:
        return np.ones(len(times), np.int64)
    grid = times[0] + np.arange(int(round((times[-1] - times[0]) * fps)) + 1) / fps
    after = np.clip(np.searchsorted(times, grid), 1, len(times) - 1)  # the first frame at or after each output time
    nearest = np.where(grid - times[after - 1] <= times[after] - grid, after - 1, after)
    return np.bincount(nearest, minlength=len(times)).astype(np.int64)


@functools.lru_cache(maxsize=16)
def _caption(text, color, width):
    """A caption rendered once: (mul, add) float32 (LABEL_H, width, 3) so a strip becomes strip * mul + add."""
    outline, ink = np.zeros((LABEL_H, width), np.uint8), np.zeros((LABEL_H, width), np.uint8)
    for img, thick in ((outline, 3), (ink, 1)):
        cv2.putText(img, text, (6, LABEL_H - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.42, 255, thick, cv2.LINE_AA)
    a_out, a_ink = outline[..., None] / np.float32(255), ink[..., None] / np.float32(255)
    mul = (1 - a_out) * (1 - a_ink)  # dark outline under light ink: readable on any background
    add = a_ink * np.float32(color)
    return mul.astype(np.float32), add.astype(np.float32)


def _label(img, text, color=WHITE):
    """Write a caption into the top strip of img, in place (cached: captions repeat every frame)."""
    mul, add = _caption(text, color, img.shape[1])
    img[:LABEL_H] = (img[:LABEL_H] * mul + add).astype(np.uint8)


def check_view(view):
    """`view` if it is one of VIEWS, else UserError (one line naming those there are)."""
    if view not in VIEWS:
        raise UserError(f"unknown view {view!r}: one of {', '.join(VIEWS)}")
    return view


def draw_panels(src_frame, src_xy, norm_xy, generated, found=True, label="generated", panel=PANEL, *, view=VIEW):
    """One output frame, each panel panel x panel, in `view` (VIEWS): "three" source + skeleton | normalised skeleton
    | generated, (P, 3P, 3) uint8; "side" source | generated, (P, 2P, 3); "generated" that one alone, (P, P, 3)."""
    panels, thick = [], max(1, panel // 96)
    if check_view(view) != "generated":
        left = src_frame if src_frame.shape[0] == panel else cv2.resize(src_frame, (panel, panel))
        left = np.array(left, np.uint8)
        if view == "three":
            draw_skeleton(left, src_xy, thick)
        _label(left, "source" if found else "no person found: pose filled in", WHITE if found else RED)
        panels.append(left)
    if view == "three":
        mid = np.zeros((panel, panel, 3), np.uint8)
        draw_skeleton(mid, norm_xy, thick)
        _label(mid, "normalised pose")
        panels.append(mid)
    right = cv2.resize(generated, (panel, panel), interpolation=cv2.INTER_LINEAR)
    _label(right, label)
    return np.concatenate([*panels, right], axis=1)


def _open_window():
    """--show: fail early with one line where there is no display."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UserError("--show needs a display (DISPLAY is not set); run without --show and open the mp4")


def _show(frame):
    """Show one frame in a window; False once the user pressed q or no window can be opened."""
    try:
        cv2.imshow(WINDOW, frame)
        if cv2.waitKey(1) & 0xFF != ord("q"):
            return True
    except cv2.error as e:  # an OpenCV built without a GUI, a display that went away: keep writing the file
        why = str(e).strip().splitlines()[-1]
        print(f"warning: --show cannot open a window ({why}); writing the video without it", file=sys.stderr)
        return False
    cv2.destroyAllWindows()
    return False


def coverage_warnings(source_vs, target_xy, share=COVERAGE_SHARE):
    """Lines saying which source frames ask for poses the target never made (and what it never did), when more
    than `share` of them do; [] otherwise. Poses are compared by limb directions (Coverage.uncovered)."""
    from deepdance import coverage

    gaps = coverage.uncovered(source_vs.ske_all[..., :2], target_xy)
    return gaps.lines() if gaps.share > share else []


def transfer(
    source_vs,
    target_xy,
    gen,
    out,
    *,
    smooth=True,
    normalize=True,
    batch=RENDER_BATCH,
    show=False,
    label=None,
    progress=None,
    verbose=True,
    sound=None,
    view=VIEW,
):
    """Render the motion transfer of source_vs onto gen's target into the mp4 `out` in `view` (VIEWS: its panels);
    returns timing stats.

    source_vs: a VideoSkeleton (ske_all, valid, frames_all, fps, times); target_xy (M,13,2) the target's poses
    (for the normalisation); gen: a generator (generate_batch); progress(done, total) is called per batch. The
    output runs at source_vs.fps with each source frame at its own time (placement: a variable frame rate's frames
    repeated or dropped), and a variable frame rate's poses are filled in and smoothed by those times too. sound (a
    video.Sound, span_sound): audio put under it, as long as the video; stats["sound_s"] says how much got there.
    """
    check_view(view)  # before anything is written
    t0 = time.perf_counter()
    n = len(source_vs.valid)
    repeats = placement(source_vs.times, source_vs.fps)
    src_xy, norm_xy, normalizer = prepare_poses(
        source_vs.ske_all, source_vs.valid, source_vs.fps, target_xy, smooth, normalize, times=source_vs.times
    )
    timing = {"prepare": time.perf_counter() - t0, "generate": 0.0, "draw": 0.0, "encode": 0.0}
    # The whole clip at once (a coherent generator matches it as one, without seams), its frames a batch at a time.
    step = max(1, batch)
    chunks = gen.generate_clip(norm_xy, step)
    label = label or "generated"
    bar = tqdm(total=n, desc="transfer", unit="frame", disable=not verbose, leave=False)
    with bar, VideoWriter(out, source_vs.fps, crf=CRF, sound=sound) as writer:
        for i in range(0, n, step):
            t = time.perf_counter()
            images = next(chunks)
            timing["generate"] += time.perf_counter() - t
            for j, img in enumerate(images):
                t = time.perf_counter()
                if j % READ_CHUNK == 0:  # source frames come from disk a chunk at a time: bounded memory
                    src = read_rows(source_vs.frames_all, i + j, i + j + READ_CHUNK)
                frame = draw_panels(
                    src[j % READ_CHUNK], src_xy[i + j], norm_xy[i + j], img, bool(source_vs.valid[i + j]), label,
                    view=view,
                )  # fmt: skip
                t2 = time.perf_counter()
                for _ in range(repeats[i + j]):
                    writer.write(frame)
                timing["encode"] += time.perf_counter() - t2
                timing["draw"] += t2 - t
                if show:
                    show = _show(frame)
                bar.update(1)
            if progress is not None:
                progress(min(i + step, n), n)
        t = time.perf_counter()
    timing["encode"] += time.perf_counter() - t  # ffmpeg finishing the file
    if show:
        cv2.destroyAllWindows()
    missing = int((~np.asarray(source_vs.valid)).sum())
    written = int(repeats.sum())
    stats = {"frames": n, "written": written, "missing": missing, "normalizer": normalizer, "sound_s": writer.sound_s}
    return {**stats, **timing}


def first_frames(source_vs, max_frames):
    """source_vs cut to its first max_frames sampled frames (after the stride; 0 or more than it has: all of it), for
    transfer: a shallow copy whose per-frame arrays are cut (frames_all stays whole: transfer reads rows by index)."""
    if not max_frames or max_frames >= len(source_vs.valid):
        return source_vs
    cut = copy.copy(source_vs)
    cut.valid, cut.ske_all, cut.times = (
        source_vs.valid[:max_frames],
        source_vs.ske_all[:max_frames],
        source_vs.times[:max_frames],
    )
    cut.rows = np.flatnonzero(cut.valid)
    return cut


def span_sound(source_vs):
    """The sound under a rendering of source_vs: its video's audio from the first rendered frame's time on (a
    video.Sound), None if the video has none. Output frame k shows the source at times[0] + k / fps (placement), so
    audio from times[0] played at its own speed stays with the picture, whatever the stride."""
    return source_sound(source_vs.video_path, float(source_vs.times[0]))


# --------------------------------------------------------------------------- CLI


def still_frames(video, count, n=STILLS):
    """n frames of the written output video (count frames), evenly spread, one above the other, (n * H, W, 3) uint8
    BGR; side by side, (H, n * W, 3), when a frame is square (--view generated): a column of squares would be a narrow
    ribbon, a row reads as a film strip."""
    from deepdance.video import iter_frames

    picks = set(np.linspace(0.1 * (count - 1), 0.9 * (count - 1), n).round().astype(int).tolist())
    frames = [frame for i, frame in iter_frames(video) if i in picks]
    return np.concatenate(frames, axis=1 if frames[0].shape[1] <= frames[0].shape[0] else 0)
