"""Live motion transfer: the target dances as you move in front of a webcam.

    python DanceDemo.py --live                                   # camera 0 -> the built-in sample target, gen_type 1
    python DanceDemo.py --live --source 1 --gen_type 3 --video_path data/taichi1.mp4 --out out/live.mp4
    python DanceDemo.py --live --source ../shared/data/taichi2.mp4 --window off   # a file played as if a camera
    python DanceDemo.py --live --source rtsp://192.168.1.20:8554/cam                # a network camera

--source is a camera index (0 = the first camera), a URL, or a video file; a file or a URL is played at its
own frame rate as if it were a camera. A reader thread keeps only the newest frame: frames that arrive while
the pipeline is busy are dropped, never queued, so the latency stays bounded. Per frame: MediaPipe Pose in
tracking mode, causal One-Euro smoothing (forwards only: the offline zero-phase pass needs the future), an
online pose normalisation (running robust body height and ground line of the source, settled within about a
second, then slowly adapting), gap handling (hold the last pose briefly, then show the target at rest), the
generator, and transfer's three panels with an overlay of fps and latency (capture to display).

Output: a window when a display exists (q or Esc quits, space pauses), headless otherwise; --out records what was
shown (in real time: a frame shown for three camera frames is recorded three times); --virtual_cam sends it to a
virtual camera (the pyvirtualcam package) for a video call. Ctrl-C stops cleanly and finishes the recording.
The last line printed is
    live: N frames in, M shown, K dropped, X fps shown, latency median A ms, p95 B ms
"""

import argparse
import contextlib
import math
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from pathlib import Path

from deepdance import transfer
from deepdance.cache import VideoSkeleton, add_framing_arg
from deepdance.capture import CLOCK, OPEN_TIMEOUT_S, LatestFrame, Reader, open_source, parse_source
from deepdance.cli import UserError, run_cli
from deepdance.files import output_path
from deepdance.gentypes import GEN_TYPES, SIZE, generator_module, load_generator, shown_size
from deepdance.pose import _quiet_native_stderr, make_pose
from deepdance.skeleton import N_JOINTS, Skeleton, body_height, normalize
from deepdance.transfer import PANEL
from deepdance.video import VideoWriter, check_video_path, cut_square, detect_image, frame_to_square

import cv2
import numpy as np

DEFAULT_SOURCE = "0"  # the first camera
HOLD_S = transfer.MAX_INTERP_S  # s: without a person this long, the last pose is held; longer, the target rests
SETTLE_S = 1.0  # s of detections during which the normalisation follows its estimate directly (then it is settled)
WINDOW_S = 20.0  # s: the normalisation's robust statistics run over the detections of this last stretch
ADAPT_S = 5.0  # s: once settled, the normalisation follows its estimate with this time constant (someone walking
# towards the camera is followed within seconds; one crouch or a mis-detection does not make the target pump)
RECORD_ROOM = 256 << 20  # bytes free --out needs at the start: a long session (~20 MB an hour at the panels' size)
RECORD_RESERVE = 32 << 20  # bytes: with less free, the recording stops and is finished while it still can be
STALL_S = 5.0  # s without a frame from a camera or stream: it is reported as stopped (a URL's reader has a read
# timeout of its own, capture.OPEN_TIMEOUT_S, and says the stream stopped first: this is then only a safety net)
PAUSE_POLL_MS = 30  # while paused, how often the window is polled for keys
RECENT = 25  # frames over which the overlay's fps and latency are averaged (about a second)
WINDOW_CHOICES = ("auto", "on", "off")
TORCH_THREADS = 1  # a trained generator's threads in the live loop (see live_transfer)
WINDOW = "DeepDance live (q quits, space pauses)"
KEY_QUIT, KEY_PAUSE = (ord("q"), ord("Q"), 27), ord(" ")  # 27 = Esc


# --------------------------------------------------------------------------- per-frame pose processing


def whole_square(width, height):
    """The live source's square, (x0, y0, side) px: the whole frame padded to a square (black above and below a
    landscape picture), so nothing is cut wherever the person moves. Its placement does not matter to the target:
    the normalisation maps the source's height and ground line onto the target's."""
    side = max(width, height)
    return (width - side) // 2, (height - side) // 2, side


class PoseTracker:
    """MediaPipe Pose in tracking mode, one process, on whole frames as the extraction does (VideoSkeleton):
    (H, W, 3) uint8 BGR -> (13, 2) float32 joints in [0, 1] of the frame's whole_square, or None (nobody)."""

    def __init__(self):
        with _quiet_native_stderr():
            self.pose = make_pose("tracking")
        self._started = False

    def __call__(self, image):
        det = detect_image(image)
        # The graph logs its start-up lines during the first frame only.
        with _quiet_native_stderr() if not self._started else contextlib.nullcontext():
            res = self.pose.process(cv2.cvtColor(det, cv2.COLOR_BGR2RGB))
        self._started = True
        if res.pose_landmarks is None:
            return None
        h, w = image.shape[:2]
        return frame_to_square(Skeleton.from_mediapipe(res.pose_landmarks.landmark).xy, image.shape, whole_square(w, h))

    def close(self):
        self.pose.close()


class CausalSmoother:
    """transfer's One-Euro filter run forwards only (its zero-phase backward pass needs the future), stepped by the
    capture times: dropped frames make the steps uneven, and the filter's cut-offs are in Hz."""

    def __init__(self, fps, *, min_cutoff=transfer.MIN_CUTOFF, beta=transfer.BETA, d_cutoff=transfer.D_CUTOFF):
        self.fps, self.params = fps, {"min_cutoff": min_cutoff, "beta": beta, "d_cutoff": d_cutoff}
        self.reset()

    def reset(self):
        """Forget the motion (after a gap the person may come back anywhere: no glide from the old pose)."""
        self.filter = transfer.OneEuroFilter(self.fps, **self.params)
        self.t = None

    def __call__(self, xy, t, scale=1.0):
        """Pose (13, 2) captured at t s, scale = body height (the unit of the filter's speeds) -> (13, 2) float32."""
        dt = None if self.t is None else t - self.t  # the first pose after a reset has no step
        self.filter.scale = max(float(scale), 1e-6)
        self.t = t
        return self.filter(xy, dt=dt)


class OnlineNormalizer:
    """transfer.PoseNormalizer estimated on the fly: the source's robust standing height (HEIGHT_QUANTILE of the
    body heights) and ground line (median hip-x / lower-ankle anchor) over the detections of the last WINDOW_S.

    During the first SETTLE_S of detections the estimate is used as it is (it converges as detections come);
    after that it is followed with the time constant ADAPT_S, so the target stays steady.
    """

    def __init__(
        self, target_xy, *, settle_s=SETTLE_S, window_s=WINDOW_S, adapt_s=ADAPT_S, quantile=transfer.HEIGHT_QUANTILE
    ):
        xy = np.asarray(target_xy, np.float32).reshape(-1, N_JOINTS, 2)
        xy = xy[np.all(np.isfinite(xy), axis=(1, 2))]
        if len(xy) == 0:
            raise UserError("the target has no frame with a person: cannot normalise poses")
        self.dst_height = float(np.quantile(body_height(xy), quantile))
        self.dst_anchor = tuple(map(float, np.median(transfer.ground_anchor(xy), axis=0)))
        self.settle_s, self.window_s, self.adapt_s, self.quantile = settle_s, window_s, adapt_s, quantile
        self._seen = deque()  # (t, body height, anchor x, anchor y) of recent detections
        self.t_first = self.t_last = None
        self.height = self.anchor = None  # the current estimate of the source (None before any detection)

    @property
    def settled(self):
        return self.t_first is not None and self.t_last - self.t_first >= self.settle_s

    def update(self, xy, t):
        """Add a detected source pose (13, 2) captured at t s; returns the current PoseNormalizer."""
        xy = np.asarray(xy, np.float32)
        h = float(body_height(xy))
        if not np.isfinite(h) or h <= 1e-6:  # a degenerate detection (all joints at one point) tells nothing
            return self.normalizer()
        ax, ay = transfer.ground_anchor(xy)
        self._seen.append((t, h, float(ax), float(ay)))
        while self._seen[0][0] < t - self.window_s:
            self._seen.popleft()
        seen = np.asarray(self._seen, np.float64)  # (n, 4)
        est_h = float(np.quantile(seen[:, 1], self.quantile))
        est_a = np.median(seen[:, 2:], axis=0)
        if self.t_first is None:
            self.t_first = t
        if self.height is None or t - self.t_first <= self.settle_s:
            self.height, self.anchor = est_h, est_a
        else:
            k = 1.0 - math.exp(-max(t - self.t_last, 0.0) / self.adapt_s)
            self.height += k * (est_h - self.height)
            self.anchor = self.anchor + k * (est_a - self.anchor)
        self.t_last = t
        return self.normalizer()

    def normalizer(self):
        """The current transfer.PoseNormalizer (identity before the first detection)."""
        if self.height is None:
            return transfer.PoseNormalizer.identity()
        return transfer.PoseNormalizer(self.dst_height / self.height, tuple(map(float, self.anchor)), self.dst_anchor)


def source_panel(image, side=transfer.PANEL):
    """The left panel: the frame's whole_square at side px, (H, W, 3) -> (side, side, 3) uint8 (joints line up)."""
    h, w = image.shape[:2]
    return cut_square(image, whole_square(w, h), side)


def rest_index(target_xy):
    """The target's rest frame: the one whose pose (hip-centred, in body heights) is nearest its median pose."""
    pose = normalize(np.asarray(target_xy, np.float32))  # (N, 26)
    return int(np.argmin(np.linalg.norm(pose - np.median(pose, axis=0), axis=1)))


def rest_frame(target_vs, size):
    """(pose (13, 2), image (size, size, 3) uint8 BGR) of the target at rest: shown when nobody is in view."""
    xy = target_vs.skeletons()
    i = rest_index(xy)
    image = target_vs.frame(i, size) if hasattr(target_vs, "frame") else target_vs.frames(size)[i]
    return np.asarray(xy[i], np.float32), np.asarray(image, np.uint8)


class LiveTransfer:
    """One captured frame -> the three-panel frame (transfer.draw_panels) and the time each stage took.

    pose(image) -> (13, 2) or None is the tracker (PoseTracker; tests pass a fake); gen has generate(Skeleton).
    States: "tracking" (a person found), "holding" (nobody for up to hold_s: the last pose is held),
    "rest" (nobody for longer: the target's rest frame, and the smoothing starts afresh).
    """

    def __init__(self, *, gen, target_xy, rest, pose, fps, smooth=True, normalize=True, hold_s=HOLD_S, label=None):
        self.gen, self.pose, self.hold_s = gen, pose, hold_s
        self.rest_xy, self.rest_image = rest
        self.smoother = CausalSmoother(fps) if smooth else None
        self.normalizer = OnlineNormalizer(target_xy) if normalize else None
        self.label = label or "generated"
        self.last_xy, self.last_seen = None, -math.inf
        self.states = {"tracking": 0, "holding": 0, "rest": 0}  # frames in each state
        self.state = None  # the previous frame's

    def locate(self, image, t):
        """(state, source pose (13, 2) or None, pose for the generator (13, 2) or None) for the frame taken at t."""
        xy = self.pose(image)
        if xy is not None and np.all(np.isfinite(xy)):
            norm = self.normalizer.update(xy, t) if self.normalizer else transfer.PoseNormalizer.identity()
            if self.smoother is not None:
                height = self.normalizer.height if self.normalizer else float(body_height(xy))
                xy = self.smoother(xy, t, height)
            self.last_xy, self.last_seen = np.asarray(xy, np.float32), t
            return "tracking", self.last_xy, norm.apply(self.last_xy)
        if self.last_xy is not None and t - self.last_seen <= self.hold_s:
            norm = self.normalizer.normalizer() if self.normalizer else transfer.PoseNormalizer.identity()
            return "holding", self.last_xy, norm.apply(self.last_xy)
        if self.state != "rest":  # entering the rest state: whoever comes next starts a new sequence
            if self.smoother is not None:
                self.smoother.reset()
            if hasattr(self.gen, "reset"):  # a generator that remembers the previous poses (gen_type 8)
                self.gen.reset()
        self.last_xy = None
        return "rest", None, None

    def __call__(self, image, t):
        """(H, W, 3) uint8 BGR captured at t s -> (panels (P, 3P, 3) uint8, {"pose", "generate", "draw": s}, state)."""
        t0 = time.perf_counter()
        state, src_xy, norm_xy = self.locate(image, t)
        t1 = time.perf_counter()
        if norm_xy is None:
            generated, norm_xy, label = self.rest_image, self.rest_xy, f"nobody for {self.hold_s:g} s: target at rest"
        else:
            # generate(), the one-pose streaming call: gen_type 8 conditions on the poses of its previous calls.
            generated, label = self.gen.generate(Skeleton(norm_xy)), self.label
        t2 = time.perf_counter()
        shown_xy = np.full((N_JOINTS, 2), np.nan, np.float32) if src_xy is None else src_xy
        panels = transfer.draw_panels(
            source_panel(image), shown_xy, norm_xy, generated, found=state == "tracking", label=label
        )
        t3 = time.perf_counter()
        self.states[state] += 1
        self.state = state
        return panels, {"pose": t1 - t0, "generate": t2 - t1, "draw": t3 - t2}, state


# --------------------------------------------------------------------------- output: window, recording, camera


def display_available():
    """True where a window can be opened: off Linux always; on Linux when DISPLAY's X server (or WAYLAND_DISPLAY's
    socket) answers. Checked first because a Qt window on an unreachable display aborts the process."""
    if not sys.platform.startswith("linux"):
        return True
    wayland = os.environ.get("WAYLAND_DISPLAY")
    if wayland:
        path = Path(wayland) if wayland.startswith("/") else Path(os.environ.get("XDG_RUNTIME_DIR", "/tmp")) / wayland
        if path.exists():
            return True
    display = os.environ.get("DISPLAY", "")
    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        return False
    if host in ("", "unix"):
        return Path(f"/tmp/.X11-unix/X{number}").exists()
    try:
        with socket.create_connection((host, 6000 + int(number)), timeout=0.5):
            return True
    except OSError:
        return False


class Display:
    """The window and its keys; headless (nothing shown, no keys) when disabled or when no window can open."""

    def __init__(self, enabled, title=WINDOW):
        self.title, self.enabled = title, bool(enabled)
        if self.enabled:
            try:
                cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE)
            except cv2.error as e:  # an OpenCV built without a GUI: carry on headless
                self._fallback(e)

    def _fallback(self, e):
        why = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        print(f"warning: no window can be opened ({why}); running headless (Ctrl-C stops)", file=sys.stderr)
        self.enabled = False

    def show(self, frame, wait_ms=1):
        """Show a frame (or only poll the keys when frame is None); 'quit', 'pause' or None."""
        if not self.enabled:
            return None
        try:
            if frame is not None:
                cv2.imshow(self.title, frame)
            key = cv2.waitKey(wait_ms) & 0xFF
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                return "quit"  # the user closed the window
        except cv2.error as e:
            self._fallback(e)
            return None
        return "quit" if key in KEY_QUIT else "pause" if key == KEY_PAUSE else None

    def close(self):
        if self.enabled:
            with contextlib.suppress(cv2.error):
                cv2.destroyWindow(self.title)
            self.enabled = False


class Recorder:
    """--out: the frames shown, in real time at the source's frame rate: a frame stays in the recording until the
    next one is shown, as it stayed on screen (frames are numbered by the source's time slots). Atomic (VideoWriter):
    the file appears when finish() completes it."""

    def __init__(self, path, fps, *, reserve=RECORD_RESERVE):
        self.path, self.fps, self.reserve = Path(path), float(fps), reserve
        self.writer = VideoWriter(self.path, self.fps, crf=transfer.CRF)
        self._pending = None  # (frame, slot) shown last, written once the next one says for how long
        self.stopped = None  # why the recording stopped before the session (a phrase), or None

    @property
    def frames(self):
        return self.writer.n

    def add(self, frame, slot):
        if self.stopped:
            return
        if self._pending is not None:
            last, last_slot = self._pending
            for _ in range(max(1, slot - last_slot)):
                self.writer.write(last)
        self._pending = (frame.copy(), slot)
        if self.writer.n and self.writer.n % max(1, round(self.fps)) == 0:  # about once a second
            self._check_room()

    def _check_room(self):
        """Stop while the disk can still take the file's end: a disk that fills kills ffmpeg, and a file it did not
        finish cannot be played, so waiting for that would lose the whole recording."""
        import shutil

        try:
            free = shutil.disk_usage(self.path.parent).free
        except OSError:
            return
        if free < self.reserve:
            self.cut()
            self.stopped = (f"the disk holding {self.path} is nearly full ({free / 2**20:.0f} MB free): the recording "
                            f"stopped after {self.frames} frames")  # fmt: skip

    def cut(self):
        """A pause: write what is pending once; the next frame starts afresh (the paused time is not recorded)."""
        if self._pending is not None:
            self.writer.write(self._pending[0])
            self._pending = None

    def finish(self):
        """Complete the file: it is playable and under its name after this."""
        self.cut()
        self.writer.close(ok=True)

    def abort(self):
        self.writer.close(ok=False)


def open_virtual_cam(width, height, fps):
    """--virtual_cam: a pyvirtualcam camera taking BGR frames; UserError if the package or a device is missing."""
    try:
        import pyvirtualcam
    except ImportError:
        raise UserError(
            "--virtual_cam needs the pyvirtualcam package (pip install pyvirtualcam) and a virtual camera "
            "(v4l2loopback on Linux, OBS Studio's virtual camera on Windows and macOS)"
        ) from None
    try:
        return pyvirtualcam.Camera(width=width, height=height, fps=fps, fmt=pyvirtualcam.PixelFormat.BGR)
    except (RuntimeError, ValueError) as e:
        raise UserError(f"--virtual_cam: no virtual camera could be started ({e})") from None


class StopOnSignal:
    """Ctrl-C (and SIGTERM) end the loop after the current frame, so the recording is finished; a second Ctrl-C
    interrupts at once. Handlers can only be set in the main thread: elsewhere only the flag is there."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


def draw_overlay(frame, recent):
    """Write fps shown and latency (the last RECENT frames' means) at the bottom of the frame, in place."""
    if len(recent) < 2:
        return frame
    r = np.asarray(recent, np.float64)  # (n, 6): t shown, latency, wait, pose, generate, draw (s)
    span = r[-1, 0] - r[0, 0]
    fps = (len(r) - 1) / span if span > 0 else 0.0
    lat, wait, pose, gen, draw = 1000 * r[:, 1:].mean(axis=0)
    lines = (
        f"{fps:4.1f} fps shown, latency {lat:3.0f} ms",
        f"wait {wait:.0f} pose {pose:.0f} gen {gen:.0f} draw {draw:.0f} ms",
    )
    h, x = frame.shape[0], transfer.PANEL + 6  # on the normalised-pose panel: black, always readable
    for i, text in enumerate(lines):
        y = h - 8 - 16 * (len(lines) - 1 - i)
        cv2.putText(frame, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(frame, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return frame


def summary_line(*, frames_in, shown, dropped, fps, latencies):
    """The last line printed: `live: N frames in, M shown, K dropped, X fps shown, latency median A ms, p95 B ms`.

    latencies in s; with no frame shown the latency figures read 0.
    """
    lat = np.asarray(latencies, np.float64) * 1000 if len(latencies) else np.zeros(1)
    return (
        f"live: {frames_in} frames in, {shown} shown, {dropped} dropped, {fps:.1f} fps shown, "
        f"latency median {np.median(lat):.0f} ms, p95 {np.percentile(lat, 95):.0f} ms"
    )


# --------------------------------------------------------------------------- the loop


class _Tally:
    """What run_live measures as frames are shown: per-frame latencies and stage times (s), the last RECENT frames
    for the overlay, frames shown, time paused, and the capture times of the first and last frame shown."""

    def __init__(self):
        self.latencies, self.parts = [], {"wait": [], "pose": [], "generate": [], "draw": []}
        self.recent = deque(maxlen=RECENT)
        self.shown, self.paused_s = 0, 0.0
        self.t_begin = self.t_end = None

    def add(self, frame, *, t_take, t_shown, timing):
        """A frame captured at frame.t, taken from the slot at t_take and shown at t_shown (s); timing as
        LiveTransfer's (s), "draw" including the overlay and the display."""
        latency = t_shown - frame.t
        self.shown += 1
        self.latencies.append(latency)
        self.parts["wait"].append(t_take - frame.t)
        for k in ("pose", "generate", "draw"):
            self.parts[k].append(timing[k])
        self.recent.append((t_shown, latency, t_take - frame.t, timing["pose"], timing["generate"], timing["draw"]))
        self.t_end = t_shown

    def stats(self, *, arrived, error, cpu_s):
        """run_live's stats dict; fps over the time frames were shown, pauses left out."""
        active = (self.t_end - self.t_begin - self.paused_s) if self.shown > 1 else 0.0
        fps = (self.shown - 1) / active if active > 0 else 0.0
        return {
            "frames_in": arrived,
            "shown": self.shown,
            "dropped": arrived - self.shown,
            "fps": fps,
            "latencies": self.latencies,
            "median_ms": {k: 1000 * float(np.median(v)) if v else 0.0 for k, v in self.parts.items()},
            "error": error,
            "cpu_ms_per_frame": 1000 * cpu_s / max(self.shown, 1),
        }


def _show_frame(frame, *, to_panels, display, recorder, vcam, tally, clock):
    """One captured frame through the pipeline onto the window, virtual camera and recording; the display's key
    ('quit', 'pause' or None)."""
    t_take = clock.now()
    if tally.t_begin is None:
        tally.t_begin = frame.t
    panels, timing, _ = to_panels(frame.image, frame.t)
    t_draw = clock.now()
    draw_overlay(panels, tally.recent)
    key = display.show(panels)
    if vcam is not None:
        vcam.send(panels)
    t_shown = clock.now()
    timing["draw"] += t_shown - t_draw
    tally.add(frame, t_take=t_take, t_shown=t_shown, timing=timing)
    if recorder is not None:
        recorder.add(panels, frame.index)
    return key


def _pause(*, stop, slot, display, recorder, tally, clock):
    """Hold until space, q/Esc, a closed window or Ctrl-C; the key that ended it. The recording skips the pause,
    and the frame waiting in the slot is dropped: it is old."""
    t_pause = clock.now()
    if recorder is not None:
        recorder.cut()
    key = "pause"
    while not stop.requested:
        key = display.show(None, PAUSE_POLL_MS)
        if key in ("pause", "quit") or not display.enabled:
            break
    slot.discard()
    tally.recent.clear()
    tally.paused_s += clock.now() - t_pause
    return key


def _live_loop(*, slot, to_panels, display, recorder, vcam, name, max_frames, stall_s, clock, tally):
    """run_live's loop: frames until the source ends or stalls, q/Esc, Ctrl-C or max_frames; the source's problem
    (a phrase) or None."""
    waited_since = None  # when the current wait for a frame began
    with StopOnSignal() as stop:
        while not stop.requested and not (max_frames and tally.shown >= max_frames):
            try:
                frame = slot.take(timeout=0.1)  # short: Ctrl-C is checked between waits
                waited_since = None
            except TimeoutError:
                waited_since = waited_since if waited_since is not None else clock.now()
                if clock.now() - waited_since > stall_s:
                    return f"{name} sent no frame for {stall_s:g} s (stopped, or unplugged?)"
                if display.show(None) == "quit":
                    return None
                continue
            if frame is None:  # the source ended
                return slot.error
            key = _show_frame(
                frame, to_panels=to_panels, display=display, recorder=recorder, vcam=vcam, tally=tally, clock=clock
            )
            if key == "pause":
                key = _pause(stop=stop, slot=slot, display=display, recorder=recorder, tally=tally, clock=clock)
            if key == "quit":
                return None
            if recorder is not None and recorder.stopped:
                return recorder.stopped
    return None


def run_live(
    *, slot, transfer, display, recorder=None, vcam=None, name="source", max_frames=0, stall_s=STALL_S, clock=CLOCK
):
    """Show frames from slot (a LatestFrame the reader fills) until the source ends, q/Esc, Ctrl-C or max_frames.

    Returns the stats dict (frames_in, shown, dropped, fps, latencies (s), timing medians, states, error: the
    source's problem or None). The recording is finished (or aborted on a second Ctrl-C) before it returns.
    """
    tally = _Tally()
    cpu0 = time.process_time()  # every thread of this process (MediaPipe's and the reader's too), not ffmpeg's
    try:
        error = _live_loop(
            slot=slot, to_panels=transfer, display=display, recorder=recorder, vcam=vcam, name=name,
            max_frames=max_frames, stall_s=stall_s, clock=clock, tally=tally,
        )  # fmt: skip
    except KeyboardInterrupt:
        if recorder is not None:
            recorder.abort()
        raise
    except BaseException:
        if recorder is not None:  # a crash: keep what was shown, completed (a playable file)
            with contextlib.suppress(Exception):
                recorder.finish()
        raise
    cpu_s = time.process_time() - cpu0
    if recorder is not None:
        recorder.finish()
    arrived, _, _ = slot.counts()
    return tally.stats(arrived=arrived, error=error, cpu_s=cpu_s)


# --------------------------------------------------------------------------- CLI


def build_parser():
    p = argparse.ArgumentParser(
        prog="DanceDemo.py --live", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--source",
        default=DEFAULT_SOURCE,
        help=f"camera index, URL or video file (default {DEFAULT_SOURCE}: the first camera)",
    )
    p.add_argument(
        "--gen_type",
        type=int,
        default=transfer.DEFAULT_GEN_TYPE,
        choices=sorted(GEN_TYPES),
        help=f"generator, see python DanceDemo.py --help (default {transfer.DEFAULT_GEN_TYPE})",
    )
    p.add_argument("--video_path", default=None, help="target video: who appears (default: the built-in sample target)")
    add_framing_arg(p, "the target's square")
    p.add_argument("--out", default=None, help="also record what is shown to this .mp4 (default: no recording)")
    p.add_argument(
        "--window",
        default="auto",
        choices=WINDOW_CHOICES,
        help="show a window: auto = when a display exists, on = required, off = headless (default auto)",
    )
    p.add_argument("--show", action="store_true", help="same as --window on (DanceDemo's flag)")
    p.add_argument(
        "--virtual_cam", action="store_true", help="also send the frames to a virtual camera (pyvirtualcam; default no)"
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="trained models (default auto)")
    p.add_argument("--size", type=int, default=SIZE, choices=(64, 128, 256), help=f"generator px (default {SIZE})")
    p.add_argument(
        "--smooth", action=argparse.BooleanOptionalAction, default=True, help="causal One-Euro smoothing (default on)"
    )
    p.add_argument(
        "--normalize",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="online pose normalisation onto the target (default on)",
    )
    p.add_argument(
        "--hold", type=float, default=HOLD_S, help=f"s to hold the last pose when nobody is seen (default {HOLD_S:g})"
    )
    p.add_argument("--max_frames", type=int, default=0, help="stop after this many frames shown (default 0: no limit)")
    return p


def check_out(out, inputs):
    """--out as a resolved .mp4 path, or None; UserError (deepdance.files.output_path) for another suffix, a folder,
    an input's name, the sample or a cache, or a place without room for RECORD_ROOM of recording."""
    if out is None:
        return None
    return output_path(out, option="--out", suffixes=(".mp4",), inputs=inputs, need_bytes=RECORD_ROOM)


def check_args(a):
    """Refuse bad options, and a generator whose code is missing, before anything slow -> (window "on"/"auto"/
    "off", target path or None (the built-in sample), source kind and where (parse_source), --out path or None)."""
    if a.hold < 0:
        raise UserError(f"--hold must be >= 0, got {a.hold}")
    if a.max_frames < 0:
        raise UserError(f"--max_frames must be >= 0, got {a.max_frames}")
    window = "on" if a.show else a.window
    if window == "on" and not display_available():
        raise UserError("--window on needs a display (none answers at DISPLAY); use --window off or auto")
    target = check_video_path(a.video_path) if a.video_path else None
    kind, where = parse_source(a.source)
    out = check_out(a.out, {target, where} if kind == "file" else {target})
    generator_module(a.gen_type, target)
    return window, target, kind, where, out


def live_transfer(a, *, target_vs, first, fps):
    """(LiveTransfer, its PoseTracker) for the target, warmed up on the source's first frame (H, W, 3) uint8 BGR:
    MediaPipe's graph and the network's first pass are not paid by a frame shown late."""
    size = shown_size(a.gen_type, a.size, PANEL)
    gen = load_generator(target_vs, a.gen_type, size=size, device=a.device)
    if "torch" in sys.modules:  # a trained gen_type (gen_type 1 never loads torch)
        # One image at a time: a second OpenMP thread gains nothing and fights MediaPipe and the reader for the
        # CPU, which shows as latency spikes on a small machine (measured in docs/live.md, Threads).
        sys.modules["torch"].set_num_threads(TORCH_THREADS)
    rest = rest_frame(target_vs, size)  # as sharp as the generated frames
    pose = PoseTracker()
    pose(first)
    gen.generate_batch(rest[0][None])
    to_panels = LiveTransfer(
        gen=gen,
        target_xy=target_vs.skeletons(),
        rest=rest,
        pose=pose,
        fps=fps,
        smooth=a.smooth,
        normalize=a.normalize,
        hold_s=a.hold,
        label=f"generated: gen_type {a.gen_type}",
    )
    return to_panels, pose


def print_closing(stats, *, to_panels, recorder, out, fps):
    """The closing lines: where the latency went, the recording, then summary_line (the last line)."""
    m = stats["median_ms"]
    print(
        f"latency split (medians): wait {m['wait']:.0f} ms, pose {m['pose']:.0f} ms, generate {m['generate']:.0f} ms, "
        f"draw {m['draw']:.0f} ms; CPU {stats['cpu_ms_per_frame']:.0f} ms a frame shown; "
        f"{to_panels.states['holding']} frames held, {to_panels.states['rest']} at rest"
    )
    if recorder is not None:
        print(f"recorded {out}: {recorder.frames} frames at {fps:.3g} fps ({recorder.frames / fps:.1f} s)")
    print(
        summary_line(
            frames_in=stats["frames_in"], shown=stats["shown"], dropped=stats["dropped"], fps=stats["fps"],
            latencies=stats["latencies"],
        )
    )  # fmt: skip
    sys.stdout.flush()


def main(argv=None):
    a = build_parser().parse_args(argv)
    window, target, kind, where, out = check_args(a)
    cap, first, fps, name, pace, expected = open_source(kind, where)  # a camera that does not open fails now
    reader = None
    try:
        target_vs = VideoSkeleton(target, framing=a.framing)
        to_panels, pose = live_transfer(a, target_vs=target_vs, first=first, fps=fps)
        display = Display(window == "on" or (window == "auto" and display_available()))
        vcam = open_virtual_cam(3 * PANEL, PANEL, fps) if a.virtual_cam else None
        recorder = Recorder(out, fps) if out else None
        h, w = first.shape[:2]
        how = "q or Esc quits, space pauses" if display.enabled else "headless, Ctrl-C stops"
        onto = target_vs.video_path.name
        print(f"live from {name} ({w}x{h}, {fps:.3g} fps) onto {onto}, gen_type {a.gen_type}: {how}")
        slot = LatestFrame()
        reader = Reader(
            cap, slot, name=name, kind=kind, pace_fps=pace, first=first if kind != "camera" else None, expected=expected
        ).start()
        try:
            # A stalled URL is said by its reader when FFmpeg's read timeout ends the read, after the last frame
            # it sent: the loop waits longer, so one message, not whichever timer fires first, reports it.
            stall_s = STALL_S + OPEN_TIMEOUT_S if kind == "url" else STALL_S
            stats = run_live(
                slot=slot, transfer=to_panels, display=display, recorder=recorder, vcam=vcam, name=name,
                max_frames=a.max_frames, stall_s=stall_s,
            )  # fmt: skip
        finally:
            display.close()
            if vcam is not None:
                vcam.close()
            pose.close()
    except OSError as e:
        if out is None:
            raise
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        if reader is None or reader.stop():
            cap.release()  # not while the reader may still be inside read()
    print_closing(stats, to_panels=to_panels, recorder=recorder, out=out, fps=fps)
    if stats["error"]:
        kept = f"; the recording so far is in {out}" if recorder is not None and recorder.frames else ""
        raise UserError(stats["error"] + kept)
    return stats


if __name__ == "__main__":
    run_cli(main)
