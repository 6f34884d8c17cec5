"""MediaPipe Pose: the model (model_complexity 1, the one the wheel ships), detection on frames, and telling the
tracked person apart from others (a tracker that jumped to someone else, a second person in the picture).
"""

import contextlib
import os
import sys
from pathlib import Path

from deepdance.cli import UserError
from deepdance.skeleton import N_JOINTS, Skeleton, body_height

import cv2
import numpy as np
from tqdm import tqdm

SWITCH_JUMP = 1.0  # body heights the hips cannot move between two detections at most SWITCH_SECONDS apart: when
SWITCH_SECONDS = 0.5  # they do, the tracker went over to someone else
MODEL_COMPLEXITY = 1  # 1 = "full", the only pose model mediapipe 0.10.21 ships in its wheel
# MediaPipe's detector misses a person who fills the frame, as the person-centred square makes them: with no border it
# found the person in a minority of real taichi1 squares, with a border of a quarter of the side in nearly all (the
# figures are in docs/evaluation.md). Evaluate's pose check pads every frame, real and generated alike, by this much.
EVAL_MARGIN = 0.25
POSE_MODE = "tracking"  # tracking finds a person in ~100% of real frames, static in ~83%
MIN_DETECTION_CONFIDENCE = 0.5
MIN_TRACKING_CONFIDENCE = 0.5
_MODEL_FILES = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite", 2: "pose_landmark_heavy.tflite"}


def check_model_complexity(complexity):
    """MediaPipe 0.10.21 ships only the 'full' model; 0 and 2 would be downloaded: refuse offline."""
    if complexity == 1:
        return
    import importlib.util

    spec = importlib.util.find_spec("mediapipe")
    model = Path(spec.origin).parent / "modules" / "pose_landmark" / _MODEL_FILES[complexity]
    if not model.exists():
        raise UserError(
            f"model_complexity {complexity} needs {model.name}, which mediapipe downloads from the internet "
            f"and is not present at {model.parent}; use --model_complexity 1 (the model shipped in the wheel)"
        )


def make_pose(mode=POSE_MODE, model_complexity=MODEL_COMPLEXITY):
    """A MediaPipe Pose tracker with the extraction's settings."""
    import mediapipe as mp

    return mp.solutions.pose.Pose(
        static_image_mode=mode == "static",
        model_complexity=model_complexity,
        min_detection_confidence=MIN_DETECTION_CONFIDENCE,
        min_tracking_confidence=MIN_TRACKING_CONFIDENCE,
    )


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence C++ writes to fd 2 (MediaPipe's start-up INFO/W0000 lines) for the block; Python's own are kept."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def detect_poses(images, mode=POSE_MODE, desc="MediaPipe", *, margin=0.0):
    """MediaPipe on square frames (N,S,S,3) uint8 BGR, in order -> (N,13,2) float32 joints in [0,1] of the frame, NaN
    where nobody was found.

    The extraction's model and thresholds, so that generated and real frames are judged alike. margin: a black border
    of this share of the side on every side first, for frames the person fills (EVAL_MARGIN).
    """
    out = np.full((len(images), N_JOINTS, 2), np.nan, np.float32)
    with _quiet_native_stderr():
        pose = make_pose(mode)
    try:
        for i, img in enumerate(tqdm(images, desc=desc, unit="frame", leave=False)):
            pad = round(margin * img.shape[0])
            if pad:
                img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
            # The graph logs its start-up lines during the first frame only.
            with _quiet_native_stderr() if i == 0 else contextlib.nullcontext():
                res = pose.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
            if res.pose_landmarks is not None:
                xy = Skeleton.from_mediapipe(res.pose_landmarks.landmark).xy  # in [0, 1] of the padded frame
                out[i] = (xy * img.shape[0] - pad) / (img.shape[0] - 2 * pad)
    finally:
        pose.close()
    return out


def _fit(shape, side):
    """(w, h) of a picture of `shape` scaled so that its longer side is at most `side`."""
    h, w = shape[:2]
    k = min(1.0, side / max(h, w))
    return max(1, round(w * k)), max(1, round(h * k))


def _look_again(pose, image, row, margin=0.3):
    """MediaPipe (static mode) on image (H,W,3) BGR with the person found there (row: (13,3), xy in [0,1] of it)
    painted grey, `margin` body heights around their joints: (13,3) joints of someone else, NaN if nobody."""
    h, w = image.shape[:2]
    px = row[:, :2] * (w, h)
    m = margin * float(body_height(px))
    (x0, y0), (x1, y1) = np.floor(px.min(0) - m).astype(int), np.ceil(px.max(0) + m).astype(int)
    img = image.copy()
    img[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = 128
    out = np.full((N_JOINTS, 3), np.nan, np.float32)
    res = pose.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    if res.pose_landmarks is not None:
        s = Skeleton.from_mediapipe(res.pose_landmarks.landmark)
        out[:, :2], out[:, 2] = s.xy, s.vis
    return out


def follow_one_person(xy, times, width, height):
    """Frames where MediaPipe's tracker had gone over to someone else: (N,) bool, and how many times it switched.

    xy: (N,13,>=2) joints in [0,1] of the (width x height) frame, NaN where nobody was found; times (N,) s. A switch
    is the hips jumping more than SWITCH_JUMP body heights between detections at most SWITCH_SECONDS apart; the runs
    between switches are grouped by where they are, and the group with the most frames is the person followed.
    """
    px = np.asarray(xy, np.float64)[..., :2] * (width, height)
    rows = np.flatnonzero(np.isfinite(px).all(axis=(1, 2)))
    others = np.zeros(len(px), bool)
    if len(rows) < 2:
        return others, 0
    hips = 0.5 * (px[rows, 7] + px[rows, 8])
    bh = float(np.median(body_height(px[rows])))
    step = np.linalg.norm(np.diff(hips, axis=0), axis=1)
    jumps = np.flatnonzero((step > SWITCH_JUMP * bh) & (np.diff(np.asarray(times)[rows]) <= SWITCH_SECONDS)) + 1
    if not len(jumps):
        return others, 0
    runs = np.split(np.arange(len(rows)), jumps)
    # Runs are grouped by where they are, longest first: a run joins the first group whose first run's centre is
    # near its own (O(runs x groups), whatever a noisy clip's number of jumps).
    centres = [np.median(hips[r], axis=0) for r in runs]
    groups = []  # [(centre, [run indices])]
    for i in sorted(range(len(runs)), key=lambda i: -len(runs[i])):
        home = next((g for c, g in groups if np.linalg.norm(centres[i] - c) <= SWITCH_JUMP * bh), None)
        if home is None:
            groups.append((centres[i], [i]))
        else:
            home.append(i)
    main = max((g for _, g in groups), key=lambda g: sum(len(runs[i]) for i in g))
    for _, g in groups:
        if g is not main:
            for i in g:
                others[rows[runs[i]]] = True
    return others, len(jumps)


def second_people(others, xy, looked, width, height):
    """How many of the frames looked at again show a second person: MediaPipe, with the followed person masked out
    (others: (K,13,3) in [0,1] of the frame, NaN if nobody; looked: (K,) their rows in xy (N,13,>=2)), found someone
    clearly visible, at least 0.3 times as tall, standing elsewhere."""
    found = 0
    for row, other in zip(looked, np.asarray(others).reshape(-1, N_JOINTS, 3), strict=True):
        if not np.isfinite(other[:, 0]).all() or not np.isfinite(xy[row, :, 0]).all() or other[:, 2].mean() < 0.5:
            continue
        a, b = xy[row, :, :2] * (width, height), other[:, :2] * (width, height)
        ha, hb = float(body_height(a)), float(body_height(b))
        apart = np.linalg.norm(0.5 * (a[7] + a[8]) - 0.5 * (b[7] + b[8])) > 0.5 * ha
        found += int(hb >= 0.3 * ha and apart)
    return found
