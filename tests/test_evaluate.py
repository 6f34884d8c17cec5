"""Evaluate: metrics on synthetic cases with known answers, the held-out block, the CLI, the dump round trip."""

import json
from types import SimpleNamespace

from deepdance import evaluation, metrics, pose
from deepdance.cache import BLOCK_GAP
from deepdance.cli import UserError, run_cli
from deepdance.metrics import image_metrics
from deepdance.transfer import PoseNormalizer

import cv2
import numpy as np
import pytest

import Evaluate
from bench import verify_dump
from conftest import FakeTarget, run_script

S = 64


def texture(n=4, size=S, seed=0):
    """(n, S, S, 3) uint8 smooth random texture: detail everywhere, no flat areas."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (n, size, size, 3)).astype(np.float32)
    return np.stack([cv2.GaussianBlur(f, (0, 0), 1.0) for f in noise]).clip(0, 255).astype(np.uint8)


def full_frame_poses(n):
    """Poses whose body box covers most of the frame (so box metrics see the whole texture)."""
    xy = np.zeros((n, 13, 2), np.float32)
    xy[:, :, 0] = np.linspace(0.15, 0.85, 13)
    xy[:, :, 1] = np.linspace(0.1, 0.9, 13)
    return xy


# --------------------------------------------------------------------------- metrics with known answers


def test_identical_images_score_perfectly():
    real = texture()
    xy = full_frame_poses(len(real))
    m = metrics.all_metrics(real.copy(), real, xy, np.ones(len(real) - 1, bool))
    assert m["l1"] == 0 and m["box_l1"] == 0
    assert m["ssim"] == pytest.approx(1.0) and m["box_ssim"] == pytest.approx(1.0)
    assert np.isfinite(m["psnr"]) and m["psnr"] > 100  # MSE floored: high, not inf
    assert m["sharpness"] == pytest.approx(1.0) and m["flicker"] == pytest.approx(1.0)
    assert m["detail"] == pytest.approx(1.0)


def test_shifted_image_keeps_its_sharpness_but_loses_similarity():
    real = texture()
    fake = np.roll(real, 3, axis=2)  # 3 px to the right
    xy = full_frame_poses(len(real))
    m = metrics.all_metrics(fake, real, xy, np.ones(len(real) - 1, bool))
    assert m["ssim"] < 0.5 and m["box_ssim"] < 0.5 and m["l1"] > 0.02 and m["psnr"] < 25
    assert m["sharpness"] == pytest.approx(1.0, abs=0.05) and m["detail"] == pytest.approx(1.0, abs=0.1)


def test_fine_detail_drops_faster_than_sharpness_under_the_generators_blur():
    """A sigma-1 blur (the generators' level) leaves much of the Sobel energy but little of the finest band."""
    real = texture()
    fake = np.stack([cv2.GaussianBlur(f, (0, 0), 1.0) for f in real])
    m = metrics.all_metrics(fake, real, full_frame_poses(len(real)), np.ones(len(real) - 1, bool))
    assert 0 < m["detail"] < 0.6 * m["sharpness"] < 0.6


def test_constant_image_has_no_sharpness_and_a_static_clip_no_flicker():
    real = texture()
    fake = np.full_like(real, 128)
    xy = full_frame_poses(len(real))
    m = metrics.all_metrics(fake, real, xy, np.ones(len(real) - 1, bool))
    assert m["sharpness"] == 0.0 and m["detail"] == 0.0
    assert m["flicker"] == 0.0 and m["tdiff"] == 0.0 and m["tdiff_real"] > 0
    assert m["ssim"] < 0.3  # structure (covariance) term is 0; only the matching mean is left


def test_flicker_counts_consecutive_pairs_only():
    real = np.stack([np.full((S, S, 3), v, np.uint8) for v in (100, 102, 104)])  # brightening by 2 per frame
    fake = np.stack([np.full((S, S, 3), v, np.uint8) for v in (100, 102, 150)])  # a jump between frames 1 and 2
    f = metrics.flicker(fake, real, np.array([True, True]))
    assert f["tdiff_real"] == pytest.approx(2 / 255) and f["flicker"] == pytest.approx((2 + 48) / 2 / 2)
    assert metrics.flicker(fake, real, np.array([True, False]))["flicker"] == pytest.approx(1.0)
    assert np.isnan(metrics.flicker(fake, real, np.array([False, False]))["flicker"])


def test_pose_found_near_counts_only_the_person_where_the_skeleton_put_them():
    from deepdance.skeleton import body_height

    xy = np.repeat(full_frame_poses(1) * 0.5 + 0.2, 4, axis=0)  # (4, 13, 2)
    h = body_height(xy[0])
    found = xy.copy()
    found[1, :, 0] += 0.3 * h  # found 0.3 body heights to the side: still the person, a little off
    found[2, :, 1] += 2.0 * h  # two body heights away: something else
    found[3] = np.nan  # nobody
    c = metrics.pose_consistency(found, xy)
    assert c["pose_found"] == 0.75 and c["pose_near"] == 0.5  # near: half a body height (metrics.POSE_NEAR)
    assert c["pose_err"] == pytest.approx((0 + 0.3 + 2.0) / 3, rel=1e-5)
    assert metrics.pose_consistency(found[3:], xy[3:]) == {
        "pose_found": 0.0,
        "pose_near": 0.0,
        "pose_err": pytest.approx(np.nan, nan_ok=True),
    }


def test_body_boxes_hold_the_joints_and_stay_in_the_frame():
    xy = full_frame_poses(2) * 0.5 + 0.2
    xy[1] = xy[1] * 0.1  # a tiny pose in the corner: the box still has SSIM's 7 px
    boxes = metrics.body_boxes(xy, S)
    assert boxes.dtype == np.int32 and (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= S).all()
    assert (boxes[:, 2] - boxes[:, 0] >= 7).all() and (boxes[:, 3] - boxes[:, 1] >= 7).all()
    px = xy[0] * S
    x0, y0, x1, y1 = boxes[0]
    assert (px[:, 0] >= x0).all() and (px[:, 0] <= x1).all() and (px[:, 1] >= y0).all() and (px[:, 1] <= y1).all()


def test_pose_consistency_finds_the_person_in_real_frames_and_nobody_in_black_ones(sample_vs):
    pick = sample_vs.split().test[:12]
    real, xy = sample_vs.frames(128)[pick], sample_vs.skeletons()[pick]
    good = metrics.pose_consistency(pose.detect_poses(real), xy)
    assert good["pose_found"] == good["pose_near"] == 1.0 and good["pose_err"] < 0.03
    black = metrics.pose_consistency(pose.detect_poses(np.zeros_like(real[:4])), xy[:4])
    assert black["pose_found"] == 0.0 and np.isnan(black["pose_err"])


# --------------------------------------------------------------------------- what is evaluated


def test_test_block_is_disjoint_from_the_training_frames_and_nearest_copies_only_those(sample_vs):
    es, train = evaluation.held_out_set(sample_vs, S)
    blocks = sample_vs.split()
    assert es.name == "test" and np.array_equal(es.positions, blocks.test) and np.all(np.diff(es.positions) == 1)
    assert not set(train.tolist()) & set(es.positions.tolist())
    assert es.positions[0] - blocks.select[-1] > BLOCK_GAP  # the selection block and a gap lie between them
    select, _ = evaluation.held_out_set(sample_vs, S, "select")
    assert np.array_equal(select.positions, blocks.select)
    assert es.consecutive.all() and len(es.consecutive) == len(es) - 1
    results, outputs, skipped, warnings = evaluation.evaluate(es, [1], train)
    assert not skipped and not warnings and outputs[1].shape == es.real.shape
    train_frames = {f.tobytes() for f in sample_vs.frames(S)[train]}
    assert all(f.tobytes() in train_frames for f in outputs[1])
    # The control: retrieving from every frame, the test block finds itself (a leak: a perfect L1), and is flagged.
    leak, _, _, flagged = evaluation.evaluate(es, [1], np.arange(len(sample_vs)))
    assert leak[1]["l1"] == 0 and results[1]["l1"] > 0
    assert "copies frames from the evaluated block" in flagged[1]


def test_gen_size_scores_a_smaller_model_scaled_up_to_the_size_shown(sample_vs):
    es, train = evaluation.held_out_set(sample_vs, 2 * S)
    full, outputs, _, _ = evaluation.evaluate(es, [1], train, pose=False)
    small, scaled, _, _ = evaluation.evaluate(es, [1], train, pose=False, gen_size=S)
    assert scaled[1].shape == outputs[1].shape == es.real.shape
    # The same frames retrieved, shown from 64 px: blurrier than the stored 128 px frames themselves.
    assert small[1]["sharpness"] < 0.8 * full[1]["sharpness"]
    assert np.abs(scaled[1].astype(int) - outputs[1]).mean() < 6


def test_a_checkpoint_trained_on_the_evaluated_block_is_flagged(sample_vs):
    from types import SimpleNamespace

    es, train = evaluation.held_out_set(sample_vs, S)
    sha = sample_vs.meta["sha256"]
    held_out = SimpleNamespace(data={"sha256": sha, "train": [0, int(train[-1]) + 1]})
    leaky = SimpleNamespace(data={"sha256": sha, "train": [0, len(sample_vs)]})
    other = SimpleNamespace(data={"sha256": "0" * 64, "key": "other-0000", "train": [0, 10]})
    assert evaluation.leak_warning(held_out, es) is None and evaluation.leak_warning(SimpleNamespace(), es) is None
    assert "overlap the evaluated block" in evaluation.leak_warning(leaky, es)
    assert "other footage (other-0000)" in evaluation.leak_warning(other, es)


def test_normalised_test_clip_maps_generated_frames_back_onto_its_own():
    test_xy = full_frame_poses(5) * 0.5 + np.float32([0.1, 0.3])  # small, low left
    target_xy = test_xy * 1.6 - np.float32([0.05, 0.5])  # larger, elsewhere
    es = evaluation.clip_set(FakeTarget(test_xy), FakeTarget(target_xy), S, normalize=True)
    norm = PoseNormalizer.fit(test_xy, target_xy)
    assert norm.scale == pytest.approx(1.6, rel=1e-4)
    np.testing.assert_allclose(es.xy_in, target_xy, atol=1e-5)
    # A disk at joint 6 where the generator would draw it (target placement) lands on the test frame's joint 6.
    fake = np.zeros((5, S, S, 3), np.uint8)
    for f, p in zip(fake, es.xy_in[:, 6] * S - 0.5, strict=True):  # pixel i is centred at i + 0.5
        cv2.circle(f, tuple(np.round(p * 16).astype(int).tolist()), 4 * 16, (255, 255, 255), -1, cv2.LINE_AA, 4)
    back = es.to_real_space(fake)[..., 0].astype(np.float64)
    yy, xx = np.mgrid[:S, :S]
    centroid = np.stack([(b * xx).sum() / b.sum() for b in back]), np.stack([(b * yy).sum() / b.sum() for b in back])
    np.testing.assert_allclose(np.stack(centroid, 1) + 0.5, test_xy[:, 6] * S, atol=0.3)


def test_gen_type_parsing():
    assert evaluation.parse_gen_types("all") == list(range(1, 10))
    assert evaluation.parse_gen_types("3,1,3") == [1, 3]
    for bad, message in (("10", "unknown gen_type 10"), ("1,x", "must be 'all' or numbers")):
        with pytest.raises(UserError, match=message):
            evaluation.parse_gen_types(bad)


def test_figure_strip_drops_rows_to_fit_its_byte_budget():
    class Frames(SimpleNamespace):  # what strip_image reads of an EvalSet
        def __len__(self):
            return len(self.real)

    es = Frames(xy=full_frame_poses(8), size=S, real=texture(8))
    outputs = {1: texture(8, seed=1), 3: texture(8, seed=2)}  # noise textures: a PNG that compresses badly
    full = evaluation.strip_image(es, outputs, 8)

    def size_of(img):
        return len(cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1])

    assert evaluation.fit_strip(es, outputs, 8, size_of(full)).shape == full.shape  # fits: all rows kept
    fitted = evaluation.fit_strip(es, outputs, 8, size_of(full) // 2)
    assert fitted.shape[1] == full.shape[1] and fitted.shape[0] < full.shape[0]
    assert size_of(fitted) <= size_of(full) // 2
    assert (
        evaluation.fit_strip(es, outputs, 8, 1).shape == evaluation.strip_image(es, outputs, 1).shape
    )  # never fewer than one row


def test_chart_is_deterministic(tmp_path):
    results = {1: {"l1": 0.02, "psnr": 25.0, "ssim": 0.9, "box_ssim": 0.7, "sharpness": 1.0, "flicker": 1.2}}
    results[3] = {**results[1], "sharpness": 0.6, "flicker": float("nan")}
    evaluation.write_chart(tmp_path / "a.png", results, "t")
    evaluation.write_chart(tmp_path / "b.png", results, "t")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert cv2.imread(str(tmp_path / "a.png")) is not None


# --------------------------------------------------------------------------- the command


@pytest.mark.slow
def test_cli_end_to_end_with_skips_and_the_dump_round_trip(sample_vs, tmp_path):
    out, dump = tmp_path / "eval", tmp_path / "frames.npz"
    r = run_script("Evaluate.py", "--gen_type", "1,2,4", "--out", out, "--dump", dump, "--figures", tmp_path / "fig")
    assert r.returncode == 0, r.stderr
    assert "| 1 | nearest |" in r.stdout and "n/a below 128 px" in r.stdout
    header = [line for line in r.stdout.splitlines() if line.startswith("evaluating on the")]
    assert header and header[0].startswith("evaluating on the test block of "), header
    skipped = [line for line in r.stdout.splitlines() if line.startswith("- skipped gen_type")]
    assert len(skipped) == 2
    assert "python GenVanillaNN.py" in skipped[0] and "python GenGAN.py" in skipped[1]
    meta = json.loads((out / "metrics.json").read_text())
    assert list(meta["results"]) == ["1"] and sorted(meta["skipped"]) == ["2", "4"]
    val = sample_vs.split().test
    assert meta["eval"]["positions"] == [int(val[0]), int(val[-1])] and meta["eval"]["frames"] == len(val)
    for png in (out / "strip.png", out / "chart.png", tmp_path / "fig" / "eval_strip.png"):
        assert cv2.imread(str(png)) is not None and png.stat().st_size < 300_000
    assert (out / "strip.png").read_bytes() == (tmp_path / "fig" / "eval_strip.png").read_bytes()
    assert not list(tmp_path.rglob(".tmp-*"))

    with np.load(dump, allow_pickle=False) as z:
        assert z["real"].dtype == np.uint8 and z["fake_1"].shape == z["real"].shape == (len(val), S, S, 3)
        assert z["skeleton"].dtype == np.uint8 and z["gen_types"].tolist() == [1]
        assert z["crop"].tolist() == list(sample_vs.crop) == meta["crop"]  # (x0, y0, side) of the source frames
        # The dump's frames reproduce the table's whole-image numbers with the library metrics too.
        m = image_metrics(z["fake_1"], z["real"], z["xy"])
        assert m["ssim"] == pytest.approx(meta["results"]["1"]["ssim"], abs=1e-9)
        arrays = {k: z[k] for k in z.files}
    v = run_script("bench/verify_dump.py", dump)
    assert v.returncode == 0 and "agree" in v.stdout, v.stdout + v.stderr
    # A dump whose reported SSIM was changed in the 3rd decimal no longer verifies.
    names = arrays["metric_names"].tolist()
    arrays["metrics_1"] = arrays["metrics_1"].copy()
    arrays["metrics_1"][names.index("ssim")] += 0.002
    np.savez(tmp_path / "tampered.npz", **arrays)
    with pytest.raises(SystemExit) as e:
        verify_dump.main([str(tmp_path / "tampered.npz")])
    assert e.value.code == 1


def test_background_bench_puts_the_gap_where_it_was_made(tmp_path, capsys):
    from bench import background
    from conftest import POSE

    size = 64
    real = texture(6, size)
    xy = np.repeat(POSE[None], 6, axis=0)
    weights = background.person_weights(xy, size, 0.1)  # (N, S, S) in [0, 1]
    fake = real.copy()
    fake[weights < 0.01] = 128  # the generator got the person right and painted the pixels wholly off it flat
    scores = background.split_scores(background.composites(fake, real, weights), real, xy)
    as_made, its_person, real_person = (scores[k] for k in scores)
    assert as_made[0] < 0.95 and as_made[1] > 0.01 and as_made[2] < 0.8  # the flat background costs ...
    assert its_person[0] == pytest.approx(1.0, abs=0.01) and its_person[2] == pytest.approx(1.0, abs=0.01)
    assert real_person == pytest.approx(as_made, abs=0.01)  # ... and the real person changes nothing
    area, energy = background.person_share(real, xy, weights)
    assert 0.2 < area < 0.8 and energy == pytest.approx(area, abs=0.1)  # detail everywhere: energy goes as area
    np.savez(tmp_path / "d.npz", real=real, xy=xy, fake_3=fake)
    assert background.main([str(tmp_path / "d.npz")]) == 0
    out = capsys.readouterr().out
    assert "| 3 | its person, the real background | 1.000 | 0.0000 | 1.00 |" in out and "holds" in out
    for argv, message in ((["missing.npz"], "dump not found"), ([str(tmp_path / "d.npz"), "--width", "0"], "--width")):
        with pytest.raises(SystemExit):
            run_cli(background.main, argv)
        err = capsys.readouterr().err.strip()
        assert message in err and err.startswith("error:") and len(err.splitlines()) == 1


def test_background_bench_tells_which_part_hides_the_person_from_mediapipe(sample_vs):
    from bench import background

    pick = sample_vs.split().test[:8]
    real, xy = sample_vs.frames(128)[pick], sample_vs.skeletons()[pick]
    weights = background.person_weights(xy, 128, 0.1)
    fake = real.copy()
    for f, w in zip(fake, weights, strict=True):  # the person erased: a grey box over them (a grey silhouette of them
        ys, xs = np.nonzero(w > 0)  # would still be a person to MediaPipe, given its margin)
        f[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = 128
    scores = background.split_scores(background.composites(fake, real, weights), real, xy, pose=True)
    as_made, its_person, real_person = (scores[k][3:] for k in scores)  # [found, found near]
    assert as_made == [0.0, 0.0] and real_person == [1.0, 1.0]  # the box hides the person; the real one is found
    assert its_person != as_made  # pasted on the real background, the erased person's silhouette is judged apart


def test_sharpen_bench_amplifies_what_the_frames_have(tmp_path, capsys):
    from bench import background, sharpen

    real = texture(4)
    xy = full_frame_poses(4)
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 1.0) for f in real])
    flat = np.full_like(real, 128)
    scores = background.split_scores({"before": blurred, "after": sharpen.unsharp(blurred, 1.0, 0.5)}, real, xy)
    before, after = scores["before"], scores["after"]
    assert after[2] > before[2] * 1.2 and after[1] != before[1]  # more gradient energy, other pixels
    np.testing.assert_array_equal(sharpen.unsharp(flat, 2.0, 0.6), flat)  # nothing to amplify: nothing added
    np.savez(tmp_path / "d.npz", real=real, xy=xy, fake_3=blurred)
    assert sharpen.main([str(tmp_path / "d.npz"), "--radius", "1", "--amount", "0.5"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 3 |")]
    assert len(rows) == 2 and rows[0].startswith("| 3 | - | - |") and "| 1.0 | 0.5 |" in rows[1]
    bad = ((["missing.npz"], "dump not found"), ([str(tmp_path / "d.npz"), "--amount", "0"], "--amount"))
    for argv, message in bad:
        with pytest.raises(SystemExit):
            run_cli(sharpen.main, argv)
        err = capsys.readouterr().err.strip()
        assert message in err and err.startswith("error:") and len(err.splitlines()) == 1


def test_independent_ssim_matches_the_library_on_odd_crops():
    from skimage.metrics import structural_similarity

    a, b = texture(2, seed=1)
    for crop in (np.s_[:, :], np.s_[5:12, 3:40], np.s_[10:57, 20:27]):
        ref = structural_similarity(a[crop], b[crop], channel_axis=-1, data_range=255)
        assert verify_dump.ssim(a[crop], b[crop]) == pytest.approx(ref, abs=1e-9)


def test_independent_fine_detail_matches_opencv_on_odd_crops():
    a = texture(1, seed=2)[0]
    for x0, y0, x1, y1 in ((0, 0, S, S), (3, 5, 40, 12), (20, 10, 27, 57)):
        ref = metrics.fine_energy(a[None], [(x0, y0, x1, y1)])[0]
        assert verify_dump.fine_energy(a, np.s_[y0:y1, x0:x1]) == pytest.approx(ref, rel=1e-5)


def test_test_clip_with_normalisation(sample_vs, short_clip, tmp_path):
    meta = Evaluate.main(["--gen_type", "1", "--test", str(short_clip), "--normalize", "--out", str(tmp_path)])
    assert meta["eval"]["set"] == "clip" and meta["eval"]["frames"] == 60 and meta["eval"]["normalize"]
    assert 0 < meta["results"]["1"]["l1"] < 0.2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--gen_type", "4"], "python GenGAN.py"),
        (["--gen_type", "2"], "python GenVanillaNN.py"),
        (["--gen_type", "10"], "unknown gen_type 10"),
        (["--normalize"], "--normalize applies to --test"),
        (["--dump", "frames.txt"], "--dump must name an .npz"),
        (["--strip_frames", "0"], "--strip_frames must be >= 1"),
        (["--test", "/no/such/clip.mp4"], "video not found"),
    ],
)
def test_cli_bad_input_is_one_line(argv, message, capsys, sample_vs, tmp_path):
    with pytest.raises(SystemExit) as e:
        run_cli(Evaluate.main, [*argv, "--out", str(tmp_path / "eval")])
    assert e.value.code != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "eval").exists()


def test_compare_puts_runs_of_the_same_block_side_by_side(tmp_path, capsys):
    from bench import compare

    real = texture(3)
    names = np.array(["box_ssim", "sharpness", "detail"])

    def dump(name, fake, real=real):
        path = tmp_path / name
        np.savez(path, real=real, xy=full_frame_poses(len(real)), metric_names=names, gen_types=np.array([9]),
                 fake_9=fake, metrics_9=np.array([0.5, 0.6, 0.3]))  # fmt: skip
        return path

    a, b = dump("a.npz", real // 2), dump("b.npz", real)
    assert compare.main([f"blurred={a}:9", f"sharp={b}:9", "--strip", str(tmp_path / "s.png")]) == 0
    out = capsys.readouterr().out
    assert "| blurred | 0.500 | 0.60 | 0.30 |" in out and "| sharp |" in out
    picture = cv2.imread(str(tmp_path / "s.png"))
    assert picture.shape == (16 + 3 * S, 4 * S + 3 * 2, 3)  # skeleton | two runs | real, three frames
    other = dump("c.npz", real, real=real[::-1].copy())
    for argv, message in (
        ([f"x={a}:9", f"y={other}:9"], "other frames"),
        ([f"x={a}:4"], "no gen_type 4"),
        ([str(a)], "LABEL=DUMP:GEN_TYPE"),
    ):
        with pytest.raises(SystemExit):
            run_cli(compare.main, argv)
        err = capsys.readouterr().err.strip()
        assert message in err and err.startswith("error:") and len(err.splitlines()) == 1
