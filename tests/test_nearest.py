"""GenNearest: exact retrieval, the Viterbi path, the coherent mode's jitter, the contract, bad input."""

import itertools

from deepdance import metrics, nearest
from deepdance.cli import UserError, run_cli
from deepdance.nearest import viterbi
from deepdance.skeleton import Skeleton

import numpy as np
import pytest

import GenNearest
from conftest import FakeTarget, motion


def frame_ids(images):
    """Inverse of FakeTarget's colouring."""
    return images[:, 0, 0, 0].astype(int) + 256 * images[:, 0, 0, 1].astype(int)


def two_takes(n=100, noise=0.004, seed=0):
    """A target that performed the same arm swing twice (takes A then B), with independent jitter."""
    rng = np.random.default_rng(seed)
    phase = np.linspace(0, 2 * np.pi, n, endpoint=False)
    takes = [motion(phase) + rng.normal(0, noise, (n, 13, 2)).astype(np.float32) for _ in range(2)]
    return FakeTarget(np.concatenate(takes)), phase


def test_plain_mode_is_the_exact_nearest_neighbour():
    rng = np.random.default_rng(1)
    target = FakeTarget(motion(rng.uniform(0, 2 * np.pi, 300)))
    gen = nearest.GenNearest(target, size=16)
    query = motion(rng.uniform(0, 2 * np.pi, 50)) + rng.normal(0, 0.01, (50, 13, 2)).astype(np.float32)
    brute = np.linalg.norm(query.reshape(50, 1, 26) - target.xy.reshape(1, 300, 26), axis=-1).argmin(axis=1)
    out = gen.generate_batch(query)
    assert out.shape == (50, 16, 16, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(frame_ids(out), brute)
    # A target pose asked for itself comes back as its own frame; generate() agrees with generate_batch().
    np.testing.assert_array_equal(frame_ids(gen.generate_batch(target.xy[[7, 123, 250]])), [7, 123, 250])
    one = gen.generate(Skeleton(target.xy[42]))
    assert one.shape == (16, 16, 3) and frame_ids(one[None])[0] == 42


def path_cost(path, unary, times, weight, cap):
    """What viterbi() minimises, spelled out for one path."""
    cost = sum(unary[t, j] for t, j in enumerate(path))
    for t in range(len(path) - 1):
        cost += weight * min(abs(times[t + 1, path[t + 1]] - times[t, path[t]]), cap)
    return cost


def test_viterbi_finds_the_cheapest_path():
    rng = np.random.default_rng(2)
    for _ in range(5):
        unary, times = rng.uniform(0, 3, (5, 3)), rng.uniform(0, 4, (5, 3))
        paths = list(itertools.product(range(3), repeat=5))
        best = min(path_cost(p, unary, times, 0.7, 2.0) for p in paths)
        assert path_cost(viterbi(unary, times, 0.7, 2.0), unary, times, 0.7, 2.0) == pytest.approx(best)


def test_coherent_mode_stops_the_flicker_between_look_alike_frames():
    target, phase = two_takes()
    rng = np.random.default_rng(3)
    query = motion(np.concatenate([phase, phase])) + rng.normal(0, 0.004, (200, 13, 2)).astype(np.float32)
    gen = nearest.GenNearest(target, size=8)
    plain, coherent = gen.match(query, coherent=False), gen.match(query, coherent=True)
    jump_plain = np.abs(np.diff(plain)).mean()
    jump_coherent = np.abs(np.diff(coherent)).mean()
    # Plain NN hops between the two takes (~100 frames apart); the coherent path keeps to one take at a time.
    assert jump_plain > 20
    assert jump_coherent < 0.2 * jump_plain
    err_plain, err_coherent = (
        metrics.pose_error(query, gen.xy[plain]),
        metrics.pose_error(query, gen.xy[coherent]),
    )
    assert err_coherent < 1.5 * err_plain  # the poses shown stay about as close
    # generate_batch reads the batch as one clip when the generator is coherent.
    coherent_gen = nearest.GenNearest(target, size=8, coherent=True)
    np.testing.assert_array_equal(frame_ids(coherent_gen.generate_batch(query)), coherent)
    # generate_clip matches the whole clip too, but hands its frames over 32 at a time (bounded memory).
    chunks = list(coherent_gen.generate_clip(query, 32))
    assert [len(c) for c in chunks] == [32] * 6 + [8]
    np.testing.assert_array_equal(frame_ids(np.concatenate(chunks)), coherent)


def test_degenerate_coherent_settings_fall_back_to_plain():
    target, phase = two_takes(60)
    query = motion(phase)
    plain = nearest.GenNearest(target).match(query, coherent=False)
    np.testing.assert_array_equal(nearest.GenNearest(target, k=1).match(query, coherent=True), plain)
    np.testing.assert_array_equal(nearest.GenNearest(target, jump_weight=0.0).match(query, coherent=True), plain)


def test_feature_choices_and_positions():
    target = FakeTarget(motion(np.linspace(0, 2 * np.pi, 80)))
    shifted = target.xy[10:11] + np.float32([0.2, 0.0])  # same pose, elsewhere in the frame
    # "pose" ignores where the person stands, "absolute" does not.
    assert frame_ids(nearest.GenNearest(target, features="pose").generate_batch(shifted))[0] == 10
    assert nearest.pose_features(target.xy, "mixed").shape == (80, 28)
    # Restricting the frames searched (Evaluate's train split) never returns a frame outside them.
    gen = nearest.GenNearest(target, positions=np.arange(40))
    assert frame_ids(gen.generate_batch(target.xy[60:70])).max() < 40


def test_contract_and_bad_input():
    target = FakeTarget(motion(np.linspace(0, 2 * np.pi, 30)))
    gen = nearest.load_generator(target, 1, size=64, device="auto")
    assert isinstance(gen, nearest.GenNearest) and gen.size == 64
    with pytest.raises(UserError):
        nearest.load_generator(target, 2)
    with pytest.raises(UserError):
        nearest.GenNearest(target, k=0)
    with pytest.raises(UserError):
        nearest.GenNearest(target, features="colour")
    bad = target.xy[:2].copy()
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match="fill the missing poses"):
        gen.generate_batch(bad)
    assert gen.generate_batch(np.zeros((0, 13, 2), np.float32)).shape == (0, 64, 64, 3)


def test_real_clip_retrieves_its_own_frames(short_clip):
    from deepdance.cache import VideoSkeleton

    vs = VideoSkeleton(short_clip, verbose=False)
    gen = nearest.GenNearest(vs, size=32)
    rows = gen.match(vs.skeletons())
    # Each frame's own skeleton is at distance 0, so it is found (up to exact duplicates).
    same = np.all(gen.xy[rows] == vs.skeletons(), axis=(1, 2))
    assert same.all()
    assert gen.generate_batch(vs.skeletons()[:5]).shape == (5, 32, 32, 3)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["/no/such/video.mp4"], "video not found"),
        (["--k", "0"], "--k must be >= 1"),
        (["--jump_weight", "-1"], "--jump_weight must be >= 0"),
        (["--preview", "out/x.jpg"], "--preview must name a .png"),
    ],
)
def test_cli_bad_input_is_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        run_cli(GenNearest.main, argv)
    assert e.value.code != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


# --------------------------------------------------------------------------- full-resolution frames from the cache


class CachedTarget(FakeTarget):
    """FakeTarget whose frames live in a memory-mapped frames.npy (as a VideoSkeleton's cache), rows 3 and 7 without
    a person; every stored frame is random texture. frames() must not be used: it would hold every frame in RAM."""

    def __init__(self, tmp_path, n=12, stored=48):
        super().__init__(motion(np.linspace(0, 2 * np.pi, n, endpoint=False)))  # n distinct poses
        self.valid = np.ones(n + 2, bool)
        self.valid[[3, 7]] = False
        self.rows = np.flatnonzero(self.valid)
        rng = np.random.default_rng(4)
        path = tmp_path / "frames.npy"
        np.save(path, rng.integers(0, 256, (n + 2, stored, stored, 3), np.uint8))
        self.frames_all = np.load(path, mmap_mode="r", allow_pickle=False)

    def frames(self, size=None):
        raise AssertionError("frames() loads every frame of the target")


def test_stored_size_returns_the_stored_frames_themselves(tmp_path):
    target = CachedTarget(tmp_path)
    stored = np.asarray(target.frames_all)
    gen = nearest.GenNearest(target, size=48)
    out = gen.generate_batch(target.xy[[5, 0, 5, 11]])  # a repeat, rows after the gaps
    assert out.shape == (4, 48, 48, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, stored[target.rows[[5, 0, 5, 11]]])
    one = gen.generate(Skeleton(target.xy[9]))
    assert one.shape == (48, 48, 3) and one.dtype == np.uint8
    np.testing.assert_array_equal(one, stored[target.rows[9]])
    # Coherent mode and a restricted search read the same file.
    coherent = nearest.GenNearest(target, size=48, coherent=True, positions=np.arange(2, 12))
    rows = coherent.match(target.xy[2:])
    np.testing.assert_array_equal(coherent.generate_batch(target.xy[2:]), stored[target.rows[2:][rows]])
    assert coherent.generate_batch(np.zeros((0, 13, 2), np.float32)).shape == (0, 48, 48, 3)


def test_other_sizes_are_resized_from_the_stored_frames_as_videoskeleton_does(tmp_path):
    from deepdance.video import square_frame

    target = CachedTarget(tmp_path)
    stored = np.asarray(target.frames_all)
    for size in (16, 96):  # down (area averaging) and up
        out = nearest.GenNearest(target, size=size).generate_batch(target.xy[[1, 8]])
        expected = np.stack([square_frame(stored[r], size) for r in target.rows[[1, 8]]])
        np.testing.assert_array_equal(out, expected)


def test_demo_asks_retrieval_for_its_panel_size_and_trained_types_for_size(tmp_path, monkeypatch):
    """DanceDemo builds gen_type 1 at PANEL px (the stored frames, not a 64 px copy upscaled); --size still picks a
    trained type's size. main stops at the generator's loading (nothing after it is this test's business)."""
    from deepdance import transfer

    import DanceDemo

    class Loaded(Exception):
        pass

    asked = []

    def fake_load(vs, gen_type, *, size, device, **options):
        asked.append((gen_type, size))
        raise Loaded

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not read")
    monkeypatch.setattr(DanceDemo, "VideoSkeleton", lambda *a, **k: FakeTarget(motion(np.linspace(0, 6, 20))))
    monkeypatch.setattr(DanceDemo, "load_generator", fake_load)
    monkeypatch.setattr(DanceDemo, "generator_module", lambda *a: None)
    for gen_type in (1, 3):
        with pytest.raises(Loaded):
            DanceDemo.main(["--gen_type", str(gen_type), "--video_path", str(video), "--source", str(video),
                            "--out", str(tmp_path / "o.mp4"), "--size", "128"])  # fmt: skip
    assert asked == [(1, transfer.PANEL), (3, 128)]
