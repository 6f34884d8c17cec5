"""deepdance.perceptual's terms on synthetic frames (the built-in mannequin, rendered in memory), and a smoke test of
bench.perceptual's table and toy on tiny inputs."""

import math

from deepdance import mannequin
from deepdance.perceptual import PerceptualLoss

import cv2
import numpy as np
import pytest
import torch

import bench.perceptual as bp

SIZE = 64


@pytest.fixture(scope="module")
def figure():
    """Two mannequin frames cut to squares around the figure, (2, 64, 64, 3) uint8 BGR, and their joints (2, 13, 2)
    float32 in [0, 1] of the square."""
    frames, joints = mannequin.render_clip("target", index=[0, 300])
    side = mannequin.FRAME_H
    out, xy = [], []
    for f, j in zip(frames, joints, strict=True):
        x0 = int(np.clip(j[:, 0].mean() - side / 2, 0, mannequin.FRAME_W - side))
        out.append(cv2.resize(f[:, x0 : x0 + side], (SIZE, SIZE), interpolation=cv2.INTER_AREA))
        xy.append((j - [x0, 0]) / side)
    return np.stack(out), np.stack(xy).astype(np.float32)


@pytest.fixture(scope="module")
def tensors(figure):
    frames, xy = figure
    return bp.to_tensor(frames), torch.from_numpy(xy)


@pytest.fixture(scope="module")
def all_terms():
    return PerceptualLoss(features=1.0, pose=1.0, presence=1.0, mask=1.0)


def test_terms_finite_and_differentiable_wrt_fake_only(tensors, all_terms):
    real0, xy = tensors
    real = real0.clone().requires_grad_(True)
    fake = bp.gaussian_blur(real0, 1.0).requires_grad_(True)
    total, terms = all_terms(fake, real, xy)
    assert set(terms) == {"features", "pose", "presence", "mask"}
    assert all(torch.isfinite(v) and not v.requires_grad for v in terms.values())
    assert total.requires_grad and torch.isfinite(total)
    total.backward()
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0
    assert real.grad is None  # the real frame is a target: no gradient reaches it
    assert list(all_terms.parameters()) == [] and len(all_terms.state_dict()) == 0


def test_features_zero_for_identical_frames_and_grow_with_blur(tensors):
    real, xy = tensors
    loss = PerceptualLoss(features=1.0)
    with torch.no_grad():
        same = loss.terms(real, real, xy)["features"].item()
        blur = [loss.terms(bp.gaussian_blur(real, s), real, xy)["features"].item() for s in (0.5, 1.0, 2.0)]
    assert abs(same) < 1e-6
    assert 1e-3 < blur[0] < blur[1] < blur[2]


def test_pose_term_larger_for_a_displaced_skeleton(tensors):
    real, xy = tensors
    loss = PerceptualLoss(features=0.0, pose=1.0)
    with torch.no_grad():
        true = loss.terms(real, real, xy)["pose"].item()
        moved = loss.terms(real, real, xy + 0.1)["pose"].item()
    assert set(loss.terms(real, real, xy)) == {"pose"}  # only the terms with a weight
    assert true < 0.05  # frame units: the net finds the figure's joints
    assert moved > true + 0.05  # ~0.1 * sqrt(2) further


def test_presence_in_a_sane_range(tensors):
    real, xy = tensors
    loss = PerceptualLoss(features=0.0, presence=1.0)
    with torch.no_grad():
        person = loss.terms(real, real, xy)["presence"].item()
        empty = loss.terms(torch.zeros_like(real), real, xy)["presence"].item()  # a flat grey frame
    assert 0.0 <= person < math.log(2)  # -log flag: the flag is > 0.5 on the figure
    assert math.isfinite(empty) and empty > person


def test_degradations():
    x = torch.rand(1, 3, 16, 16)
    moved = bp.shift(x, 2, -1)
    assert torch.equal(moved[..., :-1, 2:], x[..., 1:, :-2])
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(bp.gaussian_blur(flat, 1.0), flat) and torch.allclose(bp.down_up(flat), flat)
    assert bp.gaussian_blur(x, 1.0).shape == x.shape and bp.down_up(x).shape == x.shape
    frame = ((x[0].permute(1, 2, 0) + 1) * 127.5).round().to(torch.uint8).numpy()[None]
    assert np.array_equal(bp.to_uint8(bp.to_tensor(frame)), frame)


def test_wrong_pose_partners():
    xy = np.zeros((5, 13, 2), np.float32)
    xy[:, :, 0] = np.array([0.0, 0.05, 0.1, 0.2, 0.3])[:, None]
    other, moved = bp.wrong_pose_partners(xy, np.array([0, 4]), target=0.15)
    assert other.tolist() == [3, 2] and np.allclose(moved, [0.2, 0.2])


def test_bench_table_smoke(figure):
    frames, xy = figure
    table, detail = bp.sensitivity(frames, xy, frames[::-1].copy(), crop_size=64, chunk=1)
    assert set(table) == set(bp.VARIANTS) == set(detail)
    keys = {"pixel MSE", "pixel L1", "term features", "term pose", "term presence", "term mask"}
    assert keys | {f"tap {t}" for t in bp.TAPS} == set(table["real"])
    assert all(math.isfinite(v) for row in table.values() for v in row.values())
    assert table["real"]["pixel MSE"] == 0 and detail["real"] == pytest.approx(1.0)
    assert table["blur"]["pixel MSE"] > 0 and detail["blur"] < 1.0
    lines = bp.sensitivity_markdown(table, detail)
    assert len(lines) == 2 + len(table["real"]) + 1 and all(line.startswith("|") for line in lines)


def test_bench_toy_smoke(figure):
    frames, xy = figure
    start = bp.toy_result(bp.SoftKernel(), frames, xy)
    assert bp.shift_average(frames, xy)["detail"] < start["detail"] < 1.0
    assert start["centre"] == pytest.approx(bp.START_CENTRE, abs=1e-4)
    results = {"start": start}
    for name in bp.TOY_LOSSES:
        r = bp.train_toy(frames, xy, loss=name, steps=2, batch=2, crop_size=64)
        assert 0 < r["detail"] < 1.5 and 0 < r["centre"] < 1 and r["radius"] > 0
        results[name] = r
    lines = bp.toy_markdown(results)
    assert len(lines) == 2 + len(results)
