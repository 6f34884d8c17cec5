"""DanceDemo: pose normalisation, smoothing, missing poses, the gen_type table, the video, bad input."""

import os
from types import SimpleNamespace

from deepdance import files, gentypes, mannequin, transfer
from deepdance.cli import UserError, run_cli
from deepdance.nearest import GenNearest
from deepdance.skeleton import L_WRIST, body_height

import cv2
import numpy as np
import pytest

import DanceDemo
from conftest import POSE, FakeTarget, motion, read_video, run_script, write_video


def target_clip(n=300, seed=0):
    """A target's poses: arm swings, walking a little left/right and towards the camera, some crouching."""
    rng = np.random.default_rng(seed)
    xy = motion(rng.uniform(0, 2 * np.pi, n))
    xy[:, 9:, 1] -= rng.uniform(0, 0.05, (n, 1))  # knees/ankles up a bit: crouched frames read shorter
    xy += np.stack([rng.normal(0, 0.05, n), rng.normal(0, 0.01, n)], axis=1)[:, None, :].astype(np.float32)
    return xy


def error_lines(stderr):
    """The user-facing error lines of a run (progress bars aside); never a traceback."""
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.replace("\r", "\n").splitlines() if line.startswith("error:")]


# --------------------------------------------------------------------------- normalisation


def test_scaled_shifted_copy_maps_back_onto_the_target():
    target = target_clip()
    source = (target - 0.5) * 0.55 + np.float32([0.62, 0.41])  # a smaller person, off-centre
    norm = transfer.PoseNormalizer.fit(source, target)
    assert norm.scale == pytest.approx(1 / 0.55, rel=1e-4)
    np.testing.assert_allclose(norm.apply(source), target, atol=1e-5)


def test_normalised_source_takes_the_targets_distribution_without_stretching():
    target = target_clip(seed=1)
    rng = np.random.default_rng(2)
    # Another performance of the same person (a shuffled subset), filmed by a camera further away and to the side.
    other = target_clip(200, seed=3)[rng.permutation(200)]
    source = other * 0.7 + np.float32([0.2, 0.05])
    out = transfer.PoseNormalizer.fit(source, target).apply(source)
    q = transfer.HEIGHT_QUANTILE
    assert np.quantile(body_height(out), q) == pytest.approx(np.quantile(body_height(target), q), rel=0.03)
    np.testing.assert_allclose(
        np.median(transfer.ground_anchor(out), axis=0), np.median(transfer.ground_anchor(target), axis=0), atol=0.01
    )

    # One uniform scale: every limb grows by the same factor, so proportions are the source's own.
    def limbs(xy):
        return np.linalg.norm(xy[:, [1, 3, 7, 9]] - xy[:, [3, 5, 9, 11]], axis=-1)

    ratio = limbs(out) / limbs(source)
    np.testing.assert_allclose(ratio, ratio[0, 0], rtol=1e-4)


def test_normaliser_ignores_missing_rows_and_rejects_empty_input():
    target = target_clip()
    source = target.copy()
    source[::3] = np.nan
    norm = transfer.PoseNormalizer.fit(source, target)
    assert norm.scale == pytest.approx(1.0, abs=0.02)
    with pytest.raises(UserError):
        transfer.PoseNormalizer.fit(np.full((5, 13, 2), np.nan, np.float32), target)


# --------------------------------------------------------------------------- smoothing


def noisy_wave(n=300, fps=30.0, noise=0.004, seed=0):
    """Truth: the left wrist waving at 0.5 Hz; observations: the same with detector-like jitter."""
    t = np.arange(n) / fps
    truth = np.repeat(POSE[None], n, axis=0)
    truth[:, L_WRIST, 1] += 0.08 * np.sin(2 * np.pi * 0.5 * t)
    noisy = truth + np.random.default_rng(seed).normal(0, noise, truth.shape).astype(np.float32)
    return truth, noisy, fps


def test_smoothing_removes_jitter_without_lag():
    truth, noisy, fps = noisy_wave()
    smooth = transfer.smooth_poses(noisy, fps)

    def err(xy):
        return np.linalg.norm(xy - truth, axis=-1).mean()

    def jit(xy):
        return np.linalg.norm(np.diff(xy, 2, axis=0), axis=-1).mean()

    assert err(smooth) < 0.6 * err(noisy)
    assert jit(smooth) < 0.3 * jit(noisy)
    # Zero phase: the smoothed wave lines up with the truth (best shift 0 frames), the causal filter lags.
    y, true_y = smooth[:, L_WRIST, 1], truth[:, L_WRIST, 1]

    def best_shift(sig):
        return min(range(0, 8), key=lambda s: np.abs(sig[30 + s : 270 + s] - true_y[30:270]).mean())

    assert best_shift(y) == 0
    assert best_shift(transfer.smooth_poses(noisy, fps, min_cutoff=0.5, beta=0.0, zero_phase=False)[:, L_WRIST, 1]) > 0


def test_one_euro_filter_keeps_still_poses_and_follows_fast_moves():
    f = transfer.OneEuroFilter(30.0, scale=0.6)
    for _ in range(10):
        out = f(POSE)
    np.testing.assert_allclose(out, POSE, atol=1e-6)
    # A sudden jump of the whole body: beta raises the cutoff with speed, so it is followed sooner.
    step = POSE + np.float32([0.1, 0.0])

    def frames_to_90(beta):
        g = transfer.OneEuroFilter(30.0, min_cutoff=1.0, beta=beta, scale=0.6)
        g(POSE)
        for i in range(1, 60):
            if g(step)[0, 0] - POSE[0, 0] >= 0.09:
                return i
        return 60

    assert frames_to_90(8.0) < frames_to_90(0.0)
    with pytest.raises(UserError):
        transfer.OneEuroFilter(0.0)


# --------------------------------------------------------------------------- missing poses


def test_missing_frames_are_interpolated_or_held():
    n, fps = 40, 10.0
    xy = np.stack([POSE + np.float32([0.01 * i, 0.0]) for i in range(n)])
    valid = np.ones(n, bool)
    valid[:3] = False  # before the first detection
    valid[10:13] = False  # short gap (0.3 s): interpolated
    valid[20:30] = False  # long gap (1 s): held
    valid[-2:] = False  # after the last detection
    seen = np.where(valid[:, None, None], xy, np.nan)
    out = transfer.fill_missing(seen, valid, fps, max_interp_s=0.5)
    assert np.isfinite(out).all() and out.shape == xy.shape
    np.testing.assert_allclose(out[:3], np.repeat(xy[3:4], 3, axis=0))
    np.testing.assert_allclose(out[10:13], xy[10:13], atol=1e-6)  # linear motion: interpolation is exact
    np.testing.assert_allclose(out[20:30], np.repeat(xy[19:20], 10, axis=0))
    np.testing.assert_allclose(out[-2:], np.repeat(xy[-3:-2], 2, axis=0))
    with pytest.raises(UserError, match="no person"):
        transfer.fill_missing(np.full((5, 13, 2), np.nan), np.zeros(5, bool))


# --------------------------------------------------------------------------- variable frame rates


def vfr_clip(fps=30.0):
    """A phone-like clip said to be at fps: 20 frames at fps, a burst of 40 at 240 frames/s, a slow stretch of 6 at
    2.5 frames/s, 20 at fps again. Poses drift right at 0.1 frame widths/s: linear in time, not in frame number."""
    times = np.concatenate(
        [np.arange(20) / fps, 0.7 + np.arange(40) / 240, 1.0 + 0.4 * np.arange(6), 3.1 + np.arange(20) / fps]
    )
    xy = POSE[None] + (0.1 * times)[:, None, None].astype(np.float32) * np.float32([1.0, 0.0])
    return xy.astype(np.float32), times, fps


def test_an_even_rate_is_filled_and_smoothed_exactly_as_without_times():
    truth, noisy, fps = noisy_wave(n=200, fps=29.97)
    valid = np.random.default_rng(1).uniform(size=200) > 0.15
    valid[100:110] = False  # a 0.33 s gap: interpolated
    valid[150:170] = False  # a 0.67 s gap: held
    seen = np.where(valid[:, None, None], noisy, np.nan)
    even = np.arange(200) / fps
    rounded = np.round(even, 3)  # a container's timestamps in ms: steps of 33 and 34 ms
    assert transfer.uneven_times(even, fps) is None and transfer.uneven_times(rounded, fps) is None
    base = transfer.fill_missing(seen, valid, fps)
    for times in (even, rounded):
        assert transfer.fill_missing(seen, valid, fps, times=times).tobytes() == base.tobytes()
        for zero_phase in (True, False):
            expected = transfer.smooth_poses(base, fps, zero_phase=zero_phase).tobytes()
            assert transfer.smooth_poses(base, fps, zero_phase=zero_phase, times=times).tobytes() == expected
    # A 2 ms step is no rounding: those times are followed.
    assert transfer.uneven_times(np.r_[even[:50], even[50:] + 0.002], fps) is not None


def test_gaps_of_a_variable_frame_rate_are_measured_and_filled_in_time():
    xy, times, fps = vfr_clip()
    valid = np.ones(len(xy), bool)
    valid[25:55] = False  # 30 frames of the burst, 0.13 s: interpolated (by count, 1 s at 30 fps: held)
    valid[58:60] = False  # the burst's last 2 frames, before a 0.14 s pause: interpolated in time
    valid[61:63] = False  # 2 frames of the slow stretch, 1.2 s between detections: held (by count, 0.07 s)
    seen = np.where(valid[:, None, None], xy, np.nan)
    out = transfer.fill_missing(seen, valid, fps, times=times)
    np.testing.assert_allclose(out[25:55], xy[25:55], atol=1e-6)  # linear in time: interpolation is exact
    np.testing.assert_allclose(out[58:60], xy[58:60], atol=1e-6)  # weights by time, not by frame number
    np.testing.assert_allclose(out[61:63], np.repeat(xy[60:61], 2, axis=0))
    counted = transfer.fill_missing(seen, valid, fps)  # what counting frames at the declared rate made of it
    assert np.abs(counted[25:55] - xy[25:55]).max() > 1e-3 and np.abs(counted[58:60] - xy[58:60]).max() > 1e-3
    assert np.abs(counted[61:63] - xy[60]).max() > 1e-3


def test_smoothing_steps_by_the_frames_own_times():
    truth, noisy, _ = noisy_wave(n=120, fps=15.0)
    # A 15 fps clip said to be 30 fps is smoothed as the 15 fps clip it is, by both passes.
    for zero_phase in (True, False):
        np.testing.assert_allclose(
            transfer.smooth_poses(noisy, 30.0, zero_phase=zero_phase, times=np.arange(120) / 15.0),
            transfer.smooth_poses(noisy, 15.0, zero_phase=zero_phase),
            atol=1e-6,
        )
    # The backward pass is the causal filter on the clip reversed in time: the same steps, in reverse order (beta 0:
    # the speed unit, the clip's median body height, does not matter).
    xy, times, fps = vfr_clip()
    xy = xy + np.random.default_rng(0).normal(0, 0.004, xy.shape).astype(np.float32)
    opts = {"beta": 0.0, "min_cutoff": 1.0}
    forward = transfer.smooth_poses(xy, fps, zero_phase=False, times=times, **opts)
    backward = transfer.smooth_poses(forward[::-1], fps, zero_phase=False, times=times[-1] - times[::-1], **opts)
    np.testing.assert_allclose(transfer.smooth_poses(xy, fps, times=times, **opts), backward[::-1], atol=1e-6)
    assert np.abs(transfer.smooth_poses(xy, fps, **opts) - backward[::-1]).max() > 1e-3  # frame counts differ
    # A burst at 240 frames/s is smoothed per second, not per frame: its jitter goes as at an even rate.
    t = mannequin.vfr_times(((30, 30), (240, 240), (30, 30)))
    truth = np.repeat(POSE[None], len(t), axis=0)
    truth[:, L_WRIST, 1] += 0.08 * np.sin(2 * np.pi * 0.5 * t)
    noisy = truth + np.random.default_rng(3).normal(0, 0.004, truth.shape).astype(np.float32)
    burst = slice(40, 260)

    def err(a):
        return np.linalg.norm(a[burst] - truth[burst], axis=-1).mean()

    assert err(transfer.smooth_poses(noisy, 30.0, times=t)) < 0.6 * err(transfer.smooth_poses(noisy, 30.0))


# --------------------------------------------------------------------------- generators


def test_gen_type_table_and_training_commands(monkeypatch):
    assert sorted(gentypes.GEN_TYPES) == list(range(1, 10))
    assert gentypes.train_command(1) is None
    assert (
        gentypes.train_command(3, files.ROOT / "data" / "my clip.mp4")
        == "python GenVanillaNN.py 'data/my clip.mp4' false 2"
    )
    assert gentypes.train_command(6, files.ROOT / "x.mp4") == "python GenGAN.py x.mp4 --mode wgan-gp --input vector"
    assert gentypes.train_command(4, files.ROOT / "x.mp4", size=128).endswith("--input image --size 128")
    assert isinstance(gentypes.load_generator(FakeTarget(target_clip(50)), 1), GenNearest)
    # Each trainer's settings name exactly one gen_type.
    assert gentypes.gen_type_of("GenGAN", mode="wgan-gp", input="vector", temporal=False) == 6
    assert gentypes.gen_type_of("GenGAN", mode="wgan-gp", input="image", temporal=True) == 8
    assert gentypes.gen_type_of("GenVanillaNN", variant=1) == 2
    # A generator whose code is not there yet: one line naming the command that will train it.
    monkeypatch.setitem(
        gentypes.GEN_TYPES,
        5,
        gentypes.GenType("test", "GenNotWrittenYet", "python GenNotWrittenYet.py {video} --x", "x", {}),
    )
    with pytest.raises(UserError, match=r"python GenNotWrittenYet.py x.mp4 --x"):
        gentypes.load_generator(SimpleNamespace(video_path=files.ROOT / "x.mp4"), 5)


@pytest.mark.slow
def test_gen_type_1_never_imports_torch(tmp_path):
    """DanceDemo with nearest neighbour runs without torch: it must not even be imported (start-up time)."""
    code = "import sys, DanceDemo, GenNearest, Evaluate\nassert 'torch' not in sys.modules, 'torch imported'\n"
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", code], cwd=files.ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# --------------------------------------------------------------------------- the video


def synthetic_source(n=30, fps=10.0, missing=(5, 6, 20)):
    """A VideoSkeleton-like source: poses of a smaller, shifted person, gray frames, some without a person."""
    xy = motion(np.linspace(0, 2 * np.pi, n)) * 0.6 + np.float32([0.3, 0.3])
    ske = np.concatenate([xy, np.ones((n, 13, 1), np.float32)], axis=-1)
    ske[list(missing)] = np.nan
    frames = np.full((n, 64, 64, 3), 90, np.uint8)
    times = np.arange(n) / fps  # a constant frame rate
    return SimpleNamespace(ske_all=ske, valid=np.isfinite(ske[:, 0, 0]), frames_all=frames, fps=fps, times=times)


def test_transfer_writes_every_frame_with_three_panels(tmp_path):
    target = FakeTarget(target_clip(120))
    source = synthetic_source()
    gen = GenNearest(target, size=64)
    calls = []
    out = tmp_path / "demo.mp4"
    stats = transfer.transfer(source, target.xy, gen, out, progress=lambda d, n: calls.append((d, n)), verbose=False)
    assert stats["frames"] == 30 and stats["missing"] == 3
    assert calls[-1] == (30, 30)
    video, fps = read_video(out)
    assert video.shape == (30, transfer.PANEL, 3 * transfer.PANEL, 3) and fps == pytest.approx(10.0)
    # Every generated panel is a target frame (never a blank or red one), missing-pose frames included.
    right = video[:, transfer.LABEL_H + 4 :, 2 * transfer.PANEL + 4 : -4]
    images = target.frames(64)
    _, norm_xy, _ = transfer.prepare_poses(source.ske_all, source.valid, source.fps, target.xy)
    expected = images[gen.match(norm_xy)]
    for i in (0, 5, 6, 20, 29):
        assert np.abs(right[i].astype(int).mean(axis=(0, 1)) - expected[i, 0, 0].astype(int)).max() < 6
    # The normalised panel draws the skeleton; the source panel keeps its frame.
    assert video[:, :, transfer.PANEL : 2 * transfer.PANEL].max() > 200


def test_placement_shows_each_frame_at_its_own_time():
    assert transfer.placement(np.arange(50) * 0.04, 25.0).tolist() == [1] * 50  # constant rate: unchanged
    assert transfer.placement(np.arange(10) * 0.1 + 1e-4 * np.sin(np.arange(10)), 10.0).tolist() == [1] * 10
    assert transfer.placement([0.0], 25.0).tolist() == [1]
    # The case: a phone at 15 frames/s in a file that says 18; frame 100 (6.67 s) must land at 6.67 s.
    times = np.arange(120) / 15.0
    shown = np.repeat(np.arange(120), transfer.placement(times, 18.0))  # the source frame of each output frame
    assert len(shown) == round(times[-1] * 18) + 1
    assert np.flatnonzero(shown == 100)[0] / 18.0 == pytest.approx(100 / 15.0, abs=0.5 / 18)
    # Slowing down, then a burst, then steady: every output frame shows the source frame nearest its time.
    times = mannequin.vfr_times(((20, 15), (20, 60), (20, 25)))
    repeats = transfer.placement(times, 25.0)
    shown = np.repeat(np.arange(60), repeats)
    assert repeats.max() == 2 and (repeats == 0).sum() > 5  # repeated through the slow part, dropped in the burst
    grid = np.arange(len(shown)) / 25.0
    assert np.allclose(np.abs(times[shown] - grid), np.abs(times[None] - grid[:, None]).min(axis=1))


def test_transfer_places_a_variable_frame_rate_source_by_its_times(tmp_path, monkeypatch):
    prepared = []  # the frame times transfer fills in and smooths the source's poses by
    prepare = transfer.prepare_poses
    monkeypatch.setattr(transfer, "prepare_poses", lambda *a, **kw: prepared.append(kw["times"]) or prepare(*a, **kw))
    target = FakeTarget(target_clip(120))
    source = synthetic_source(n=40, fps=10.0, missing=())
    source.times = mannequin.vfr_times(((10, 5), (20, 20), (10, 10)))  # 5, then 20, then 10 frames/s, said 10
    digits = np.arange(40) % 7, np.arange(40) // 7  # each frame's number, written as two grey levels 36 apart
    source.frames_all = np.zeros((40, 64, 64, 3), np.uint8)
    source.frames_all[:, :32] = (36 * digits[0]).astype(np.uint8)[:, None, None, None]
    source.frames_all[:, 32:] = (36 * digits[1]).astype(np.uint8)[:, None, None, None]
    out = tmp_path / "vfr.mp4"
    stats = transfer.transfer(source, target.xy, GenNearest(target, size=64), out, verbose=False)
    expected = np.repeat(np.arange(40), transfer.placement(source.times, 10.0))
    assert stats["frames"] == 40 and stats["written"] == len(expected) == round(source.times[-1] * 10) + 1
    video, fps = read_video(out)
    assert len(video) == len(expected) and fps == pytest.approx(10.0)
    # The source panel's left edge, away from the caption and the skeleton: the source frame's number.
    ones, sevens = (
        np.round(video[:, rows, 4:20].mean(axis=(1, 2, 3)) / 36) for rows in (slice(30, 60), slice(-28, -4))
    )
    np.testing.assert_array_equal((ones + 7 * sevens).astype(int), expected)
    assert expected[0] == expected[1] == 0 and 10 + 19 not in expected  # held at 5 frames/s, dropped at 20
    assert len(prepared) == 1 and prepared[0] is source.times


def test_failed_transfer_leaves_nothing_behind(tmp_path):
    class Broken:
        size = 64

        def __init__(self):
            self.calls = 0

        def generate_clip(self, xy, batch):
            for i in range(0, len(xy), batch):
                self.calls += 1
                if self.calls > 1:
                    raise RuntimeError("generator crashed")
                yield np.zeros((len(xy[i : i + batch]), 64, 64, 3), np.uint8)

    out = tmp_path / "demo.mp4"
    with pytest.raises(RuntimeError):
        transfer.transfer(synthetic_source(200), target_clip(50), Broken(), out, batch=16, verbose=False)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def short_source(tmp_path_factory, sample_source):
    """The first 40 frames of the sample source as a small video."""
    from deepdance.video import iter_frames

    frames = [f for _, f in iter_frames(sample_source, 0, 40)]
    return write_video(tmp_path_factory.mktemp("demo") / "source.mp4", frames)


@pytest.mark.slow
def test_demo_end_to_end(short_clip, short_source, tmp_path):
    out = tmp_path / "out" / "demo.mp4"
    r = run_script("DanceDemo.py", "--video_path", short_clip, "--source", short_source, "--out", out, "--stride", 2)
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith(f"wrote {out}: 20 frames") and "frames/s" in last
    video, fps = read_video(out)
    assert video.shape == (20, transfer.PANEL, 3 * transfer.PANEL, 3) and fps == pytest.approx(12.5, abs=0.01)
    # Coherent mode, from the cached source poses this time.
    stills = tmp_path / "stills.png"
    args = ("--video_path", short_clip, "--source", short_source, "--out", out, "--stride", 2, "--coherent",
            "--stills", stills)  # fmt: skip
    r = run_script("DanceDemo.py", *args)
    assert r.returncode == 0, r.stderr
    video = read_video(out)[0]
    assert "detected" not in r.stdout and video.shape[0] == 20
    # --stills: frames 2, 10 and 17 of the output, one above the other.
    picture = cv2.imread(str(stills))
    assert picture.shape == (3 * transfer.PANEL, 3 * transfer.PANEL, 3)
    assert np.abs(picture[: transfer.PANEL].astype(int) - video[2]).mean() < 3


@pytest.mark.slow
def test_demo_keeps_a_variable_frame_rate_sources_timing(short_clip, tmp_path):
    """A phone's clip (15, then 60, then 25 frames/s): the output runs at one rate and lasts as long as the source."""
    from deepdance.cache import VideoSkeleton

    frames, _ = mannequin.render_shot(mannequin.Shot(frames=60, people=(mannequin.Person("source"),)))
    source = mannequin.write_clip(tmp_path / "vfr.mp4", frames, rates=((20, 15), (20, 60), (20, 25)))
    out = tmp_path / "demo.mp4"
    r = run_script("DanceDemo.py", "--video_path", short_clip, "--source", source, "--out", out)
    assert r.returncode == 0, r.stderr
    vs = VideoSkeleton(source, verbose=False)  # the cache the run made
    written = int(transfer.placement(vs.times, vs.fps).sum())
    assert vs.meta["vfr"] and written != 60
    assert f"({written} output frames at {vs.fps:g} fps: each source frame at its own time)" in r.stdout
    video, fps = read_video(out)
    assert len(video) == written and fps == pytest.approx(vs.fps, abs=0.01)
    assert (len(video) - 1) / fps == pytest.approx(vs.times[-1], abs=0.5 / fps)  # as long as the source


@pytest.mark.slow
def test_trained_type_without_checkpoint_names_its_training_command(short_clip, tmp_path):
    out = tmp_path / "demo.mp4"
    for gen_type, command in ((2, "python GenVanillaNN.py"), (7, "python GenGAN.py")):
        r = run_script("DanceDemo.py", "--gen_type", gen_type, "--video_path", short_clip, "--out", out)
        assert r.returncode != 0
        err = error_lines(r.stderr)
        assert len(err) == 1 and command in err[0], r.stderr
    assert not out.exists()


@pytest.mark.slow
def test_source_without_a_person_fails_cleanly(short_clip, tmp_path):
    empty = write_video(tmp_path / "empty.mp4", [np.full((120, 160, 3), 128, np.uint8)] * 12)
    out = tmp_path / "demo.mp4"
    r = run_script("DanceDemo.py", "--video_path", short_clip, "--source", empty, "--out", out)
    err = error_lines(r.stderr)
    assert r.returncode != 0 and len(err) == 1 and "no person" in err[0]
    assert not out.exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--video_path", "/no/such/target.mp4"], "video not found"),
        (["--source", "/no/such/source.mp4"], "video not found"),
        (["--out", "out/demo.avi"], "--out must name an .mp4"),
        (["--stride", "0"], "--stride must be >= 1"),
        (["--gen_type", "3", "--coherent"], "--coherent applies to gen_type 1 only"),
        (["--show"], "--show needs a display"),
    ],
)
def test_cli_bad_input_is_one_line(argv, message, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(SystemExit) as e:
        run_cli(DanceDemo.main, argv)
    assert e.value.code != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_cli_refuses_non_videos_and_overwriting_inputs(tmp_path, capsys):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    for argv, message in (
        (["--video_path", str(text), "--out", str(tmp_path / "o.mp4")], "cannot read a frame"),
        (["--video_path", str(text), "--out", str(text)], "would overwrite an input"),
        (["--gen_type", "12"], "invalid choice"),
    ):
        with pytest.raises(SystemExit) as e:
            run_cli(DanceDemo.main, argv)
        assert e.value.code != 0
        assert message in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["notes.mp4"]


def test_coverage_warning_names_the_frames_and_what_the_target_never_did():
    """A source raising both arms above the head onto a target that never did: warned before rendering."""
    target = motion(np.linspace(0, 2 * np.pi, 200))  # arm swings below the shoulders
    src = np.repeat(POSE[None], 40, axis=0).copy()
    up = slice(10, 30)  # frames 10-29: both wrists and elbows above the head
    src[up, 3:5, 1] = 0.12
    src[up, 5:7, 1] = 0.02
    source = SimpleNamespace(ske_all=src)
    lines = transfer.coverage_warnings(source, target)
    assert lines and "10-29" in lines[0] and any("both arms" in line for line in lines), lines
    assert transfer.coverage_warnings(SimpleNamespace(ske_all=target[:40]), target) == []  # its own poses
