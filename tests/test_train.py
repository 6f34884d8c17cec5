"""Train.py, the machinery both trainers share: passive OpenMP waiting in every entry point, the one inference
loop, the cumulative image count in train_log.csv, keyword-only calls."""

import csv
import json
import os
import subprocess
import sys

from deepdance import checkpoints, gan, losses, trained, trainer, vanilla

import numpy as np
import pytest
import torch

from conftest import ROOT, FakeVS


@pytest.mark.slow
@pytest.mark.parametrize("script", ["GenVanillaNN.py", "GenGAN.py", "DanceDemo.py", "Evaluate.py"])
def test_entry_points_make_openmp_wait_passively(script):
    """OMP_WAIT_POLICY must be set before torch loads OpenMP: GOMP_SPINCOUNT 0, not the spinning 300000."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | {"OMP_DISPLAY_ENV": "VERBOSE"}
    code = f"import runpy, sys; sys.argv = [{script!r}, '--help']; runpy.run_path({script!r}, run_name='__main__')"
    if script in ("DanceDemo.py", "Evaluate.py"):  # torch is imported by trained gen_types only: load it here
        code = f"import sys; sys.argv = [{script!r}]; import {script[:-3]}; import torch; torch.zeros(1) + 1"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    spin = [line.strip() for line in r.stderr.splitlines() if "GOMP_SPINCOUNT" in line]
    assert spin == ["GOMP_SPINCOUNT = '0'"], r.stderr[-2000:]


def test_render_poses_batches_skip_invalid_poses_and_restore_the_mode():
    net = torch.nn.Sequential(torch.nn.Linear(2, 3 * 4 * 4), torch.nn.Unflatten(1, (3, 4, 4)), torch.nn.Tanh())
    net.train()
    poses = np.random.default_rng(0).normal(size=(7, 2)).astype(np.float32)
    valid = np.array([1, 1, 0, 1, 1, 1, 0], bool)
    out = trained.render_poses(net, poses, torch.from_numpy, size=4, device=torch.device("cpu"), valid=valid, batch=2)
    assert out.shape == (7, 4, 4, 3) and out.dtype == np.uint8
    assert not out[~valid].any() and out[valid].any()
    whole = trained.render_poses(net, poses, torch.from_numpy, size=4, device=torch.device("cpu"), batch=64)
    np.testing.assert_array_equal(out[valid], whole[valid])  # batching does not change a frame
    assert net.training


@pytest.mark.usefixtures("one_thread")
def test_images_column_is_cumulative_in_both_trainers(tmp_path):
    vs = FakeVS(tmp_path, n=40)
    tiny = {"ch": [8, 16], "n_res": 1}
    vcfg = vanilla.VanillaConfig(epochs=2, batch=8, size=32, device="cpu", model_args=tiny)
    vanilla.train(vs, vcfg, out=tmp_path / "v", verbose=False)
    gcfg = gan.GANConfig(epochs=2, batch=8, size=32, device="cpu", g_args=tiny, d_args={"ndf": 8},
                            init_from_vanilla=False, temporal=True)  # fmt: skip
    gan.train(vs, gcfg, out=tmp_path / "g", verbose=False)
    for folder, per_step in (("v", 8), ("g", 6)):  # the temporal GAN: 2 windows x 3 generated frames a step
        with open(tmp_path / folder / "train_log.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert [int(r["images"]) for r in rows] == [int(r["step"]) * per_step for r in rows]
        assert int(rows[1]["images"]) > int(rows[0]["images"])


def test_shared_calls_are_keyword_only():
    with pytest.raises(TypeError):
        trainer.TrainRun("out", 1, 1, 1, 0.0, {})
    with pytest.raises(TypeError):
        checkpoints.load_checkpoint("x.pth", "fmt")


def test_ssim_loss_is_one_minus_evaluates_ssim_and_has_a_gradient():
    from deepdance.metrics import image_metrics

    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (3, 24, 24, 3), dtype=np.uint8)
    fake = np.clip(real.astype(int) + rng.integers(-60, 60, real.shape), 0, 255).astype(np.uint8)

    def tensor(u):
        return torch.from_numpy(u).permute(0, 3, 1, 2).float() / 127.5 - 1.0

    x = tensor(fake).requires_grad_(True)
    loss = losses.ssim_loss(x, tensor(real))
    ssim = image_metrics(fake, real, np.full((3, 13, 2), 0.5, np.float32))["ssim"]
    assert abs((1 - loss.item()) - ssim) < 1e-5 and 0.5 < ssim < 0.95
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert losses.ssim_loss(tensor(real), tensor(real)).item() < 1e-6
    flat = torch.zeros(1, 3, 24, 24)  # a flat frame against a textured one: SSIM's contrast term says it is wrong
    assert losses.ssim_loss(flat, tensor(real[:1])).item() > 0.9


@pytest.mark.usefixtures("one_thread")
def test_config_json_beside_the_checkpoints_marks_what_was_changed(tmp_path):
    tiny = {"ch": [8, 16], "n_res": 1}
    cfg = vanilla.VanillaConfig(epochs=1, batch=8, size=32, device="cpu", model_args=tiny, lr=5e-4)
    vanilla.train(FakeVS(tmp_path, n=40), cfg, out=tmp_path / "v", verbose=False)
    doc = json.loads((tmp_path / "v" / "config.json").read_text())
    assert doc["config"]["lr"] == 5e-4 and doc["config"]["variant"] == 2 and doc["world_size"] == 1
    assert doc["changed"]["lr"] == {"value": 5e-4, "default": vanilla.LR}
    assert "variant" not in doc["changed"] and "seed" not in doc["changed"]  # defaults are not listed as changed
    ckpt = torch.load(tmp_path / "v" / "best.pth", weights_only=True)
    stored = {k: v for k, v in ckpt["config"].items() if k != "world_size"}
    assert json.loads(json.dumps(stored)) == doc["config"]  # the same settings as the checkpoint holds


@pytest.mark.usefixtures("one_thread")
def test_mediapipe_terms_reach_the_loss_and_the_log(tmp_path):
    """--lambda_feat puts the pose-net feature term into training (logged as train_mp_features); with every MediaPipe
    weight at 0 the column is absent and nothing of MediaPipe is built."""
    tiny = {"ch": [8, 16], "n_res": 1}
    for name, weight in (("off", 0.0), ("on", 0.5)):
        cfg = vanilla.VanillaConfig(epochs=1, batch=8, size=32, device="cpu", model_args=tiny, lambda_feat=weight)
        vanilla.train(FakeVS(tmp_path, n=40), cfg, out=tmp_path / name, verbose=False)
    with open(tmp_path / "on" / "train_log.csv", newline="") as f:
        on = list(csv.DictReader(f))
    with open(tmp_path / "off" / "train_log.csv", newline="") as f:
        off = list(csv.DictReader(f))
    assert "train_mp_features" not in off[0] and float(on[0]["train_mp_features"]) > 0
    # The loss holds the weighted term on top of the same pixel L1's weight: it is larger than the L1 alone.
    assert float(on[0]["train_loss"]) > 2 * float(on[0]["train_l1"])


@pytest.mark.usefixtures("one_thread")
def test_mediapipe_terms_score_mp_frames_of_each_batch(tmp_path, monkeypatch):
    """--mp_frames N: the MediaPipe terms see the first N frames of each (shuffled) batch; 0: all of them."""
    from deepdance.perceptual import PerceptualLoss

    seen, forward = [], PerceptualLoss.forward

    def spy(self, fake, real, xy):
        seen.append((len(fake), len(real), len(xy)))
        return forward(self, fake, real, xy)

    monkeypatch.setattr(PerceptualLoss, "forward", spy)
    tiny = {"ch": [8, 16], "n_res": 1}
    for n, want in ((3, 3), (0, 8)):
        seen.clear()
        cfg = vanilla.VanillaConfig(
            epochs=1, batch=8, size=32, device="cpu", model_args=tiny, lambda_feat=0.5, mp_frames=n
        )
        vanilla.train(FakeVS(tmp_path, n=40), cfg, out=tmp_path / f"n{n}", verbose=False)
        assert seen and set(seen) == {(want, want, want)}
