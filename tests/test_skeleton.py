"""Skeleton: vector forms, normalisation invariances, drawing, the skeleton maps."""

from deepdance import cli, files, skeleton
from deepdance.skeleton import LIMBS, normalize, render_maps

import numpy as np
import pytest

from conftest import POSE


def test_vector_roundtrip_and_shape():
    s = skeleton.Skeleton(POSE)
    v = s.vector()
    assert v.shape == (26,) and v.dtype == np.float32
    np.testing.assert_array_equal(skeleton.Skeleton.from_vector(v).xy, POSE)


def test_normalized_is_translation_and_scale_invariant():
    moved = (POSE - 0.5) * 0.6 + [0.3, 0.45]
    a, b = skeleton.Skeleton(POSE).normalized(), skeleton.Skeleton(moved).normalized()
    assert a.shape == (26,)
    np.testing.assert_allclose(a, b, atol=1e-5)
    # hip-centred: the mid-hip sits at the origin
    xy = a.reshape(13, 2)
    np.testing.assert_allclose(0.5 * (xy[skeleton.L_HIP] + xy[skeleton.R_HIP]), 0.0, atol=1e-6)


def test_normalize_batches():
    batch = np.stack([POSE, POSE * 0.5, POSE + 0.1])
    out = normalize(batch)
    assert out.shape == (3, 26)
    np.testing.assert_allclose(out[0], out[1], atol=1e-5)


def test_bbox_and_margin():
    s = skeleton.Skeleton(POSE)
    x0, y0, x1, y1 = s.bbox()
    assert (x0, y0) == pytest.approx((0.34, 0.22)) and (x1, y1) == pytest.approx((0.66, 0.85))  # wrists, nose, ankles
    wide = s.bbox(margin=0.1)
    assert wide[0] < x0 and wide[1] < y0 and wide[2] > x1 and wide[3] > y1


def _colour_at(img, xy, a, b, t=0.5):
    p = (1 - t) * xy[a] + t * xy[b]
    x, y = np.round(p * img.shape[0]).astype(int)
    return tuple(int(c) for c in img[y, x])


def test_drawing_tells_left_from_right():
    size = 128
    img = render_maps(POSE[None], size)[0]
    swapped = POSE[list(skeleton.FLIP_PERM)]  # same places, left/right labels swapped (seen from behind)
    mirrored = render_maps(swapped[None], size)[0]
    # The person's left forearm (image right) is drawn in the left-forearm colour ...
    left_col = next(c for a, b, c in LIMBS if (a, b) == (skeleton.L_ELBOW, skeleton.L_WRIST))
    right_col = next(c for a, b, c in LIMBS if (a, b) == (skeleton.R_ELBOW, skeleton.R_WRIST))
    assert left_col != right_col
    assert _colour_at(img, POSE, skeleton.L_ELBOW, skeleton.L_WRIST) == left_col
    # ... and with the labels swapped the same image place holds the right forearm, in another colour.
    assert _colour_at(mirrored, POSE, skeleton.L_ELBOW, skeleton.L_WRIST) == right_col
    assert not np.array_equal(img, mirrored)


def test_flipped_mirrors_positions():
    moved = POSE.copy()
    moved[skeleton.L_WRIST] = [0.8, 0.2]  # left hand raised
    f = skeleton.Skeleton(moved).flipped()
    np.testing.assert_allclose(f.xy[skeleton.R_WRIST], [0.2, 0.2], atol=1e-6)
    np.testing.assert_allclose(f.flipped().xy, moved, atol=1e-6)


def test_every_limb_has_its_own_colour():
    colours = [c for _, _, c in LIMBS]
    assert len(set(colours)) == len(colours)


def test_to_image_layout_and_range():
    m = skeleton.Skeleton(POSE).to_image(64)
    assert m.shape == (3, 64, 64) and m.dtype == np.float32
    assert m.min() >= -1.0 and m.max() <= 1.0 and (m > -1).any()


def test_render_maps_is_fast_for_a_whole_video():
    import time

    xy = np.repeat(POSE[None], 2000, axis=0) + np.random.default_rng(0).normal(0, 0.01, (2000, 13, 2))
    t = time.perf_counter()
    maps = render_maps(xy.astype(np.float32), 64)
    assert maps.shape == (2000, 64, 64, 3)
    assert time.perf_counter() - t < 10  # generous: it takes well under a second


def test_nan_pose_draws_nothing():
    img = render_maps(np.full((1, 13, 2), np.nan, np.float32), 32)[0]
    assert not img.any()


def test_parse_bool():
    assert cli.parse_bool("True") and cli.parse_bool("1") and not cli.parse_bool("false")
    with pytest.raises(cli.UserError):
        cli.parse_bool("maybe")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "x.npy"
    with pytest.raises(RuntimeError), files.atomic_path(target) as tmp:
        np.save(tmp, np.zeros(3))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with files.atomic_path(target) as tmp:
        np.save(tmp, np.ones(3))
    assert np.load(target).sum() == 3 and [p.name for p in tmp_path.iterdir()] == ["x.npy"]


def test_person_mask_covers_the_limbs_and_scales_with_the_body():
    size = 128
    m = skeleton.person_mask(POSE[None], size, 0.1)[0]
    assert m.shape == (size, size) and m.dtype == np.float32 and set(np.unique(m)) <= {0.0, 1.0}
    for a, b, _ in LIMBS:  # the middle of every limb is on the person ...
        x, y = np.floor((0.5 * (POSE[a] + POSE[b if b >= 0 else skeleton.L_SHOULDER])) * size).astype(int)
        assert m[y, x] == 1
    assert m[:5].sum() == 0 and m[:, :5].sum() == 0  # ... the frame's edges are not
    hips = 0.5 * (POSE[skeleton.L_HIP] + POSE[skeleton.R_HIP])
    small = skeleton.person_mask(((POSE - hips) * 0.5 + hips)[None], size, 0.1)[0]
    assert small.sum() == pytest.approx(m.sum() / 4, rel=0.15)  # a share of body height: the area goes as its square
    wide = skeleton.person_mask(POSE[None], size, 0.2)[0]
    assert (wide >= m).all() and wide.sum() > 1.5 * m.sum()
    missing = POSE.copy()
    missing[skeleton.L_WRIST] = np.nan  # a joint MediaPipe did not find: that pose draws nothing, the others do
    both = skeleton.person_mask(np.stack([missing, POSE]), size, 0.1)
    assert both[0].sum() == 0 and np.array_equal(both[1], m)
