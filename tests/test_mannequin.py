"""Tests of the sample-footage renderer: determinism, geometry, left/right, files on disk."""

from deepdance import mannequin
from deepdance.cli import UserError
from deepdance.skeleton import (
    JOINT_NAMES,
    L_ANKLE,
    L_HIP,
    L_SHOULDER,
    L_WRIST,
    NOSE,
    R_ANKLE,
    R_HIP,
    R_SHOULDER,
    R_WRIST,
    body_height,
    normalize,
)

import numpy as np
import pytest

import Mannequin
from conftest import read_video


def clip_joints(which):
    """All ground-truth joints of a clip without rendering a pixel: (N,13,2) px."""
    return mannequin.forward_kinematics(mannequin.routine(which)[0], mannequin.FIGURES[which])[0]


def slot_start(which, upper, side):
    """First frame of the first slot running `upper` on `side`."""
    return next(f for f, u, s, _, _ in mannequin.routine(which)[1] if u == upper and s == side)


def test_deterministic():
    idx = [0, 123, 599]
    f1, j1 = mannequin.render_clip("target", idx)
    f2, j2 = mannequin.render_clip("target", idx)
    assert f1.shape == (3, mannequin.FRAME_H, mannequin.FRAME_W, 3) and f1.dtype == np.uint8
    assert j1.shape == (3, len(JOINT_NAMES), 2) and j1.dtype == np.float32
    assert np.array_equal(f1, f2) and np.array_equal(j1, j2)
    assert np.array_equal(j1, clip_joints("target")[idx])


@pytest.mark.parametrize("which", mannequin.CLIPS)
def test_joints_inside_centre_crop_and_smooth(which):
    j = clip_joints(which)
    assert j.shape == (mannequin.N_FRAMES[which], 13, 2) and np.isfinite(j).all()
    margin = 8  # px: MediaPipe needs to see the hand beyond the wrist, the head above the nose
    assert j[..., 0].min() > 32 + margin and j[..., 0].max() < 288 - margin
    assert j[..., 1].min() > margin and j[..., 1].max() < mannequin.FRAME_H - margin
    assert np.linalg.norm(np.diff(j, axis=0), axis=-1).max() < 25  # px per frame: trackable motion


@pytest.mark.parametrize("which", mannequin.CLIPS)
def test_lower_foot_rests_on_the_floor(which):
    fig = mannequin.FIGURES[which]
    j = clip_joints(which)
    sole = np.max(j[:, [L_ANKLE, R_ANKLE], 1], axis=1) + fig.ankle * fig.height
    assert np.allclose(sole, fig.floor_y, atol=1e-3)


@pytest.mark.parametrize("which", mannequin.CLIPS)
def test_person_left_is_on_image_right(which):
    j = clip_joints(which)
    assert (j[:, L_SHOULDER, 0] > j[:, R_SHOULDER, 0]).all()
    assert (j[:, L_HIP, 0] > j[:, R_HIP, 0]).all()


def test_rendered_hands_are_where_the_wrists_say():
    # Mid-way through a wave with the person's left arm: that hand is up and to the image right of the face.
    i = slot_start("target", "wave", 1) + 20
    frames, joints = mannequin.render_clip("target", [i])
    frame, j = frames[0], joints[0]
    assert j[L_WRIST, 0] > j[NOSE, 0] + 20 and j[L_WRIST, 1] < j[L_SHOULDER, 1]
    skin_bgr = np.array(mannequin.FIGURES["target"].skin[::-1], float)
    bg = mannequin.background(mannequin.FIGURES["target"])[..., ::-1]
    for k in (L_WRIST, R_WRIST, NOSE):
        x, y = np.round(j[k]).astype(int)
        patch = frame[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3).astype(float)
        assert np.abs(patch - bg[y, x]).sum(-1).max() > 30, JOINT_NAMES[k]  # the figure is drawn there...
        assert np.min(np.linalg.norm(patch - skin_bgr, axis=-1)) < 90, JOINT_NAMES[k]  # ... in skin colour


def test_holdout_poses_recur_and_source_differs():
    tgt, src = clip_joints("target"), clip_joints("source")
    n = normalize(tgt)
    cut = int(0.85 * len(n))
    nearest = np.linalg.norm(n[cut:, None] - n[None, :cut], axis=-1).min(axis=1)
    assert nearest.max() < 0.3  # every held-out pose has a look-alike in the training part
    assert body_height(src).mean() < 0.9 * body_height(tgt).mean()  # drawn smaller...

    def hips(j):
        return 0.5 * (j[:, L_HIP] + j[:, R_HIP])

    assert abs(hips(src)[:, 0].mean() - hips(tgt)[:, 0].mean()) > 10  # ... and off-centre


def test_unknown_clip_is_a_user_error():
    with pytest.raises(UserError):
        mannequin.render_clip("nope", [0])


def test_ensure_sample_writes_readable_files(tmp_path, monkeypatch):
    monkeypatch.setattr(mannequin, "SAMPLE_DIR", tmp_path)
    monkeypatch.setitem(mannequin.N_FRAMES, "source", 12)  # a short clip keeps the test fast
    video = mannequin.ensure_sample("source")
    assert video == tmp_path / "source.mp4" and video.exists()
    joints = np.load(tmp_path / "source_joints.npy", allow_pickle=False)
    assert joints.shape == (12, 13, 2) and joints.dtype == np.float32
    decoded, _ = read_video(video)
    assert len(decoded) == len(joints)
    assert decoded[0].shape == (mannequin.FRAME_H, mannequin.FRAME_W, 3)
    frames, gt = mannequin.render_clip("source", [0, 11])
    assert np.array_equal(gt, joints[[0, 11]])
    assert np.abs(decoded[11].astype(float) - frames[1]).mean() < 3  # BGR order and frame order survive the codec
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["source.mp4", "source_joints.npy"]  # no temp files left, nor the render's lock
    mtime = video.stat().st_mtime_ns
    assert mannequin.ensure_sample("source") == video and video.stat().st_mtime_ns == mtime  # kept, not redone
    assert np.array_equal(mannequin.sample_joints("source"), joints)


# --------------------------------------------------------------------------- shots: footage as people film it


def test_default_shot_is_the_sample():
    frames, joints = mannequin.render_shot(mannequin.Shot(frames=3))
    sample, gt = mannequin.render_clip("target", [0, 1, 2])
    assert joints.shape == (1, 3, 13, 2)
    np.testing.assert_array_equal(frames, sample)
    np.testing.assert_allclose(joints[0], gt, atol=1e-3)


def test_shots_place_the_figure_where_asked():
    portrait = mannequin.SHOTS["portrait"]
    j = mannequin.shot_poses(portrait)[0][0]
    assert portrait.height > portrait.width  # a phone held upright
    # The dancer fills the picture's height: nose near the top, ankles near the bottom, in every frame.
    assert np.median(j[:, NOSE, 1]) < 0.15 * portrait.height and j[:, L_ANKLE, 1].min() > 0.85 * portrait.height
    off = mannequin.SHOTS["off_centre"]
    hips = mannequin.shot_poses(off)[0][0][:, [L_HIP, R_HIP], 0].mean(axis=1)
    assert np.all(np.abs(hips - 0.17 * off.width) < 0.05 * off.width)  # well left of the centre
    walk = mannequin.SHOTS["walk"]
    hips = mannequin.shot_poses(walk)[0][0][:, [L_HIP, R_HIP], 0].mean(axis=1)
    assert hips[-1] - hips[0] == pytest.approx(0.6 * walk.width, abs=0.05 * walk.width)  # walks across
    two = mannequin.shot_poses(mannequin.SHOTS["two_people"])[0]
    assert two.shape[0] == 2 and np.all(two[1, :, :, 0].min(axis=1) > two[0, :, :, 0].max(axis=1))  # side by side


def test_a_panning_camera_moves_the_room_and_the_person_alike():
    still = mannequin.Shot(frames=5)
    pan = mannequin.Shot(frames=5, pan=0.1)
    _, j0 = mannequin.render_shot(still)
    f1, j1 = mannequin.render_shot(pan)
    dx = round(0.1 * still.width)
    np.testing.assert_allclose(j1[0, 0], j0[0, 0], atol=1e-3)
    np.testing.assert_allclose(j1[0, -1, :, 0], j0[0, -1, :, 0] - dx, atol=1e-3)  # the person moves in the frame...
    np.testing.assert_array_equal(f1[-1, :40, :-dx], f1[0, :40, dx:])  # ... and so does the wall above them


def test_write_clip_rotation_and_variable_frame_rate(tmp_path):
    import cv2

    frames, _ = mannequin.render_shot(mannequin.Shot(120, 160, (mannequin.Person(height=0.8),), frames=20))
    path = mannequin.write_clip(tmp_path / "phone.mp4", frames, rotation=90, rates=((10, 15), (10, 60)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["phone.mp4"]  # no temporary files left
    raw = cv2.VideoCapture(str(path))  # as stored: turned
    ok, stored = raw.read()
    assert ok and stored.shape == (120, 160, 3) and raw.get(cv2.CAP_PROP_ORIENTATION_META) == 270
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)  # as a player shows it: upright
    shown, times = [], []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        shown.append(f)
        times.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000)
    assert len(shown) == 20 and shown[0].shape == frames[0].shape
    assert np.abs(np.array(shown).astype(float) - frames).mean() < 5  # two H.264 generations (the rate's re-encode)
    np.testing.assert_allclose(times, mannequin.vfr_times(((10, 15), (10, 60))), atol=1e-3)
    assert mannequin.vfr_times(((2, 10), (2, 50))).tolist() == pytest.approx([0, 0.1, 0.2, 0.22])


def test_shot_cli_writes_a_clip(tmp_path):
    out = tmp_path / "p.mp4"
    Mannequin.main(["--shot", "portrait", "--frames", "6", "--out", str(out), "--rotate", "90"])
    decoded, _ = read_video(out)
    assert len(decoded) == 6 and decoded[0].shape[:2] == (180, 320)  # stored turned; players turn it upright
