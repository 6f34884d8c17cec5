"""Shared fixtures: a private data dir for the whole run, the built-in sample, tiny test videos, and the tiny
synthetic target the trainers' tests train on."""

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

# Ctrl-C as a user has it. A runner that starts pytest as a background job of a non-interactive shell (`nohup ... &`)
# hands it SIGINT ignored, and every process it starts would inherit that (an ignored signal stays ignored across
# exec): the Ctrl-C tests would then wait for an exit that never comes. A handler, unlike SIG_IGN, is reset by exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Before any project module is imported: caches, checkpoints and the sample go to a temp dir, so the
# tests neither read stale files from data/ nor leave any there.
_DATA = tempfile.mkdtemp(prefix="deepdance-test-")
os.environ["DEEPDANCE_DATA"] = _DATA

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def write_video(path, frames, fps=25.0):
    """Write BGR uint8 frames to an mp4 with OpenCV's mp4v codec (what a user's phone clip is like)."""
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        out.write(np.ascontiguousarray(f))
    out.release()
    return Path(path)


def read_video(path):
    """Decode a whole video with OpenCV: (frames (N, H, W, 3) uint8 BGR, fps)."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return np.array(frames), fps


def run_script(script, *args, timeout=300):
    """Run a top-level script (or a bench, "bench/NAME.py", as python -m bench.NAME) as a user would; returns the
    CompletedProcess with str output.

    Bytes are decoded by hand: text mode would turn progress bars' \r into newlines.
    """
    where = ["-m", script[:-3].replace("/", ".")] if script.startswith("bench/") else [str(ROOT / script)]
    cmd = [sys.executable, *where, *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout, cwd=ROOT)
    proc.stdout = proc.stdout.decode(errors="replace")
    proc.stderr = proc.stderr.decode(errors="replace")
    return proc


@pytest.fixture(scope="session")
def data_dir():
    return Path(_DATA)


@pytest.fixture(scope="session")
def sample_target():
    from deepdance import mannequin

    return mannequin.ensure_sample("target")


@pytest.fixture(scope="session")
def sample_source():
    from deepdance import mannequin

    return mannequin.ensure_sample("source")


@pytest.fixture(scope="session")
def sample_vs(sample_target):
    """The sample target, extracted once for the whole run (MediaPipe, both cores)."""
    from deepdance.cache import VideoSkeleton

    return VideoSkeleton(sample_target, verbose=False)


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory, sample_target):
    """The first 60 frames of the sample target as a separate small video (fast extraction)."""
    from deepdance.video import iter_frames

    frames = [f for _, f in iter_frames(sample_target, 0, 60)]
    return write_video(tmp_path_factory.mktemp("clips") / "short.mp4", frames)


# --------------------------------------------------------------------------- a tiny synthetic target (trainers)

# A standing pose, (13, 2) in [0, 1] of the square frame, in Skeleton's joint order.
POSE = np.array(
    [[0.50, 0.22], [0.57, 0.33], [0.43, 0.33], [0.63, 0.44], [0.37, 0.44], [0.66, 0.55], [0.34, 0.55],
     [0.54, 0.57], [0.46, 0.57], [0.55, 0.71], [0.45, 0.71], [0.56, 0.85], [0.44, 0.85]], np.float32,
)  # fmt: skip


class FakeVS:
    """The slice of VideoSkeleton that training uses, over n synthetic consecutive frames: arms wave, body drifts."""

    def __init__(self, root, n=40):
        t = np.linspace(0, 2 * np.pi, n, dtype=np.float32)[:, None]
        self.xy = np.repeat(POSE[None], n, axis=0)
        self.xy[:, 3:7, 1] += 0.08 * np.sin(t) * np.array([1, -1, 2, -2], np.float32)  # elbows, wrists
        self.xy[..., 0] += 0.05 * np.sin(0.5 * t)  # the whole body drifts sideways
        self.rows = np.arange(n)  # cache rows (sampled frames) of the usable frames: one continuous run
        self.root, self.video_path = Path(root), Path(root) / "fake.mp4"
        self.key = "fake-0123456789"
        self.meta = {"sha256": "f" * 64, "params": {"frame_skip": 1, "size": 256}}

    def __len__(self):
        return len(self.xy)

    def split(self):
        """The real contiguous-block split (it only needs len)."""
        from deepdance.cache import VideoSkeleton

        return VideoSkeleton.split(self)

    def skeletons(self):
        return self.xy

    def frames(self, size):
        """(N, S, S, 3) uint8 BGR: a thick coloured figure over a vertical gradient."""
        from deepdance.skeleton import render_maps

        bg = np.linspace(40, 160, size, dtype=np.float32)[None, :, None, None] * np.array([1.0, 0.8, 0.5])
        people = render_maps(self.xy, size, thickness=max(2, size // 16)).astype(np.float32)
        return np.where(people > 0, people, bg).astype(np.uint8)

    def dataset(self, positions, size=64):
        from deepdance.dataset import PoseDataset

        return PoseDataset(self.xy[positions], self.frames(size)[positions], positions)

    def model_dir(self, name):
        return self.root / "checkpoints" / self.key / name


def motion(phase):
    """Poses (N,13,2) swinging both arms with the given phases (radians)."""
    xy = np.repeat(POSE[None], len(phase), axis=0)
    for wrist, elbow, sign in ((5, 3, 1.0), (6, 4, -1.0)):
        xy[:, wrist, 0] += sign * 0.12 * np.sin(phase)
        xy[:, wrist, 1] -= 0.15 * (1 - np.cos(phase))
        xy[:, elbow, 0] += sign * 0.06 * np.sin(phase)
        xy[:, elbow, 1] -= 0.07 * (1 - np.cos(phase))
    return xy.astype(np.float32)


class FakeTarget:
    """What GenNearest, DanceDemo and Evaluate read from a VideoSkeleton, for synthetic poses; frame i is coloured
    by i (frame_ids in test_nearest reads it back)."""

    def __init__(self, xy, fps=10.0, stored=32):
        self.xy = np.asarray(xy, np.float32)
        self.rows = np.arange(len(xy))
        self.fps = fps
        self.valid = np.ones(len(xy), bool)
        self.video_path = None
        self._stored = stored

    def __len__(self):
        return len(self.xy)

    def skeletons(self):
        return self.xy

    @property
    def ske_all(self):
        """(N, 13, 3): joints and a visibility of 1, every frame with a person (as a VideoSkeleton's cache rows)."""
        return np.concatenate([self.xy, np.ones((len(self.xy), 13, 1), np.float32)], axis=2)

    def frames(self, size=None):
        size = size or self._stored
        img = np.zeros((len(self), size, size, 3), np.uint8)
        img[..., 0] = (self.rows % 256)[:, None, None]
        img[..., 1] = (self.rows // 256)[:, None, None]
        img[..., 2] = 200
        return img


def ctrl_c_after(monkeypatch, module, name, calls):
    """Make module.name raise KeyboardInterrupt (a Ctrl-C) on its call number calls + 1: an interruption at a
    known step of training. Returns the original function (monkeypatch.setattr it back to resume)."""
    original, seen = getattr(module, name), []

    def interrupted(*args, **kw):
        seen.append(1)
        if len(seen) > calls:
            raise KeyboardInterrupt
        return original(*args, **kw)

    monkeypatch.setattr(module, name, interrupted)
    return original


@pytest.fixture
def paused_app_jobs(monkeypatch, tmp_path):
    """Jobs started while this is active wait at their start until the returned marker file is removed."""
    marker = tmp_path / "job-paused"
    monkeypatch.setenv("DEEPDANCE_TEST_PAUSE", f"app-job:{marker}")
    yield marker
    marker.unlink(missing_ok=True)  # never leave a job waiting


@pytest.fixture
def one_thread(monkeypatch):
    """Tiny models: one thread is fastest, and immune to OpenMP spin-waits on a busy machine (subprocesses too)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(n)


def pytest_sessionfinish(session, exitstatus):
    import shutil

    shutil.rmtree(_DATA, ignore_errors=True)
