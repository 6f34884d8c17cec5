"""Shared fixtures: a private data dir for the whole run, the built-in sample, tiny test videos."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Before any project module is imported: caches, checkpoints and the sample go to a temp dir, so the
# tests neither read stale files from data/ nor leave any there.
_DATA = tempfile.mkdtemp(prefix="deepdance-test-")
os.environ["DEEPDANCE_DATA"] = _DATA

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"


def write_video(path, frames, fps=25.0):
    """Write BGR uint8 frames to an mp4 with OpenCV's mp4v codec (what a user's phone clip is like)."""
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        out.write(np.ascontiguousarray(f))
    out.release()
    return Path(path)


def run_script(script, *args, timeout=300):
    """Run a top-level script as a user would; returns the CompletedProcess with str output.

    Bytes are decoded by hand: text mode would turn progress bars' \r into newlines.
    """
    cmd = [sys.executable, str(ROOT / script), *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout, cwd=ROOT)
    proc.stdout = proc.stdout.decode(errors="replace")
    proc.stderr = proc.stderr.decode(errors="replace")
    return proc


@pytest.fixture(scope="session")
def data_dir():
    return Path(_DATA)


@pytest.fixture(scope="session")
def sample_target():
    import Mannequin

    return Mannequin.ensure_sample("target")


@pytest.fixture(scope="session")
def sample_source():
    import Mannequin

    return Mannequin.ensure_sample("source")


@pytest.fixture(scope="session")
def sample_vs(sample_target):
    """The sample target, extracted once for the whole run (MediaPipe, both cores)."""
    from VideoSkeleton import VideoSkeleton

    return VideoSkeleton(sample_target, verbose=False)


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory, sample_target):
    """The first 60 frames of the sample target as a separate small video (fast extraction)."""
    from VideoSkeleton import iter_frames

    frames = [f for _, f in iter_frames(sample_target, 0, 60)]
    return write_video(tmp_path_factory.mktemp("clips") / "short.mp4", frames)


def pytest_sessionfinish(session, exitstatus):
    import shutil

    shutil.rmtree(_DATA, ignore_errors=True)
