"""Live: the newest-frame reader, causal smoothing, online normalisation, gaps, the loop, its last line, bad input.

No wall-clock assertions and no races: the reader and the loop run on a fake clock and fake captures that the tests
step by hand; the one test of the real thread checks only what holds whatever the interleaving.
"""

import os
import re
import signal
import socket
import sys

from deepdance import capture, files, live, transfer
from deepdance.cli import UserError, run_cli
from deepdance.nearest import GenNearest
from deepdance.skeleton import body_height
from deepdance.transfer import LABEL_H, PANEL

import cv2
import numpy as np
import pytest

import DanceDemo
from conftest import POSE, FakeTarget, motion, read_video, run_script, write_video

LAST_LINE = re.compile(
    r"live: (\d+) frames in, (\d+) shown, (\d+) dropped, (\d+\.\d) fps shown, latency median (\d+) ms, p95 (\d+) ms"
)


class FakeClock:
    """Time that moves only when told: sleep() advances it, and so does every now() by `tick` s."""

    def __init__(self, tick=0.0):
        self.t, self.tick, self.slept = 0.0, tick, []

    def now(self):
        self.t += self.tick
        return self.t

    def sleep(self, s):
        self.slept.append(s)
        self.t += s


class FakeCapture:
    """A cv2.VideoCapture over n synthetic frames (frame i filled with i); `cost` s of the clock pass per read."""

    def __init__(self, n, *, clock=None, cost=0.0, shape=(48, 64), opened=True):
        self.n, self.clock, self.cost, self.shape, self.opened = n, clock, cost, shape, opened
        self.i, self.released = 0, False

    def isOpened(self):  # OpenCV's name
        return self.opened

    def read(self):
        if self.i >= self.n:
            return False, None
        if self.clock is not None:
            self.clock.t += self.cost
        frame = np.full((*self.shape, 3), self.i % 256, np.uint8)
        self.i += 1
        return True, frame

    def grab(self):
        ok, _ = self.read()
        return ok

    def get(self, prop):
        return 25.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self):
        self.released = True


def frame_value(frame):
    return int(frame.image[0, 0, 0])


# --------------------------------------------------------------------------- the reader: newest frame only


def test_latest_frame_keeps_only_the_newest_and_counts_the_rest():
    slot = capture.LatestFrame()
    for i in range(3):
        slot.put(capture.Frame(np.zeros((2, 2, 3), np.uint8), i, 0.1 * i))
    assert slot.take(timeout=0).index == 2  # the newest; 0 and 1 were replaced before anyone took them
    assert slot.counts() == (3, 2, 1)
    with pytest.raises(TimeoutError):
        slot.take(timeout=0)
    slot.put(capture.Frame(np.zeros((2, 2, 3), np.uint8), 3, 0.3))
    slot.discard()  # a pause: the waiting frame is old
    slot.missed()  # a frame the reader skipped
    assert slot.counts() == (5, 4, 1)
    slot.put(capture.Frame(np.zeros((2, 2, 3), np.uint8), 5, 0.5))
    slot.close("gone")
    assert slot.take(timeout=0).index == 5  # what arrived before the end is still shown
    assert slot.take(timeout=0) is None and slot.error == "gone"


def test_reader_plays_a_file_at_its_frame_rate_and_drops_what_the_pipeline_misses():
    clock = FakeClock()
    slot = capture.LatestFrame()
    reader = capture.Reader(FakeCapture(6, clock=clock), slot, name="clip", kind="file", pace_fps=25.0, clock=clock)
    taken = []
    for i in range(6):
        assert reader.step()
        if i % 3 == 2:  # a pipeline that takes a frame every third frame time
            taken.append(slot.take(timeout=0))
    assert not reader.step()  # the end of the file
    assert [f.index for f in taken] == [2, 5] and [frame_value(f) for f in taken] == [2, 5]
    # Each frame is read at its own time (index / fps), as a camera would send it.
    assert [f.t for f in taken] == pytest.approx([0.08, 0.20])
    assert sum(clock.slept) == pytest.approx(0.24)  # the end is found at the time a 7th frame would be due
    assert slot.counts() == (6, 4, 2)


def test_reader_falls_behind_like_a_camera_skipping_frames_whose_time_has_passed():
    clock = FakeClock()

    class Slot(capture.LatestFrame):
        def put(self, frame):
            put.append(frame.index)
            super().put(frame)

    put, slot = [], Slot()
    # Decoding takes 2 frame times (1/8 s at 16 fps; binary fractions keep the arithmetic exact): a camera would have
    # sent the frames in between meanwhile.
    reader = capture.Reader(FakeCapture(20, clock=clock, cost=1 / 8), slot, name="clip", kind="file", pace_fps=16.0,
                         clock=clock)  # fmt: skip
    while reader.step():
        pass
    # Frame 0 is read by 1/8 s, when frame 1 (due at 1/16 s) is a frame time late: it is skipped and frame 2 read
    # (by 3/8 s); then 3 frames are late (3-5 skipped, 6 read by 7/8 s), then 7 (7-13, 14 read); the rest are
    # skipped until the end.
    assert put == [0, 2, 6, 14]
    assert slot.counts() == (20, 19, 0) and slot.take(timeout=0).index == 14


@pytest.mark.parametrize("kind, error", [("file", None), ("camera", "camera 0 stopped sending frames after 30 frames")])
def test_reader_thread_accounts_for_every_frame(kind, error):
    """The real thread against a consumer: whatever the interleaving, every frame is shown or dropped, the last one
    is shown, and a camera that stops is reported."""
    slot = capture.LatestFrame()
    name = "camera 0" if kind == "camera" else "clip"
    reader = capture.Reader(FakeCapture(30), slot, name=name, kind=kind).start()
    shown = []
    while (frame := slot.take(timeout=10)) is not None:
        shown.append(frame.index)
    assert reader.stop()
    arrived, dropped, taken = slot.counts()
    assert arrived == 30 and taken == len(shown) and dropped == 30 - len(shown)
    assert shown == sorted(shown) and shown[-1] == 29
    assert slot.error == error


# --------------------------------------------------------------------------- causal smoothing


def noisy_dance(n=120, fps=25.0, seed=0):
    t = np.arange(n) / fps
    xy = motion(2 * np.pi * 0.7 * t)
    return xy + np.random.default_rng(seed).normal(0, 0.004, xy.shape).astype(np.float32), t


def test_causal_smoothing_has_no_look_ahead():
    xy, t = noisy_dance()
    other = xy.copy()
    other[60:] += np.float32(0.2)  # a different future from frame 60 on
    t_uneven = t.copy()
    t_uneven[70:] += 0.05  # and frames dropped
    runs = []
    for poses, times in ((xy, t), (other, t), (other, t_uneven)):
        s = live.CausalSmoother(25.0)
        runs.append(np.stack([s(p, ti, 0.6) for p, ti in zip(poses, times, strict=True)]))
    np.testing.assert_array_equal(runs[0][:60], runs[1][:60])  # the past does not move when the future changes
    np.testing.assert_array_equal(runs[1][:70], runs[2][:70])
    assert not np.allclose(runs[0][60:], runs[1][60:])

    # It still smooths: less frame-to-frame jitter than the detections.
    def jit(a):
        return np.linalg.norm(np.diff(a, 2, axis=0), axis=-1).mean()

    assert jit(runs[0]) < 0.5 * jit(xy)
    # The same filter as the offline forwards pass, at a steady frame rate and at uneven capture times alike.
    height = float(np.median(body_height(xy)))
    for times in (t, t_uneven):
        offline = transfer.smooth_poses(xy, 25.0, zero_phase=False, times=times)
        s = live.CausalSmoother(25.0)
        online = np.stack([s(p, ti, height) for p, ti in zip(xy, times, strict=True)])
        np.testing.assert_allclose(online, offline, atol=1e-5)


# --------------------------------------------------------------------------- online normalisation


def dancer(n, fps=25.0, seed=0):
    """A dance: arms swinging, a squat every 3 s (standing at the start), a little sway; (n, 13, 2)."""
    t = np.arange(n) / fps
    xy = motion(2 * np.pi * 0.8 * t)
    squat = (0.5 - 0.5 * np.cos(2 * np.pi * t / 3.0)).astype(np.float32)
    xy[:, :9, 1] += 0.08 * squat[:, None]  # the upper body goes down, the feet stay on the floor
    xy[:, :, 0] += (0.03 * np.sin(2 * np.pi * 0.2 * t)).astype(np.float32)[:, None]
    return xy + np.random.default_rng(seed).normal(0, 0.003, xy.shape).astype(np.float32)


def test_online_normaliser_settles_within_a_second_then_stays_stable():
    fps = 25.0
    target = dancer(500, seed=1)
    source = dancer(int(15 * fps), seed=2) * 0.6 + np.float32([0.25, 0.1])  # smaller, further off, elsewhere
    offline = transfer.PoseNormalizer.fit(source, target)
    online = live.OnlineNormalizer(target)
    assert online.normalizer() == transfer.PoseNormalizer.identity()  # nothing seen yet
    scales, anchors = [], []
    for i, xy in enumerate(source):
        norm = online.update(xy, i / fps)
        scales.append(norm.scale)
        anchors.append(norm.src_anchor)
    scales, anchors = np.array(scales), np.array(anchors)
    second = int(fps)  # one second of detections
    assert online.settled
    assert abs(scales[second] / offline.scale - 1) < 0.05
    # The ground line within 0.02 of the whole clip's (the source sways by +-0.018 every 5 s: a second sees part of it).
    np.testing.assert_allclose(anchors[second], offline.src_anchor, atol=0.02)
    # Then stable: the scale moves by under 2% over the next 14 s (squats included), the anchor by under 0.01.
    assert scales[second:].max() / scales[second:].min() - 1 < 0.02
    assert np.abs(anchors[second:] - anchors[second]).max() < 0.01
    # What the generator receives has the target's standing height and ground line.
    out = online.normalizer().apply(source)
    q = transfer.HEIGHT_QUANTILE
    assert np.quantile(body_height(out), q) == pytest.approx(np.quantile(body_height(target), q), rel=0.03)
    np.testing.assert_allclose(
        np.median(transfer.ground_anchor(out), axis=0), np.median(transfer.ground_anchor(target), axis=0), atol=0.01
    )


def test_online_normaliser_shrugs_off_a_mis_detection():
    fps = 25.0
    target = dancer(300, seed=1)
    online = live.OnlineNormalizer(target)
    source = dancer(100, seed=3) * 0.7
    for i, xy in enumerate(source[:50]):
        online.update(xy, i / fps)
    before = online.normalizer().scale
    giant = (source[50] - 0.3) * 2.0  # one frame where the detector saw someone twice as tall
    online.update(giant, 50 / fps)
    online.update(np.zeros((13, 2), np.float32), 51 / fps)  # and one where every joint sits at one point
    assert abs(online.normalizer().scale / before - 1) < 0.01


# --------------------------------------------------------------------------- gaps, panels


class ScriptedPose:
    """The pose tracker's stand-in: returns the poses it is given in turn (None = nobody in view)."""

    def __init__(self, poses):
        self.poses = list(poses)

    def __call__(self, image):
        return self.poses.pop(0)

    def close(self):
        pass


@pytest.fixture(scope="module")
def target():
    rng = np.random.default_rng(0)
    return FakeTarget(motion(rng.uniform(0, 2 * np.pi, 120)), fps=25.0)


def make_transfer(target, poses, **options):
    gen = GenNearest(target, size=32)
    return live.LiveTransfer(
        gen=gen, target_xy=target.xy, rest=live.rest_frame(target, 32), pose=ScriptedPose(poses), fps=25.0, **options
    )


def test_gaps_hold_the_last_pose_then_show_the_target_at_rest(target):
    person = POSE + np.float32([0.05, 0.0])
    poses = [person] * 5 + [None] * 20 + [person + np.float32([0.1, 0.0])]
    transfer = make_transfer(target, poses, hold_s=0.19)
    rest_xy, rest_image = live.rest_frame(target, 32)
    image = np.full((48, 64, 3), 90, np.uint8)
    states = []
    for i in range(len(poses)):
        panels, timing, state = transfer(image, i / 25.0)
        states.append(state)
        assert panels.shape == (PANEL, 3 * PANEL, 3) and set(timing) == {"pose", "generate", "draw"}
        if state == "rest":  # the generated panel is the target's rest frame
            right = panels[LABEL_H + 4 : -4, 2 * PANEL + 4 : -4].astype(int)
            assert np.abs(right.mean(axis=(0, 1)) - rest_image[4:-4, 4:-4].mean(axis=(0, 1))).max() < 3
    # Hold 0.19 s at 25 fps: the frames 0.04 ... 0.16 s after the last detection hold it, later ones rest.
    assert states == ["tracking"] * 5 + ["holding"] * 4 + ["rest"] * 16 + ["tracking"]
    assert transfer.states == {"tracking": 6, "holding": 4, "rest": 16}
    # The person came back elsewhere: the smoothing started afresh (its first output is the detection itself).
    np.testing.assert_allclose(transfer.last_xy, poses[-1], atol=1e-6)
    # The rest frame is the target's most ordinary pose: the one nearest its median pose.
    assert live.rest_index(motion(np.array([2.0, 0.0, 0.0, 0.0, 2.5]))) == 1  # standing, not the arms up
    np.testing.assert_array_equal(rest_xy, target.xy[live.rest_index(target.xy)])


def test_a_generator_with_memory_gets_one_pose_at_a_time_and_starts_afresh_after_a_gap(target):
    class Remembering:
        """A generator that conditions on the poses of its previous calls, as gen_type 8 does."""

        def __init__(self):
            self.history, self.resets = [], 0

        def generate(self, ske):
            self.history.append(ske.xy.copy())
            return np.full((32, 32, 3), 100, np.uint8)

        def reset(self):
            self.history, self.resets = [], self.resets + 1

    gen = Remembering()
    poses = [POSE] * 3 + [None] * 10 + [POSE] * 2
    transfer = live.LiveTransfer(
        gen=gen, target_xy=target.xy, rest=live.rest_frame(target, 32), pose=ScriptedPose(poses), fps=25.0, hold_s=0.1
    )
    states = [transfer(np.zeros((48, 64, 3), np.uint8), i / 25.0)[2] for i in range(len(poses))]
    assert states == ["tracking"] * 3 + ["holding"] * 2 + ["rest"] * 8 + ["tracking"] * 2
    assert gen.resets == 1 and len(gen.history) == 2  # reset once on entering the rest state; then the two new poses


# --------------------------------------------------------------------------- the loop


class ScriptedSlot:
    """LatestFrame's stand-in: hands out the given frames in order (their indices say which ones were dropped), then
    the end; on_take(k) runs before the k-th frame is handed out (a test hook: Ctrl-C at a known frame)."""

    def __init__(self, indices, *, clock, error=None, on_take=None, shape=(48, 64)):
        self.indices, self.clock, self.error, self.on_take = list(indices), clock, error, on_take
        self.shape, self.given = shape, 0
        self.arrived = max(self.indices) + 1

    def take(self, timeout=None):
        if not self.indices:
            return None
        if self.on_take is not None:
            self.on_take(self.given)
        i = self.indices.pop(0)
        self.given += 1
        return capture.Frame(np.full((*self.shape, 3), 20 * i, np.uint8), i, self.clock.now())

    def discard(self):
        pass

    def counts(self):
        return self.arrived, self.arrived - self.given, self.given


class ScriptedDisplay:
    """Display's stand-in with a window: keys[k] is the key answer to the k-th call (None: no key)."""

    def __init__(self, keys=()):
        self.enabled, self.keys, self.frames = True, list(keys), []

    def show(self, frame, wait_ms=1):
        if frame is not None:
            self.frames.append(frame)
        return self.keys.pop(0) if self.keys else None


def left_panel_value(video):
    """The source panel's grey level per recorded frame (the scripted frames are flat grey)."""
    return video[:, 60:120, 180:230, 0].astype(int).mean(axis=(1, 2))


def test_headless_loop_records_what_was_shown_in_real_time(target, tmp_path, monkeypatch):
    monkeypatch.setattr(cv2, "imshow", lambda *a: pytest.fail("headless must not open a window"))
    clock = FakeClock(tick=0.004)
    indices = [0, 1, 3, 4, 7]  # 2, 5 and 6 were dropped by the reader
    slot = ScriptedSlot(indices, clock=clock)
    transfer = make_transfer(target, [POSE] * len(indices))
    recorder = live.Recorder(tmp_path / "live.mp4", 25.0)
    stats = live.run_live(slot=slot, transfer=transfer, display=live.Display(False), recorder=recorder, clock=clock)
    assert stats["frames_in"] == 8 and stats["shown"] == 5 and stats["dropped"] == 3 and stats["error"] is None
    assert all(lat > 0 for lat in stats["latencies"])
    video, fps = read_video(tmp_path / "live.mp4")
    # One recorded frame per source time slot: a frame stays until the next one shown replaces it.
    assert fps == pytest.approx(25.0) and len(video) == 8
    np.testing.assert_allclose(left_panel_value(video), [20 * i for i in (0, 1, 1, 3, 4, 4, 4, 7)], atol=6)
    line = live.summary_line(**{k: stats[k] for k in ("frames_in", "shown", "dropped", "fps", "latencies")})
    assert LAST_LINE.fullmatch(line) and line.startswith("live: 8 frames in, 5 shown, 3 dropped, ")


def test_keys_pause_and_quit(target, tmp_path):
    clock = FakeClock(tick=0.004)
    slot = ScriptedSlot(range(10), clock=clock)
    # Frame 1 answers space (pause), the paused window then answers space again (resume); frame 3 answers q.
    display = ScriptedDisplay([None, "pause", "pause", None, "quit"])
    recorder = live.Recorder(tmp_path / "live.mp4", 25.0)
    stats = live.run_live(
        slot=slot, transfer=make_transfer(target, [POSE] * 10), display=display, recorder=recorder, clock=clock
    )
    assert stats["shown"] == 4 and len(display.frames) == 4  # q after the 4th frame
    video, _ = read_video(tmp_path / "live.mp4")
    assert len(video) == 4  # the pause cut the recording: frames 0, 1 | 2, 3, no filler for the paused time


def test_ctrl_c_stops_after_the_frame_and_finishes_the_recording(target, tmp_path):
    clock = FakeClock(tick=0.004)

    def ctrl_c(k):
        if k == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs now, in this (the main) thread

    slot = ScriptedSlot(range(10), clock=clock, on_take=ctrl_c)
    recorder = live.Recorder(tmp_path / "live.mp4", 25.0)
    previous = signal.getsignal(signal.SIGINT)
    stats = live.run_live(
        slot=slot, transfer=make_transfer(target, [POSE] * 10), display=live.Display(False), recorder=recorder,
        clock=clock,
    )  # fmt: skip
    assert signal.getsignal(signal.SIGINT) is previous  # the handler is put back
    assert stats["shown"] == 4 and stats["frames_in"] == 10 and stats["error"] is None
    assert len(read_video(tmp_path / "live.mp4")[0]) == 4


def test_final_line_format():
    line = live.summary_line(frames_in=400, shown=380, dropped=20, fps=23.7512, latencies=[0.020, 0.030, 0.040, 0.1])
    assert line == "live: 400 frames in, 380 shown, 20 dropped, 23.8 fps shown, latency median 35 ms, p95 91 ms"
    nothing = live.summary_line(frames_in=3, shown=0, dropped=3, fps=0.0, latencies=[])
    assert nothing == "live: 3 frames in, 0 shown, 3 dropped, 0.0 fps shown, latency median 0 ms, p95 0 ms"
    assert LAST_LINE.fullmatch(line) and LAST_LINE.fullmatch(nothing)


# --------------------------------------------------------------------------- window or headless


def test_headless_without_a_display(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    assert not live.display_available()
    monkeypatch.setenv("DISPLAY", ":987")  # an X server that is not there
    assert not live.display_available()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert not live.display_available()
    (tmp_path / "wayland-0").touch()
    assert live.display_available()

    # A display, but an OpenCV that cannot open windows: a warning, then headless.
    def no_gui(*a):
        raise cv2.error("The function is not implemented. Rebuild the library with GTK+ or Qt support")

    monkeypatch.setattr(cv2, "namedWindow", no_gui)
    display = live.Display(True)
    assert not display.enabled and display.show(np.zeros((8, 8, 3), np.uint8)) is None
    err = capsys.readouterr().err
    assert err.startswith("warning: no window can be opened") and "headless" in err


# --------------------------------------------------------------------------- bad input


def one_error_line(capsys, argv):
    """Run Live's CLI in-process: (exit code, the single stderr line, stdout)."""
    with pytest.raises(SystemExit) as e:
        run_cli(DanceDemo.main, ["--live", *argv])
    out, err = capsys.readouterr()
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    return e.value.code, lines[0], out


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--source", "99"], "error: camera 99 did not open"),
        ([], "did not answer"),  # --source set below: a URL nobody answers
        (["--source", "/no/such/clip.mp4"], "error: video not found"),
        (["--out", "live.avi"], "--out must name an .mp4"),
        (["--max_frames", "-1"], "--max_frames must be >= 0"),
        (["--hold", "-2"], "--hold must be >= 0"),
        (["--gen_type", "12"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line(argv, message, capsys):
    if not argv:
        argv = ["--source", f"http://127.0.0.1:{closed_port()}/cam.mjpg"]
    code, line, _ = one_error_line(capsys, argv)
    assert code == 2 and line.startswith("error:") and message in line


def test_window_on_without_a_display_is_one_line(capsys, monkeypatch):
    monkeypatch.setattr(live, "display_available", lambda: False)
    code, line, _ = one_error_line(capsys, ["--window", "on"])
    assert code == 2 and "needs a display" in line


def test_virtual_cam_without_pyvirtualcam_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # import fails as if not installed
    with pytest.raises(UserError, match="pip install pyvirtualcam"):
        live.open_virtual_cam(768, 256, 25.0)


def test_a_camera_that_stops_keeps_the_recording_so_far(short_clip, tmp_path, capsys, monkeypatch):
    from deepdance.cache import VideoSkeleton

    VideoSkeleton(short_clip, verbose=False)  # the target's cache, before cv2.VideoCapture is replaced
    real = cv2.VideoCapture
    monkeypatch.setattr(cv2, "VideoCapture", lambda what, *a: FakeCapture(12) if what == 0 else real(what, *a))
    monkeypatch.setattr(live, "PoseTracker", lambda: ScriptedPose([POSE] * 20))
    out = tmp_path / "live.mp4"
    code, line, stdout = one_error_line(
        capsys, ["--source", "0", "--video_path", str(short_clip), "--out", str(out), "--window", "off"]
    )
    # The start-up check read one frame, the reader the other 11; then the camera stopped.
    assert code == 2
    assert line == f"error: camera 0 stopped sending frames after 11 frames; the recording so far is in {out}"
    m = LAST_LINE.fullmatch(stdout.strip().splitlines()[-1])
    assert m and int(m[1]) == 11 and int(m[2]) + int(m[3]) == 11
    video, _ = read_video(out)  # playable, every source slot from the first frame shown on
    assert 1 <= len(video) <= 11 and video.shape[1:] == (PANEL, 3 * PANEL, 3)


# --------------------------------------------------------------------------- the real thing (subprocess, real time)


@pytest.mark.slow
def test_live_from_a_file_headless_end_to_end(short_clip, tmp_path, monkeypatch):
    from deepdance.video import iter_frames

    source = write_video(tmp_path / "source.mp4", [f for _, f in iter_frames(short_clip, 0, 30)], fps=25.0)
    out = tmp_path / "live.mp4"
    monkeypatch.delenv("DISPLAY", raising=False)  # --window auto: headless here
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    r = run_script("DanceDemo.py", "--live", "--source", source, "--video_path", short_clip, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stdout.strip().splitlines()
    assert any(line.startswith("live from") and "headless" in line for line in lines)
    m = LAST_LINE.fullmatch(lines[-1])
    assert m, lines[-1]
    frames_in, shown, dropped = int(m[1]), int(m[2]), int(m[3])
    assert frames_in == 30 and shown + dropped == 30 and shown >= 1
    video, fps = read_video(out)
    assert fps == pytest.approx(25.0) and 1 <= len(video) <= 30


@pytest.mark.slow
def test_live_with_gen_type_1_never_imports_torch():
    import subprocess

    code = "import sys, deepdance.live, deepdance.nearest\nassert 'torch' not in sys.modules, 'torch imported'\n"
    r = subprocess.run([sys.executable, "-c", code], cwd=files.ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
