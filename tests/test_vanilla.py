"""GenVanillaNN: network shapes and ranges, metrics, augmentation geometry, train / save / load / resume, the CLI.

Training runs on a tiny synthetic target (a stick figure moving over a gradient), never on ../shared.
"""

from pathlib import Path

from deepdance import checkpoints, losses, metrics, networks, recipes, trained, training_data, vanilla
from deepdance.cli import UserError

import numpy as np
import pytest
import torch

from conftest import POSE, FakeVS, run_script

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def fake_vs(tmp_path):
    return FakeVS(tmp_path)


def tiny_cfg(variant=2, **kw):
    """A fast run: 1 epoch, batch 8, on the CPU."""
    return vanilla.VanillaConfig(variant=variant, epochs=kw.pop("epochs", 1), batch=8, device="cpu", **kw)


# --------------------------------------------------------------------------- networks


@pytest.mark.parametrize("variant", [1, 2])
@pytest.mark.parametrize("size", [64, 128, 256])
def test_networks_shapes_and_range(variant, size):
    torch.manual_seed(0)
    net = networks.build_net(variant, recipes.size_recipe(size).generator(variant)).eval()
    x = torch.rand(2, 26) * 2 - 1 if variant == 1 else torch.rand(2, 3, size, size) * 2 - 1
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 3, size, size)
    assert y.min() >= -1 and y.max() <= 1 and y.std() > 0


def test_self_attention_starts_as_identity_and_learns():
    att = networks.SelfAttention(32)
    x = torch.randn(2, 32, 8, 8, requires_grad=True)
    assert torch.equal(att(x), x)
    att(x).square().sum().backward()
    assert att.gamma.grad.abs() > 0  # the gate gets a gradient, so attention can switch itself on


# --------------------------------------------------------------------------- metrics and augmentation


def test_image_metrics_identity_noise_and_body_box():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    xy = np.repeat(POSE[None], 3, axis=0)
    same = metrics.image_metrics(real, real, xy)
    assert same["l1"] == 0 and same["ssim"] == pytest.approx(1) and same["box_ssim"] == pytest.approx(1)
    assert same["psnr"] > 90
    # Changing only pixels outside the body box lowers SSIM but leaves the body-box SSIM alone.
    x0, y0, x1, y1 = metrics.body_box_px(POSE, 64)
    assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64 and x1 - x0 >= 7 and y1 - y0 >= 7
    outside = real.copy()
    outside[:, :, :x0] = 255 - outside[:, :, :x0]
    m = metrics.image_metrics(outside, real, xy)
    assert m["box_ssim"] == pytest.approx(1) and m["ssim"] < 0.9 and m["l1"] > 0.05
    per = metrics.image_metrics(outside, real, xy, reduce=False)
    assert per["ssim"].shape == (3,)
    # The box widens by margin x body height around the joints and stays inside the frame.
    assert metrics.body_box_px(POSE, 64, margin=0.0)[1] > y0
    assert metrics.body_box_px(np.clip(POSE + 0.4, 0, 1), 64)[2] == 64


def test_augmentation_moves_image_and_joints_together():
    """Warp an image whose pixels encode their own coordinates: the warped image, read at a joint's new
    position, must hold that joint's old position."""
    size = 64
    ramp = (np.arange(size, dtype=np.float32) + 0.5) / size  # pixel centres in [0, 1]
    coords = torch.from_numpy(np.stack(np.meshgrid(ramp, ramp), 0))[None].repeat(4, 1, 1, 1)  # (4, 2, S, S)
    xy = torch.from_numpy(np.repeat(POSE[None], 4, axis=0))
    new_xy, theta, on = training_data.random_affine(
        xy, shift=0.1, scale=0.15, prob=1.0, generator=torch.Generator().manual_seed(3)
    )
    assert on.all() and not torch.allclose(new_xy, xy)
    warped = training_data.warp(coords, theta)
    px = (new_xy * size).long().clamp(0, size - 1)  # the pixel each moved joint falls in
    b = torch.arange(4)[:, None]
    read = warped[b, :, px[..., 1], px[..., 0]]  # (4, 13, 2): the source coordinates found there
    assert (read - xy).abs().max() < 1.5 / size
    kept, _, off = training_data.random_affine(xy, prob=0.0)
    assert not off.any() and torch.allclose(kept, xy)


# --------------------------------------------------------------------------- train, save, load, resume


def test_one_epoch_smoke_train_writes_everything(fake_vs):
    out = fake_vs.model_dir("vanilla-image-64")
    summary = vanilla.train(fake_vs, tiny_cfg(2), verbose=False)
    assert Path(summary["out"]) == out and summary["epoch"] == 1
    for name in ("best.pth", "latest.pth", "train_log.csv", "loss.png", "samples.png"):
        assert (out / name).stat().st_size > 0, name
    assert not list(out.glob(".tmp-*"))  # atomic writes leave no temporaries
    last = summary["last"]
    assert 0 < last["val_l1"] < 1 and -1 <= last["val_box_ssim"] <= 1 and last["img_per_s"] > 0
    assert 0 <= last["data_share"] < 1
    ckpt = checkpoints.load_checkpoint(out / "best.pth", fmt=vanilla.CKPT_FORMAT, gen_type=3, size=64)
    select = fake_vs.split().select  # validated (best.pth chosen) on the selection block; the test block is the end
    assert ckpt["data"]["sha256"] == fake_vs.meta["sha256"] and ckpt["data"]["test"][1] == len(fake_vs)
    assert ckpt["data"]["val"] == [int(select[0]), int(select[-1]) + 1]
    assert ckpt["config"]["variant"] == 2 and ckpt["epoch"] == 1 and "optimizer" in ckpt
    import cv2

    grid = cv2.imread(str(out / "samples.png"))
    assert grid.shape[0] == 3 * 64 * 2  # skeleton / generated / real rows, upscaled x2


@pytest.mark.parametrize("size", [128, 256])
def test_large_sizes_train_and_generate(fake_vs, size):
    """128 px (the CPU's) and 256 px (a CUDA GPU's): the default architecture, one epoch, shapes and reloading."""
    vanilla.train(fake_vs, tiny_cfg(2, size=size), verbose=False)
    gen = vanilla.load_generator(fake_vs, 3, size=size, device="cpu")
    assert gen.size == size and gen.generate_batch(fake_vs.xy[:3]).shape == (3, size, size, 3)
    assert gen.net.ps == size // 32  # the convolutions run at 32x32 (networks.default_model_args)
    best = fake_vs.model_dir(f"vanilla-image-{size}") / "best.pth"
    with pytest.raises(UserError, match=f"size {size}, not 64"):
        vanilla.GenVanillaNN(best, device="cpu", size=64)


@pytest.mark.parametrize("variant", [1, 2])
def test_save_load_identical_output_and_generator_contract(fake_vs, tmp_path, variant):
    torch.manual_seed(1)
    args = recipes.size_recipe(64).generator(variant)
    net = networks.build_net(variant, args)
    net.train()
    with torch.no_grad():  # move BatchNorm's running stats off their defaults, so they must be saved too
        net(torch.rand(4, 26) * 2 - 1 if variant == 1 else torch.rand(4, 3, 64, 64) * 2 - 1)
    ckpt = {"format": vanilla.CKPT_FORMAT, "gen_type": vanilla.gen_type_of_variant(variant), "config": {"size": 64},
            "model_args": args,
            "model": net.state_dict()}  # fmt: skip
    checkpoints.save_checkpoint(ckpt, tmp_path / "m.pth")
    gen = vanilla.GenVanillaNN(tmp_path / "m.pth", device="cpu")
    xy = fake_vs.xy[:5]
    want = trained.render_poses(
        net, networks.pose_input(xy, variant, 64), lambda x: x, size=64, device=torch.device("cpu")
    )
    got = gen.generate_batch(xy)
    assert got.dtype == np.uint8 and got.shape == (5, 64, 64, 3)
    np.testing.assert_array_equal(got, want)
    from deepdance.skeleton import Skeleton

    np.testing.assert_array_equal(gen.generate(Skeleton(xy[2])), got[2])
    holes = xy.copy()
    holes[1, 4] = np.nan  # a frame without a person: black, and its neighbours unaffected
    out = gen.generate_batch(holes)
    assert not out[1].any()
    np.testing.assert_array_equal(out[[0, 2, 3, 4]], got[[0, 2, 3, 4]])


def test_resume_matches_an_uninterrupted_run(fake_vs, tmp_path, monkeypatch):
    straight = vanilla.train(fake_vs, tiny_cfg(1, epochs=2), out=tmp_path / "straight", verbose=False)
    # Ctrl-C during epoch 2's validation (before its checkpoint), then resume: same weights as never stopping.
    calls, predict = [], trained.render_poses

    def interrupted_predict(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return predict(*args, **kw)

    monkeypatch.setattr(vanilla, "render_poses", interrupted_predict)
    with pytest.raises(KeyboardInterrupt):
        vanilla.train(fake_vs, tiny_cfg(1, epochs=2), out=tmp_path / "split", verbose=False)
    monkeypatch.setattr(vanilla, "render_poses", predict)
    assert checkpoints.load_checkpoint(tmp_path / "split" / "latest.pth", fmt=vanilla.CKPT_FORMAT)["epoch"] == 1
    resumed = vanilla.train(fake_vs, tiny_cfg(1, epochs=2), out=tmp_path / "split", resume=True, verbose=False)
    assert resumed["epoch"] == 2 and resumed["last"]["step"] == straight["last"]["step"]
    a = torch.load(tmp_path / "straight" / "latest.pth", weights_only=True)
    b = torch.load(tmp_path / "split" / "latest.pth", weights_only=True)
    for k, v in a["model"].items():
        torch.testing.assert_close(b["model"][k], v, msg=k)
    assert b["optimizer"]["state"][0]["step"] == a["optimizer"]["state"][0]["step"]
    rows = (tmp_path / "split" / "train_log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(fake_vs, tmp_path, monkeypatch):
    vanilla.train(fake_vs, tiny_cfg(2, lambda_grad=0.5), out=tmp_path, verbose=False)
    before = (tmp_path / "latest.pth").read_bytes()
    monkeypatch.setattr(vanilla, "grad_l1", lambda fake, real: torch.tensor(float("nan")))
    with pytest.raises(UserError, match="loss became nan"):
        vanilla.train(fake_vs, tiny_cfg(2, epochs=2, lambda_grad=0.5), out=tmp_path, resume=True, verbose=False)
    assert (tmp_path / "latest.pth").read_bytes() == before


def test_the_ssim_term_adds_to_the_loss(fake_vs, tmp_path, monkeypatch):
    calls = []
    ssim_loss = losses.ssim_loss
    monkeypatch.setattr(vanilla, "ssim_loss", lambda fake, real: calls.append(1) or ssim_loss(fake, real))
    plain = vanilla.train(fake_vs, tiny_cfg(2), out=tmp_path / "plain", verbose=False)["last"]
    assert not calls
    with_ssim = vanilla.train(fake_vs, tiny_cfg(2, lambda_ssim=1.0), out=tmp_path / "ssim", verbose=False)
    assert len(calls) == with_ssim["last"]["step"] > 0  # every step
    assert with_ssim["last"]["train_loss"] > plain["train_loss"]  # + 1 - SSIM (> 0) on the same first step's frames


def test_a_damaged_latest_checkpoint_is_refused_on_resume(fake_vs, tmp_path):
    vanilla.train(fake_vs, tiny_cfg(1), out=tmp_path, verbose=False)
    good = torch.load(tmp_path / "latest.pth", weights_only=True)
    damage = {
        "lacks optimizer": ({k: v for k, v in good.items() if k != "optimizer"}, "lacks optimizer"),
        "weights of other shapes": ({**good, "model_args": {**good["model_args"], "hidden": 64}}, "VectorToImage"),
        "unknown model_args": ({**good, "model_args": {**good["model_args"], "depth": 3}}, "unexpected keyword"),
        "optimizer of another net": ({**good, "optimizer": {"state": {}, "param_groups": []}}, "ValueError"),
        "config not a dict": ({**good, "config": [1, 2]}, "AttributeError"),
        "other data": ({**good, "data": {**good["data"], "sha256": "0" * 64}}, "trained on other data"),
    }
    for name, (ckpt, message) in damage.items():
        checkpoints.save_checkpoint(ckpt, tmp_path / "latest.pth")
        with pytest.raises(UserError, match=message) as e:
            vanilla.train(fake_vs, tiny_cfg(1, epochs=0), out=tmp_path, resume=True, verbose=False)
        assert "force=true" in str(e.value), name
    (tmp_path / "latest.pth").unlink()
    with pytest.raises(UserError, match=r"nothing to resume: .* train from scratch with python GenVanillaNN.py \S+ "
                                        r"false 1 --out \S+$"):  # fmt: skip
        vanilla.train(fake_vs, tiny_cfg(1), out=tmp_path, resume=True, verbose=False)


def test_checkpoint_validation_and_missing_model_message(fake_vs, tmp_path):
    with pytest.raises(UserError, match=r"train it with python GenVanillaNN.py \S+ false 2"):
        vanilla.load_generator(fake_vs, 3)
    with pytest.raises(UserError, match=r"false 1 --size 128"):
        vanilla.load_generator(fake_vs, 2, size=128)
    with pytest.raises(UserError, match="gen_type 2 .* and 3"):
        vanilla.load_generator(fake_vs, 4)
    vanilla.train(fake_vs, tiny_cfg(1), verbose=False)
    gen = vanilla.load_generator(fake_vs, 2, device="cpu")
    assert gen.size == 64 and gen.generate_batch(fake_vs.xy[:2]).shape == (2, 64, 64, 3)
    path = fake_vs.model_dir("vanilla-vector-64") / "best.pth"
    with pytest.raises(UserError, match="is for gen_type 2, not 3"):
        checkpoints.load_checkpoint(path, fmt=vanilla.CKPT_FORMAT, gen_type=3)
    with pytest.raises(UserError, match="size 64, not 128"):
        checkpoints.load_checkpoint(path, fmt=vanilla.CKPT_FORMAT, size=128)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        checkpoints.load_checkpoint(tmp_path / "junk.pth", fmt=vanilla.CKPT_FORMAT)
    torch.save({"format": "other"}, tmp_path / "other.pth")
    with pytest.raises(UserError, match="not a deepdance-vanilla-1 checkpoint"):
        checkpoints.load_checkpoint(tmp_path / "other.pth", fmt=vanilla.CKPT_FORMAT)


# --------------------------------------------------------------------------- CLI


@pytest.mark.parametrize(
    "args, message",
    [
        (["no/such/video.mp4"], "video not found"),
        (["no/such/video.mp4", "true", "2", "--resume"], "contradict"),
        (["no/such/video.mp4", "maybe"], "expected true/false"),
        (["no/such/video.mp4", "--lambda_ssim", "-1"], "--lambda_ssim >= 0"),
        pytest.param(
            ["no/such/video.mp4", "--device", "cuda"],
            "no CUDA GPU is visible",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU"),
        ),
    ],
)
@pytest.mark.slow
def test_cli_bad_input_is_one_line(args, message):
    proc = run_script("GenVanillaNN.py", *args, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_rejects_bad_choices():
    proc = run_script("GenVanillaNN.py", "x.mp4", "false", "3", timeout=60)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


@pytest.mark.slow
def test_cli_reference_command_trains_one_epoch(short_clip, data_dir, tmp_path):
    out = tmp_path / "run"
    proc = run_script("GenVanillaNN.py", short_clip, "false", "1", "--epochs", "1", "--batch", "8", "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "best: epoch 1" in proc.stdout and (out / "best.pth").exists()
    again = run_script("GenVanillaNN.py", short_clip, "false", "1", "--out", out)
    assert again.returncode == 0 and "already trained" in again.stdout


def test_force_flag_is_the_positional_force():
    """--force (as GenGAN.py and GenTexture.py take it) means force=true: it contradicts --resume the same way."""
    import GenVanillaNN

    for argv in (["x.mp4", "true", "--resume"], ["x.mp4", "--force", "--resume"]):
        with pytest.raises(UserError, match=r"force=true \(start over\) and --resume \(continue\) contradict"):
            GenVanillaNN.main(argv)
