"""Footage people actually film: one person-centred square per clip, phone videos (rotation metadata,
variable frame rate), the target report, and which source poses a target never made (Coverage).

Clips are Mannequin shots (ground-truth joints known); nothing here needs ../shared/data.
"""

import json

from deepdance import cache, cli, coverage, extraction, mannequin, pose, report, video
from deepdance.skeleton import L_HIP, L_WRIST, NOSE, R_HIP, R_WRIST, pck

import cv2
import numpy as np
import pytest

from conftest import run_script

N = 48  # frames per test clip: one extraction process, a few seconds of MediaPipe


def inside_share(skeletons, lo=0.03, hi=0.97):
    """Share of the frames whose joints (N,13,>=2) in [0,1] of the square all lie within [lo, hi] (NaN: not)."""
    xy = np.asarray(skeletons)[..., :2]
    return float((np.isfinite(xy).all(axis=(1, 2)) & (xy >= lo).all(axis=(1, 2)) & (xy <= hi).all(axis=(1, 2))).mean())


def in_square(joints_px, crop):
    """Ground-truth joints (N,13,2) px of the upright video -> [0,1] of the stored square crop = (x0, y0, side)."""
    x0, y0, side = crop
    return (np.asarray(joints_px) - (x0, y0)) / side


# --------------------------------------------------------------------------- the square (no MediaPipe)


def standing(n=20, cx=0.5, cy=0.5, height=0.5, aspect=1.0):
    """n copies of a standing pose (13,2) in [0,1] of a frame, centred at (cx, cy), `height` of the frame tall;
    aspect = width / height of the frame (x is squeezed by it, as joints in [0,1] of a wide frame are)."""
    from conftest import POSE

    xy = (POSE - 0.5) * height / 0.63  # POSE spans ~0.63 of its square from nose to ankles
    xy[:, 0] /= aspect
    return np.repeat((xy + (cx, cy))[None], n, axis=0).astype(np.float32)


def test_portrait_square_is_padded_not_cut():
    xy = standing(cy=0.52, height=0.85, aspect=180 / 320)  # a dancer filling a phone's upright picture
    x0, y0, side = video.person_square(xy, 180, 320)
    assert side > 180 and 0 > x0 > -side and x0 + side > 180  # wider than the picture: padded on both sides
    assert abs((x0 + side / 2) - 90) <= 1  # ... equally (the person is in the middle)
    sq = in_square(xy * (180, 320), (x0, y0, side))
    assert inside_share(sq) == 1.0
    left, top, right, bottom = video.padding_of((x0, y0, side), 180, 320)
    assert left == -x0 and right == x0 + side - 180 and top == max(0, -y0) and bottom == max(0, y0 + side - 320)
    center = video.center_square(180, 320)
    assert inside_share(in_square(xy * (180, 320), center)) == 0.0  # the course's square cuts head and feet


def test_off_centre_square_follows_the_person_and_stays_in_the_picture():
    xy = standing(cx=0.2, height=0.6, aspect=640 / 360)
    x0, y0, side = video.person_square(xy, 640, 360)
    assert 0 <= x0 and x0 + side <= 640 and side <= 360  # no black needed: none added
    assert x0 < 0.2 * 640 < x0 + side and inside_share(in_square(xy * (640, 360), (x0, y0, side))) == 1.0
    assert inside_share(in_square(xy * (640, 360), video.center_square(640, 360))) == 0.0


def test_square_holds_a_walk_and_ignores_a_few_wild_frames():
    walk = np.concatenate([standing(1, cx=c, height=0.5, aspect=2.0) for c in np.linspace(0.2, 0.8, 100)])
    wild = walk.copy()
    wild[50] += 0.4  # a misdetection in one frame of a hundred
    crops = [video.person_square(a, 800, 400) for a in (walk, wild)]
    assert abs(crops[1][2] - crops[0][2]) < 0.02 * crops[0][2]  # the wild frame does not blow the square up
    for crop in crops:
        assert inside_share(in_square(walk * (800, 400), crop)) >= 0.99
    walk[::3] = np.nan  # frames without a person do not count
    kept = np.isfinite(walk[:, 0, 0])
    assert video.person_square(walk, 800, 400) == video.person_square(walk[kept], 800, 400)
    assert video.person_square(np.full((3, 13, 2), np.nan), 800, 400) is None


def test_cut_square_pads_black_and_keeps_the_picture_in_place():
    rng = np.random.default_rng(0)
    frame = rng.integers(30, 255, (60, 40, 3), dtype=np.uint8)
    crop = (-10, 5, 60)  # 10 px of black on the left, 10 on the right, 5 at the bottom
    out = video.cut_square(frame, crop, 60)  # same scale: every pixel can be checked
    assert out.shape == (60, 60, 3) and out.dtype == np.uint8
    assert (out[:, :10] == 0).all() and (out[:, 50:] == 0).all() and (out[55:] == 0).all()
    np.testing.assert_array_equal(out[:55, 10:50], frame[5:60])
    small = video.cut_square(frame, crop, 24)  # resized: the black stays black
    assert small.shape == (24, 24, 3) and (small[:, :3] == 0).all() and (small[:, 21:] == 0).all()
    inside = video.cut_square(frame, (0, 10, 40), 20)
    np.testing.assert_array_equal(inside, cv2.resize(frame[10:50], (20, 20), interpolation=cv2.INTER_AREA))


def test_frame_to_square_uses_the_crop():
    xy = np.array([[0.5, 0.5], [0.0, 1.0]], np.float32)
    sq = video.frame_to_square(xy, (100, 200), (50, -20, 140))  # frame 200 wide, 100 high
    np.testing.assert_allclose(sq, [[50 / 140, 70 / 140], [-50 / 140, 120 / 140]], rtol=1e-6)
    # No crop: the course's centre square, as before.
    np.testing.assert_allclose(video.frame_to_square(xy, (100, 200)), [[0.5, 0.5], [-0.5, 1.0]])


def test_follow_one_person_drops_the_frames_of_someone_else():
    a, b = standing(30, cx=0.3, aspect=2.0), standing(30, cx=0.75, aspect=2.0)
    xy = a.copy()
    xy[10:14] = b[10:14]  # the tracker went over to the other person for 4 frames, then came back
    times = np.arange(30) / 25.0
    others, switches = pose.follow_one_person(xy, times, 800, 400)
    assert switches == 2 and others.tolist() == [10 <= i < 14 for i in range(30)]
    # Walking steadily is not a switch.
    walk = np.concatenate([standing(1, cx=c, aspect=2.0) for c in np.linspace(0.2, 0.8, 30)])
    assert pose.follow_one_person(walk, times, 800, 400)[1] == 0


# --------------------------------------------------------------------------- reading phone videos (no MediaPipe)


def numbered_frames(n, w=96, h=64):
    """Frames whose index is written in 7 bright/dark bars (read back by frame_number)."""
    out = np.zeros((n, h, w, 3), np.uint8)
    for i in range(n):
        for b in range(7):
            if i >> b & 1:
                out[i, :, b * 12 + 2 : b * 12 + 10] = 255
    return out


def frame_number(frame):
    return sum(1 << b for b in range(7) if frame[frame.shape[0] // 2, b * 12 + 6].mean() > 128)


def test_spans_of_a_variable_frame_rate_file_meet_exactly(tmp_path):
    rates = ((30, 15), (40, 60), (20, 25))  # a phone slowing down in the dark, then speeding up
    path = mannequin.write_clip(tmp_path / "vfr.mp4", numbered_frames(90), rates=rates)
    info = video.video_info(path)
    assert info["timed"] and info["frames"] == 90
    truth = mannequin.vfr_times(rates)
    for step in (1, 3):
        spans = extraction.spans(info, step, 3)
        got, offset = [], 0
        for span in spans:  # what three workers read, one after the other
            counts = {}
            for pos, t, f in video.read_span(path, counts=counts, **span):
                got.append((offset + pos, t, frame_number(f)))
            offset += counts["seen"]
        index = [g[0] for g in got]
        assert offset == 90 and [g[2] for g in got] == index  # every frame once, in order, where it belongs
        np.testing.assert_allclose([g[1] for g in got], truth[index], atol=2e-3)
        if step == 1:
            assert index == list(range(90))
        else:  # the first frame of every 3 / fps seconds that has one, whatever the rate
            buckets = np.round(truth * info["fps"]).astype(int) // 3
            assert index == [int(np.flatnonzero(buckets == b)[0]) for b in np.unique(buckets)]
    # OpenCV's own frame seek lands elsewhere in such a file (what read_span checks and redoes).
    landed = []
    for n in (45, 60, 75):
        cap = video.open_video(path)
        cap.set(cv2.CAP_PROP_POS_FRAMES, n)
        landed.append(frame_number(cap.read()[1]))
        cap.release()
    assert landed != [45, 60, 75]


@pytest.mark.parametrize("codec, name", [("libx265", "clip.mkv"), ("libvpx-vp9", "clip.webm")])
def test_hevc_and_vp9_split_exactly_under_a_non_ascii_name(codec, name, tmp_path):
    """What phones and browsers write: HEVC (an iPhone's default), VP9 (a screen or web recording)."""
    src = mannequin.write_clip(tmp_path / "src.mp4", numbered_frames(40))
    path = tmp_path / f"舞蹈 {name}"
    mannequin._ffmpeg("-i", src, "-c:v", codec, path)
    info = video.video_info(path)
    assert info["timed"] and info["width"] == 96
    got, offset = [], 0
    for span in extraction.spans(info, 1, 2):
        counts = {}
        got += [offset + pos for pos, _, _ in video.read_span(path, counts=counts, **span)]
        offset += counts["seen"]
    numbers = [frame_number(f) for _, _, f in video.read_span(path, fps=info["fps"], t0=info["t0"])]
    assert got == numbers == list(range(40))


def test_rotation_metadata_turns_frames_upright(tmp_path):
    upright = np.zeros((64, 48, 3), np.uint8)
    upright[4:14, 4:20] = 255  # a mark at the top left of the upright picture
    path = mannequin.write_clip(tmp_path / "phone.mp4", np.repeat(upright[None], 4, axis=0), rotation=90)
    info = video.video_info(path)
    assert (info["width"], info["height"], info["rotation"]) == (48, 64, 270)
    frame = next(video.read_span(path, fps=info["fps"], t0=info["t0"]))[2]
    assert frame.shape == (64, 48, 3) and frame[5:13, 5:19].mean() > 200 and frame[40:, 30:].mean() < 30
    assert video.probe_video(path)[2:] == (48, 64)


# --------------------------------------------------------------------------- coverage (no MediaPipe)


def sample_poses(which="target"):
    return mannequin.forward_kinematics(mannequin.routine(which)[0], mannequin.FIGURES[which])[0]


def test_a_target_covers_its_own_poses_and_the_sample_source():
    target = sample_poses("target")
    same = coverage.uncovered(target[300:], target)
    assert not same.far.any() and same.lines() == [] and np.nanmax(same.distance) < 1e-3
    src = coverage.uncovered(sample_poses("source"), target)  # the sample source stays within the target's range
    assert src.share < 0.05 and src.never == []


def test_uncovered_says_what_the_target_never_did():
    target = sample_poses("target")
    feats = coverage.pose_kinds(target)
    assert feats["both_arms_up"].sum() >= 5  # the routine starts by raising both arms
    lazy = target[~feats["arm_up"]]  # a target that never raised an arm above the head
    source = target.copy()
    source[::7] = np.nan  # frames without a person: neither near nor far
    u = coverage.uncovered(source, lazy)
    up = np.flatnonzero(feats["both_arms_up"] & np.isfinite(source).all(axis=(1, 2)))
    assert u.far[up].mean() > 0.9 and not u.far[np.isnan(source[:, 0, 0])].any()
    never = {name: pos for name, _, pos in u.never}
    assert "both_arms_up" in never and set(never["both_arms_up"]) <= set(np.flatnonzero(u.far))
    lines = u.lines(unit="source frames")
    assert any(line.startswith("the target never raised both arms above the head (source frames ") for line in lines)
    assert (
        lines[0].startswith(f"{int(u.far.sum())} source frames (") and "far from every pose of the target" in lines[0]
    )
    assert 0 < u.share < 1 and np.all(u.nearest[np.isfinite(u.distance)] >= 0)


def test_pose_kinds_and_coverage_summary():
    xy = sample_poses("target")
    f = coverage.pose_kinds(xy)
    assert set(f) == set(coverage.FEATURES) and all(v.shape == (len(xy),) and v.dtype == bool for v in f.values())
    up = np.flatnonzero(f["both_arms_up"])
    assert np.all(xy[up, L_WRIST, 1] < xy[up, NOSE, 1]) and np.all(xy[up, R_WRIST, 1] < xy[up, NOSE, 1])
    s = coverage.coverage_summary(xy)
    assert s["features"]["arm_up"] > 0.1 and "both_arms_up" not in s["never"] and not s["few_poses"]
    assert all(abs(sum(h) - 1) < 1e-3 for h in s["histograms"].values())
    still = coverage.coverage_summary(np.repeat(xy[:1], 50, axis=0))
    assert still["few_poses"] and still["spread_deg"] == 0 and len(still["never"]) >= 5
    json.dumps(s)  # goes into report.json as it is


# --------------------------------------------------------------------------- the report's verdicts (no MediaPipe)


def fine_measures(**change):
    """measure()'s numbers for a good target clip, with some changed."""
    m = {
        "frames": 1300, "with_person": 1293, "share_with_person": 0.995, "height_in_square": 0.75, "height_px": 300,
        "off_picture": 0.0, "camera": {"measured": True, "shift": 0.002, "lost": 0},
        "people": {"checked": 16, "second_person": 0, "tracker_switches": 0, "other_person_frames": 0},
        "poses": coverage.coverage_summary(sample_poses("target")), "crop": [10, 0, 200], "padding": [0, 0, 0, 0],
        "video_size": [256, 210], "framing": "person",
    }  # fmt: skip
    return {**m, **change}


@pytest.mark.parametrize(
    "change, code, words",
    [
        ({"with_person": 180}, "too_short", "too short to train on: 180 frames"),
        ({"share_with_person": 0.6}, "person_missing", "found in only 60% of the frames"),
        ({"height_in_square": 0.3}, "too_small", "fills only 30% of the stored square's height"),
        ({"height_px": 90}, "low_resolution", "only 90 px tall"),
        ({"off_picture": 0.2}, "cut_off", "outside the picture in 20% of the frames"),
        ({"camera": {"measured": True, "shift": 0.12, "lost": 0}}, "camera_moved", "shifts by up to 12%"),
        ({"camera": {"measured": True, "shift": 1.0, "lost": 9}}, "camera_moved", "beyond recognition"),
        ({"people": {"checked": 16, "second_person": 9}}, "two_people", "in 9 of 16 checked frames"),
        ({"people": {"checked": 16, "second_person": 0, "tracker_switches": 2}}, "two_people", "went over to them"),
        ({"poses": coverage.coverage_summary(np.repeat(sample_poses()[:1], 9, axis=0))}, "few_poses", "barely vary"),
    ],
)
def test_each_problem_is_one_line_saying_what_to_film(change, code, words):
    assert report.problems(fine_measures()) == []
    found = report.problems(fine_measures(**change))
    assert [c for c, _ in found] == [code], found
    line = found[0][1]
    assert words in line and ": " in line and "\n" not in line  # what is wrong: what to film differently


def test_camera_motion_tells_a_pan_from_a_still_camera():
    rng = np.random.default_rng(1)
    room = cv2.GaussianBlur(rng.integers(0, 255, (90, 400), dtype=np.uint8), (0, 0), 1.5)  # a textured room
    nobody = np.full((6, 1, 13, 2), np.nan)
    still = np.repeat(room[None, :, :160], 6, axis=0)
    assert report.camera_motion(still, nobody) == {"measured": True, "shift": 0.0, "lost": 0}
    pan = np.array([room[:, 2 * i : 2 * i + 160] for i in range(6)])  # 2 px per frame, 10 px at the end
    moved = report.camera_motion(pan, nobody)
    assert moved["measured"] and moved["shift"] == pytest.approx(10 / 160, abs=0.01)
    plain = np.full((6, 90, 160), 128, np.uint8)
    assert report.camera_motion(plain, nobody)["shift"] == 0.0  # looks the same: nothing moved


# --------------------------------------------------------------------------- extraction of synthetic shots (MediaPipe)


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    """The test shots as video files (upright frames, ground truth (P,N,13,2) px): {name: (path, joints, frames)}."""
    from dataclasses import replace

    d = tmp_path_factory.mktemp("shots")
    out = {}
    for name in ("portrait", "off_centre", "walk", "pan", "small", "two_people"):
        rotation = 90 if name == "portrait" else 0  # a phone's upright clip: stored turned, with display rotation
        frames, joints = mannequin.render_shot(replace(mannequin.SHOTS[name], frames=N))
        out[name] = (mannequin.write_clip(d / f"{name}.mp4", frames, rotation=rotation), joints, frames)
    return out


@pytest.fixture(scope="module")
def extracted(shots):
    """Each shot extracted once (lazily): {name: VideoSkeleton}."""
    done = {}

    def get(name):
        if name not in done:
            done[name] = cache.VideoSkeleton(shots[name][0], verbose=False)
        return done[name]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("name", ["portrait", "off_centre", "walk"])
def test_the_whole_body_stays_in_the_stored_square(name, shots, extracted):
    vs = extracted(name)
    gt = in_square(shots[name][1][0], vs.crop)  # the truth, mapped into the square meta.json describes
    assert vs.valid.mean() >= 0.95
    assert inside_share(vs.ske_all) >= 0.95, f"whole body inside in only {inside_share(vs.ske_all):.0%}"
    assert inside_share(gt) >= 0.95  # ... and truly so, not only as MediaPipe saw it
    assert pck(vs.ske_all[vs.valid, :, :2], gt[vs.valid], 0.05) >= 0.95
    meta = json.loads((vs.cache_dir / "meta.json").read_text())
    assert meta["crop"] == list(vs.crop) and meta["padding"] == list(vs.padding) and meta["framing"] == "person"
    assert meta["version"] == cache.CACHE_VERSION == 2
    w, h = meta["video_size"]
    assert inside_share(in_square(shots[name][1][0], video.center_square(w, h))) < 0.6  # the old way cut it


@pytest.mark.slow
def test_padding_shows_black(extracted):
    vs = extracted("portrait")  # narrower than the square: black on both sides
    left, top, right, bottom = vs.padding
    size, side = vs.frames_all.shape[1], vs.crop[2]
    assert left > 0 and right > 0
    a, b = int(left * size / side) - 1, size - int(right * size / side) + 1  # the picture's edges in stored px
    frames = np.array(vs.frames_all)
    assert frames[:, :, :a].max() <= 8 and frames[:, :, b:].max() <= 8  # black (a codec's ringing at most)
    assert frames[:, :, a + 2 : b - 2].mean() > 60  # the picture itself


@pytest.mark.slow
def test_a_rotated_phone_clip_is_stored_upright(shots, extracted):
    path, joints, upright = shots["portrait"]
    raw = cv2.VideoCapture(str(path))
    assert raw.read()[1].shape[:2] == (180, 320)  # stored turned, as a phone does
    raw.release()
    vs = extracted("portrait")
    assert vs.rotation == 270 and vs.meta["video_size"] == [180, 320]
    expect = np.array([video.cut_square(f, vs.crop, vs.frames_all.shape[1]) for f in upright])
    assert np.abs(np.array(vs.frames_all).astype(float) - expect).mean() < 6  # the same picture, not turned
    ske = vs.ske_all[vs.valid]
    assert np.all(ske[:, NOSE, 1] < ske[:, L_HIP, 1])  # head up


@pytest.mark.slow
def test_variable_frame_rate_keeps_true_times_and_splits_exactly(tmp_path, monkeypatch):
    frames, _ = mannequin.render_shot(mannequin.Shot(frames=60))
    rates = ((20, 15), (20, 60), (20, 25))
    path = mannequin.write_clip(tmp_path / "vfr.mp4", frames, rates=rates)
    monkeypatch.setattr(cache, "MIN_FRAMES_PER_WORKER", 10)
    # The centre square: the same crop whatever MediaPipe saw, so the frames can be compared bit for bit.
    one = cache.VideoSkeleton(path, force=True, workers=1, verbose=False, framing="center")
    two = cache.VideoSkeleton(path, force=True, workers=2, verbose=False, framing="center")
    assert two.meta["workers"] == 2 and two.meta["vfr"] and two.meta["timing"] == "timestamps"
    np.testing.assert_allclose(two.times, mannequin.vfr_times(rates), atol=2e-3)
    assert list(two.frame_indices) == list(range(60))
    np.testing.assert_array_equal(np.array(two.frames_all), np.array(one.frames_all))  # the spans met exactly
    assert np.load(two.cache_dir / "times.npy", allow_pickle=False).dtype == np.float64


@pytest.mark.slow
def test_the_report_flags_what_to_film_differently(extracted):
    codes = {name: {p["code"] for p in extracted(name).report["problems"]} for name in ("off_centre", "small", "pan")}
    assert all("too_short" in c for c in codes.values())  # 48 frames
    assert "camera_moved" in codes["pan"] and "camera_moved" not in codes["off_centre"]
    assert "low_resolution" in codes["small"]
    assert "too_small" in {p["code"] for p in extracted("walk").report["problems"]}  # the square holds the walk
    for name in ("off_centre", "small", "pan"):
        vs = extracted(name)
        assert (vs.cache_dir / "report.png").stat().st_size > 1000
        sheet = cv2.imread(str(vs.cache_dir / "report.png"))
        assert sheet.shape == (3 * report.SHEET_TILE, 4 * report.SHEET_TILE, 3)
        assert json.loads((vs.cache_dir / "report.json").read_text()) == vs.report
    assert "two_people" not in codes["off_centre"]


@pytest.mark.slow
def test_two_people_are_reported_and_the_square_follows_one(shots, extracted):
    vs = extracted("two_people")
    joints = shots["two_people"][1]  # (2, N, 13, 2): the first person on the left, the second on the right
    x0, _, side = vs.crop
    hips = [0.5 * (joints[k, :, L_HIP, 0] + joints[k, :, R_HIP, 0]) for k in (0, 1)]
    held = [np.mean((x0 < h) & (h < x0 + side)) for h in hips]
    assert sorted(held) == [0.0, 1.0]  # one of them, whole, and not the other
    assert "two_people" in {p["code"] for p in vs.report["problems"]}
    assert vs.meta["people"]["second_person"] >= 0.5 * vs.meta["people"]["checked"] > 0


@pytest.mark.slow
def test_framing_center_keeps_the_course_square(shots, extracted):
    path = shots["off_centre"][0]
    vs = cache.VideoSkeleton(path, framing="center", verbose=False)
    assert vs.crop == video.center_square(448, 256) and vs.padding == (0, 0, 0, 0)
    assert vs.cache_dir.name == extracted("off_centre").cache_dir.name + "-center"
    assert vs.meta["params"]["framing"] == "center"
    with pytest.raises(cli.UserError, match="unknown framing"):
        cache.VideoSkeleton(path, framing="face", verbose=False)


@pytest.mark.slow
def test_cli_prints_the_report_and_writes_the_contact_sheet(shots, extracted, tmp_path):
    extracted("off_centre")  # cached: the CLI prints the saved report
    sheet = tmp_path / "sheet.png"
    proc = run_script("VideoSkeleton.py", shots["off_centre"][0], "--preview", sheet)
    assert proc.returncode == 0, proc.stderr
    assert "target report" in proc.stdout and "- too short to train on: 48 frames" in proc.stdout
    assert sheet.read_bytes() == (extracted("off_centre").cache_dir / "report.png").read_bytes()
    proc = run_script("VideoSkeleton.py", shots["off_centre"][0], "--framing", "face")
    assert proc.returncode == 2 and "invalid choice: 'face'" in proc.stderr


@pytest.mark.slow
def test_framing_center_trains_evaluates_and_demos_its_own_checkpoints(short_clip, one_thread, tmp_path):
    """--framing center everywhere: the trainer writes to the -center cache's folder, Evaluate and DanceDemo load
    that checkpoint with --framing center; the default framing has none of its own and refuses a copied one."""
    import shutil

    from deepdance import gentypes

    import DanceDemo
    import Evaluate
    import GenVanillaNN

    clip = str(short_clip)
    quick = ["--epochs", "1", "--batch", "4", "--device", "cpu"]
    assert GenVanillaNN.main([clip, "false", "2", *quick, "--framing", "center"]) == 0
    center = cache.VideoSkeleton(short_clip, framing="center", verbose=False)
    person = cache.VideoSkeleton(short_clip, verbose=False)
    assert center.key == person.key + "-center" and center.framing == "center" and person.framing == "person"
    best = gentypes.checkpoint_dir(center, 3) / "best.pth"
    assert best.is_file() and not gentypes.checkpoint_dir(person, 3).exists()

    meta = Evaluate.main(["--video_path", clip, "--framing", "center", "--gen_type", "3", "--out", str(tmp_path / "e")])
    assert meta["target_key"] == center.key and list(meta["results"]) == ["3"] and meta["crop"] == list(center.crop)
    out = tmp_path / "demo.mp4"
    stats = DanceDemo.main(["--video_path", clip, "--framing", "center", "--gen_type", "3", "--source", clip,
                            "--out", str(out)])  # fmt: skip
    assert stats["frames"] == 60 and out.is_file()

    with pytest.raises(cli.UserError, match=r"no checkpoint for gen_type 3 on short: train it with .* false 2$"):
        gentypes.load_generator(person, 3, device="cpu")
    shutil.copytree(best.parent, gentypes.checkpoint_dir(person, 3))  # the centre crop's model under the person's
    with pytest.raises(cli.UserError, match=r"framing center \(this cache: person\); retrain it with"):
        gentypes.load_generator(person, 3, device="cpu")
    shutil.rmtree(gentypes.checkpoint_dir(person, 3))  # the session's other tests find short_clip as it was
    shutil.rmtree(best.parent)
    with pytest.raises(cli.UserError, match=r"train it with python GenVanillaNN.py .* false 2 --framing center$"):
        gentypes.load_generator(center, 3, device="cpu")


def test_framing_bench_scores_generated_squares_in_the_videos_pixels():
    from bench import framing
    from conftest import POSE

    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (2, 50, 70, 3), np.uint8)
    crop = (40, -10, 40)  # sticks out at the top and the right: padded there
    squares = np.stack([video.cut_square(f, crop, 40) for f in raw])  # at the crop's side: no resampling
    for f, sq in zip(raw, squares, strict=True):
        np.testing.assert_array_equal(framing.into_source(f, sq, crop), f)  # put back where it was cut from
    xy = np.repeat(POSE[None], 2, axis=0)
    x0, y0, x1, y1 = framing.source_box(xy[0], crop, 70, 50)
    px = np.float32(crop[:2]) + xy[0] * crop[2]  # the joints in the video's pixels (the nose above its top)
    assert x0 < px[:, 0].min() and px[:, 0].max() < x1 <= 70 and y0 == 0 and px[:, 1].max() < y1 <= 50
    ssim, l1 = framing.source_scores(squares, raw, xy, crop)
    np.testing.assert_allclose(ssim, 1.0)
    np.testing.assert_array_equal(l1, 0.0)
    small = np.stack([cv2.resize(s, (16, 16), interpolation=cv2.INTER_AREA) for s in squares])  # a 16 px generator
    ssim16, l1_16 = framing.source_scores(small, raw, xy, crop)
    assert np.all(ssim16 < 0.9) and np.all(l1_16 > 0.01)


@pytest.mark.slow
def test_framing_bench_compares_both_framings_on_the_same_frames(short_clip):
    proc = run_script("bench/framing.py", "--video", short_clip, "--gen_type", "1,3")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"python -m bench.framing --video {short_clip} --gen_type 1,3"
    assert any("test block, 9 frames (cache rows 51-59)" in line for line in lines)
    rows = [line.split(" | ") for line in lines if line.startswith("| 1 |")]
    assert [r[1] for r in rows] == ["person", "center"] and all(0 < float(r[3]) < 1 for r in rows)
    assert any(
        line.startswith("- gen_type 3, framing center: ") and line.endswith(" --framing center") for line in lines
    )


@pytest.mark.parametrize(
    "module, argv",
    [("GenVanillaNN", ["x.mp4"]), ("GenGAN", ["x.mp4"]), ("GenTexture", ["x.mp4"]), ("GenNearest", ["x.mp4"]),
     ("Evaluate", []), ("DanceDemo", []), ("DanceDemo", ["--live"])],
)  # fmt: skip
def test_every_script_that_opens_a_target_takes_the_framing(module, argv, capsys):
    import importlib

    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as e:
        main([*argv, "-h"])
    assert e.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "--framing {person,center}" in shown and "(default person)" in shown
    with pytest.raises(SystemExit) as e:
        main([*argv, "--framing", "face"])
    assert e.value.code == 2 and "invalid choice: 'face'" in capsys.readouterr().err
