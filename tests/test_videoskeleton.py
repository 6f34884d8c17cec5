"""VideoSkeleton: extraction quality on the sample, the cache, the split, the dataset, bad input."""

import shutil
import subprocess
import sys

from deepdance import cache
from deepdance.skeleton import pck

import numpy as np
import pytest

from conftest import ROOT, run_script, write_video


def test_extraction_matches_ground_truth_on_sample(sample_vs):
    from deepdance import mannequin

    gt_px = mannequin.sample_joints("target")[sample_vs.frame_indices]  # (N, 13, 2) px of the 320x256 frame
    x0, y0, side = sample_vs.crop  # the stored square, in the video's pixels
    gt = (gt_px - (x0, y0)) / side
    assert sample_vs.valid.mean() >= 0.97, f"detected only {sample_vs.valid.mean():.1%} of frames"
    score = pck(sample_vs.ske_all[sample_vs.valid, :, :2], gt[sample_vs.valid], 0.05)
    assert score >= 0.95, f"PCK@0.05 = {score:.3f}"


def test_cache_roundtrip_is_fast_and_identical(short_clip, monkeypatch):
    first = cache.VideoSkeleton(short_clip, verbose=False)
    assert len(first) > 50 and (first.cache_dir / "meta.json").exists()

    def no_extract(*a, **k):
        raise AssertionError("a valid cache must not be recomputed")

    monkeypatch.setattr(cache, "extract", no_extract)  # read back, not extracted again
    again = cache.VideoSkeleton(short_clip, verbose=False)
    np.testing.assert_array_equal(again.ske_all, first.ske_all)
    np.testing.assert_array_equal(again.frames_all, first.frames_all)
    assert again.meta["frame_indices"] == list(range(60))


def test_changed_params_or_content_invalidate(short_clip, tmp_path, monkeypatch):
    base = cache.VideoSkeleton(short_clip, verbose=False)
    skipped = cache.VideoSkeleton(short_clip, frame_skip=3, verbose=False)
    # Other sampling: a cache (and models) of its own, next to the default one, which stays usable.
    assert skipped.cache_dir.name == base.cache_dir.name + "-k3"
    assert skipped.meta["frame_indices"] == list(range(0, 60, 3)) and skipped.meta["params"]["frame_skip"] == 3
    again = cache.VideoSkeleton(short_clip, verbose=False)
    assert again.meta["extract_seconds"] == base.meta["extract_seconds"]  # reloaded, not extracted again
    # A parameter that is not in the name (a threshold): the same folder, extracted again.
    monkeypatch.setattr(cache, "MIN_DETECTION_CONFIDENCE", 0.6)
    stricter = cache.VideoSkeleton(short_clip, verbose=False)
    assert stricter.cache_dir == base.cache_dir and stricter.meta["params"]["min_detection_confidence"] == 0.6
    # Different content under the same name -> a different cache folder.
    from deepdance.video import iter_frames

    other = write_video(tmp_path / short_clip.name, [f for _, f in iter_frames(short_clip, 0, 30)])
    changed = cache.VideoSkeleton(other, verbose=False)
    assert changed.cache_dir != base.cache_dir and len(changed.valid) == 30


def test_two_workers_give_the_same_frames_as_one(short_clip, monkeypatch):
    monkeypatch.setattr(cache, "MIN_FRAMES_PER_WORKER", 10)
    # The centre square: a crop that does not depend on what MediaPipe saw, so frames compare bit for bit.
    one = cache.VideoSkeleton(short_clip, force=True, workers=1, verbose=False, framing="center")
    f1, s1 = np.array(one.frames_all), one.ske_all.copy()
    two = cache.VideoSkeleton(short_clip, force=True, workers=2, verbose=False, framing="center")
    assert two.meta["workers"] == 2
    np.testing.assert_array_equal(np.array(two.frames_all), f1)  # chunk seeking is frame-exact
    # The person's square comes from the joints: the tracker restarting at the second chunk moves it a pixel or two.
    alone = cache.VideoSkeleton(short_clip, workers=1, verbose=False)  # the cache other tests made, or made now
    assert alone.meta["workers"] == 1
    shared = cache.VideoSkeleton(short_clip, force=True, workers=2, verbose=False)
    assert np.abs(np.subtract(alone.crop, shared.crop)).max() <= 0.03 * alone.crop[2]
    both = np.isfinite(s1[:, 0, 0]) & np.isfinite(two.ske_all[:, 0, 0])
    assert both.mean() > 0.95
    assert np.abs(two.ske_all[both, :, :2] - s1[both, :, :2]).mean() < 0.01


def test_split_is_three_contiguous_disjoint_blocks_with_gaps(sample_vs):
    train, select, test = blocks = sample_vs.split()
    assert all(np.all(np.diff(b) == 1) for b in blocks) and train[0] == 0
    assert select[0] - train[-1] > cache.BLOCK_GAP  # gaps, so neighbouring frames cannot leak
    assert test[0] - select[-1] > cache.BLOCK_GAP
    assert test[-1] == len(sample_vs) - 1  # the test block is the clip's end
    assert abs(len(test) - cache.TEST_FRAC * len(sample_vs)) <= 1
    assert abs(len(select) - cache.SELECT_FRAC * len(sample_vs)) <= 1


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 12, 30, 31, 200])
def test_split_of_any_length_never_overlaps(n):
    blocks = cache.VideoSkeleton.split(type("Clip", (), {"__len__": lambda self: n})())
    used = np.concatenate(blocks)
    assert len(np.unique(used)) == len(used) and (used < n).all() and (used >= 0).all()
    if n >= 30:  # long enough for all three blocks and their gaps
        assert min(len(b) for b in blocks) >= 1


def test_dataset_tensors(sample_vs):
    import torch

    train = sample_vs.split().train
    ds = sample_vs.dataset(train[:16], size=64)
    maps, vec, img = ds.batch(torch.arange(4))
    assert maps.shape == (4, 3, 64, 64) and img.shape == (4, 3, 64, 64) and vec.shape == (4, 26)
    for t in (maps, vec, img):
        assert t.dtype == torch.float32 and t.min() >= -1 and t.max() <= 1
    assert len(ds) == 16 and ds[0][0].shape == (3, 64, 64)


def test_frame_resizing(sample_vs):
    assert sample_vs.frame(0).shape == (256, 256, 3)
    assert sample_vs.frame(0, 64).shape == (64, 64, 3)
    assert sample_vs.frames(32).shape == (len(sample_vs), 32, 32, 3)


# --------------------------------------------------------------------------- bad input


def _assert_clean_failure(proc, needle, data_dir, stem):
    assert proc.returncode != 0
    # What a terminal shows: progress bars redraw in place with \r, so keep each line's last state.
    lines = [ln.split("\r")[-1].strip() for ln in proc.stderr.split("\n")]
    lines = [ln for ln in lines if ln]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert needle in lines[0].lower(), lines[0]
    cache = data_dir / "cache"
    # No cache, no part of one, and no build lock (.<name>.lock: removed as it is let go).
    leftovers = [p.name for p in cache.iterdir() if stem in p.name] if cache.exists() else []
    assert leftovers == [], leftovers


@pytest.mark.slow
def test_missing_file(tmp_path, data_dir):
    proc = run_script("VideoSkeleton.py", tmp_path / "nope.mp4")
    _assert_clean_failure(proc, "not found", data_dir, "nope")


@pytest.mark.slow
def test_directory_instead_of_file(tmp_path, data_dir):
    proc = run_script("VideoSkeleton.py", tmp_path)
    _assert_clean_failure(proc, "directory", data_dir, tmp_path.name)


@pytest.mark.parametrize(
    "name,content",
    [("notes.mp4", b"this is not a video\n" * 50), ("noise.mp4", bytes(range(256)) * 64), ("empty.mp4", b"")],
)
@pytest.mark.slow
def test_not_a_video(tmp_path, data_dir, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    proc = run_script("VideoSkeleton.py", path)
    _assert_clean_failure(proc, "video", data_dir, path.stem)


@pytest.mark.slow
def test_zero_frame_video(tmp_path, data_dir):
    import cv2

    path = tmp_path / "zero.mp4"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 64)).release()
    proc = run_script("VideoSkeleton.py", path)
    _assert_clean_failure(proc, "video", data_dir, "zero")


@pytest.mark.slow
def test_video_with_no_person(tmp_path, data_dir):
    rng = np.random.default_rng(0)
    frames = [np.full((96, 128, 3), 90, np.uint8) + rng.integers(0, 20, (96, 128, 3), dtype=np.uint8)] * 20
    path = write_video(tmp_path / "empty_room.mp4", frames)
    proc = run_script("VideoSkeleton.py", path, "true", "1")
    _assert_clean_failure(proc, "no person", data_dir, "empty_room")


@pytest.mark.slow
def test_models_that_would_download_are_refused(short_clip, data_dir, tmp_path):
    clip = shutil.copy(short_clip, tmp_path / "refused.mp4")
    proc = run_script("VideoSkeleton.py", clip, "--model_complexity", "2")
    _assert_clean_failure(proc, "model_complexity 2", data_dir, "refused")


@pytest.mark.slow
def test_reference_cli_runs_on_a_clip(short_clip):
    proc = run_script("VideoSkeleton.py", short_clip, "True", "2")
    assert proc.returncode == 0, proc.stderr
    assert "detected" in proc.stdout and "frames/s" in proc.stdout


def test_extraction_reports_progress(short_clip):
    seen = []
    vs = cache.VideoSkeleton(
        short_clip, force=True, verbose=False, progress=lambda done, total: seen.append((done, total))
    )
    assert seen and seen[-1] == (len(vs.valid), len(vs.valid)) == (60, 60)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    seen.clear()
    cache.VideoSkeleton(short_clip, verbose=False, progress=lambda done, total: seen.append((done, total)))
    assert seen == []  # from the cache: nothing to report


def test_a_script_without_a_main_guard_gets_one_line_instead_of_hanging(tmp_path, short_clip):
    """Extraction workers are spawned: each imports the calling script again. A script that makes its VideoSkeleton
    at the top level used to have every worker wait forever for the cache lock its parent holds."""
    from deepdance.video import iter_frames

    frames = [np.ascontiguousarray(f[:, ::-1]) for _, f in iter_frames(short_clip, 0, 60)] * 2  # 2 workers' worth
    clip = write_video(tmp_path / "flipped.mp4", frames)  # new content: not in the cache yet, so it is extracted
    script = tmp_path / "mine.py"
    script.write_text(f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nfrom VideoSkeleton import VideoSkeleton\n\n"
                      f"vs = VideoSkeleton({str(clip)!r}, verbose=False, workers=2)\n")  # fmt: skip
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.endswith(
        "mine.py makes a VideoSkeleton when it is imported, and extracting flipped.mp4 starts worker processes "
        "that import mine.py again (Python's spawn start): put mine.py's code under if __name__ == \"__main__\":"
    )
    cache_dir = cache.CACHE_DIR
    assert not list(cache_dir.glob(".worker-error-*")) and not list(cache_dir.glob("flipped-*"))
