"""GenGAN: discriminators, losses (gradient penalty on a toy critic), temporal inputs, one-epoch training per
mode, checkpoint round trip, resume, the NaN guard, initialisation from GenVanillaNN, the CLI.

Training runs on a tiny synthetic target (a stick figure moving over a gradient) with tiny networks, never on
../shared.
"""

from pathlib import Path
from types import SimpleNamespace

from deepdance import (
    adversarial,
    checkpoints,
    gan,
    gentypes,
    metrics,
    networks,
    recipes,
    trainer,
    training_data,
    vanilla,
)
from deepdance.cli import UserError, run_cli
from deepdance.skeleton import Skeleton

import numpy as np
import pytest
import torch

import GenGAN
from conftest import POSE, FakeVS, ctrl_c_after, run_script

SIZE = 32
TINY_G = {"image": {"ch": [8, 16], "n_res": 1}, "vector": {"hidden": 32, "n_blocks": 1, "ch": [16, 16, 8]}}
TINY_D = {"ndf": 8}
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def fake_vs(tmp_path):
    return FakeVS(tmp_path, n=40)


def tiny_cfg(mode="bce", input="image", temporal=False, **kw):
    """A fast run: tiny nets at 32 px, 1 epoch, batch 8, CPU, never from a GenVanillaNN checkpoint."""
    kw.setdefault("init_from_vanilla", False)
    kw.setdefault("d_args", TINY_D)
    return gan.GANConfig(mode=mode, input=input, temporal=temporal, size=SIZE, epochs=kw.pop("epochs", 1), batch=8,
                       g_args=TINY_G[input], device="cpu", **kw)  # fmt: skip


# --------------------------------------------------------------------------- networks and losses


def test_multiscale_patch_discriminator_shapes():
    d = networks.MultiscaleDiscriminator(**recipes.size_recipe(64).netD)
    out = d(torch.randn(2, 6, 64, 64))
    assert len(out) == networks.NUM_D and len(out[0]) == 2 + 2  # every layer's features, logits last
    assert out[0][-1].shape == (2, 1, 14, 14) and out[1][-1].shape == (2, 1, 6, 6)  # 64 px and 32 px patches
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())  # per-sample norm only (GP)
    small = networks.MultiscaleDiscriminator(**recipes.size_recipe(32).netD)(torch.randn(1, 6, 32, 32))
    assert small[1][-1].shape[-1] >= 1
    dt = networks.MultiscaleDiscriminator(**recipes.size_recipe(64).netD_T)
    assert len(dt(torch.randn(1, 6 * adversarial.D_T_FRAMES, 64, 64))) == 1


@pytest.mark.parametrize("norm", ["instance", "batch", "spectral"])
def test_discriminator_options(norm):
    d = networks.MultiscaleDiscriminator(in_ch=6, ndf=8, n_layers=3, norm=norm, num_D=2)
    out = d(torch.randn(2, 6, 64, 64))
    assert len(out) == 2 and out[0][-1].shape == (2, 1, 6, 6)  # 3 stride-2 layers: 70 px patches
    kinds = {type(m) for m in d.modules()}
    assert (torch.nn.InstanceNorm2d in kinds) == (norm == "instance") and (torch.nn.BatchNorm2d in kinds) == (
        norm == "batch")  # fmt: skip
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(torch.nn.utils.parametrize.is_parametrized(c) == (norm == "spectral") for c in convs)
    if norm == "spectral":  # every conv's weight has spectral norm 1 (after a few power iterations)
        for _ in range(20):
            d(torch.randn(2, 6, 64, 64))
        d.eval()
        w = convs[1].weight.flatten(1)
        assert abs(torch.linalg.matrix_norm(w, 2).item() - 1) < 0.05
    with pytest.raises(UserError, match="norm must be one of"):
        networks.PatchDiscriminator(norm="group")


def test_d_options_on_the_command_line_reach_netd(fake_vs, monkeypatch):
    seen = {}
    not_main = SimpleNamespace(main=False)  # a rank that prints nothing after training
    monkeypatch.setattr(GenGAN, "open_target", lambda *a, **k: (not_main, fake_vs, None))
    monkeypatch.setattr(GenGAN, "train", lambda vs, cfg, **k: seen.update(cfg=cfg))
    assert GenGAN.main(["x.mp4", "--d_norm", "spectral", "--d_layers", "3", "--ndf", "32"]) == 0
    assert seen["cfg"].d_args == {"norm": "spectral", "n_layers": 3}  # only what differs from the defaults
    GenGAN.main(["x.mp4"])
    assert seen["cfg"].d_args is None
    monkeypatch.undo()
    d_args = {**TINY_D, "norm": "spectral", "num_D": 1}
    summary = gan.train(fake_vs, tiny_cfg(d_args=d_args), verbose=False)
    ckpt = torch.load(Path(summary["out"]) / "latest.pth", weights_only=True)
    assert ckpt["netD_args"]["norm"] == "spectral" and ckpt["netD_args"]["num_D"] == 1
    assert any("parametrizations" in k for k in ckpt["netD"])
    assert gan.train(fake_vs, tiny_cfg(epochs=2, d_args=d_args), resume=True, verbose=False)["epoch"] == 2


def test_gradient_penalty_is_exact_on_a_linear_critic():
    """f(x) = w.x has gradient w everywhere, so the penalty is lambda (|w| - 1)^2 whatever the mixing."""
    torch.manual_seed(0)
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    for scale in (0.3, 1.0, 2.5):
        w = torch.randn(48)
        w = (w / w.norm() * scale).requires_grad_(True)
        gp = adversarial.gradient_penalty(lambda x, w=w: x.flatten(1) @ w, real, fake, lambda_gp=10.0)
        assert gp.item() == pytest.approx(10.0 * (scale - 1.0) ** 2, abs=1e-5)
        # create_graph=True: the penalty's own gradient reaches the critic, d/dw = 2 lambda (|w| - 1) w / |w|.
        (grad_w,) = torch.autograd.grad(gp, w)
        torch.testing.assert_close(grad_w, 2 * 10.0 * (scale - 1.0) * w.detach() / scale, atol=1e-5, rtol=1e-4)


def test_gan_losses_and_schedules():
    pred = [[torch.full((2, 1, 3, 3), 4.0)], [torch.full((2, 1, 1, 1), 4.0)]]  # D very sure: real
    assert adversarial.gan_loss(pred, True, "bce").item() < 0.02 < adversarial.gan_loss(pred, False, "bce").item()
    assert adversarial.gan_loss(pred, True, "wgan-gp").item() == -4.0
    assert adversarial.gan_loss(pred, False, "wgan-gp").item() == 4.0
    assert adversarial.critic_score(pred).tolist() == [4.0, 4.0]
    lam = gan.LAMBDA_L1
    assert (
        trainer.lambda_at(0.0, lam) == 100.0
        and trainer.lambda_at(1.0, lam) == 30.0
        and trainer.lambda_at(0.5, lam) == 65.0
    )
    feats = [[torch.ones(1, 2, 2, 2), torch.zeros(1, 1, 1, 1)]]
    assert (
        adversarial.feature_matching(feats, [[torch.zeros(1, 2, 2, 2), torch.ones(1, 1, 1, 1)]]).item() == 1.0
    )  # logits out
    good, blurry = {"box_ssim": 0.80, "sharpness": 1.0}, {"box_ssim": 0.81, "sharpness": 0.5}
    assert adversarial.val_score(good) > adversarial.val_score(blurry)  # 0.01 box SSIM does not buy halving the detail


def test_d_overpowering_g_is_reported(tmp_path):
    log = trainer.TrainLog(tmp_path / "log.csv")
    for epoch, acc in enumerate((0.6, 0.97), 1):
        log.append({"epoch": epoch, "d_acc": acc})
        warning = gan.d_overpowers(log, "bce")
    assert warning and "right on 97% of patches" in warning
    log = trainer.TrainLog(tmp_path / "wgan.csv")
    for epoch, gap in enumerate((0.5, 0.4, 0.9, 1.5, 2.2), 1):
        log.append({"epoch": epoch, "wdist": gap})
        if epoch == 4:
            assert gan.d_overpowers(log, "wgan-gp") is None  # 0.5 -> 0.4 -> ... is not growing 3 epochs running
    assert "0.40 -> 2.20" in gan.d_overpowers(log, "wgan-gp")


def test_history_windows_and_temporal_inputs():
    xy = np.arange(6, dtype=np.float32)[:, None, None] * np.ones((1, 13, 2), np.float32)  # pose i is all i
    h = training_data.history_xy(xy, 2)
    assert h.shape == (6, 3, 13, 2)
    assert h[:, :, 0, 0].tolist() == [[0, 0, 0], [1, 0, 0], [2, 1, 0], [3, 2, 1], [4, 3, 2], [5, 4, 3]]
    starts = training_data.sequence_starts([10, 11, 12, 20, 21, 22])  # a cut after the third frame
    assert training_data.history_xy(xy, 2, starts=starts)[3:, :, 0, 0].tolist() == [[3, 3, 3], [4, 3, 3], [5, 4, 3]]
    holes = xy.copy()
    holes[2] = np.nan  # no person in frame 2: later frames look past it, frame 2 itself stays empty
    hh = training_data.history_xy(holes, 2)
    assert np.isnan(hh[2, 0]).all() and hh[3, :, 0, 0].tolist() == [3, 1, 1] and hh[4, :, 0, 0].tolist() == [4, 3, 1]
    first_missing = holes.copy()
    first_missing[0] = np.nan
    assert training_data.history_xy(first_missing, 2)[1, :, 0, 0].tolist() == [1, 1, 1]
    x = gan.temporal_input(training_data.history_xy(np.repeat(POSE[None], 2, 0), 2), 32)
    assert x.shape == (2, 9, 32, 32)
    torch.testing.assert_close(x[:, :3], networks.pose_input(np.repeat(POSE[None], 2, 0), 2, 32))
    w = training_data.train_windows(np.array([0, 1, 2, 3, 4, 5, 9, 10, 11, 12, 13]), 5)
    assert w.tolist() == [[0, 1, 2, 3, 4], [1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]  # none across the gap
    assert training_data.train_windows(np.arange(3), 1).shape == (3, 1)


def test_expanded_stem_starts_as_the_vanilla_unet():
    torch.manual_seed(0)
    args = {**recipes.size_recipe(SIZE).generator(2), **TINY_G["image"]}
    vanilla = networks.build_net(2, args).eval()
    state, targs = gan.expand_stem(vanilla.state_dict(), args, 9)
    temporal = networks.build_net(2, targs).eval()
    temporal.load_state_dict(state)
    cur = torch.rand(3, 3, SIZE, SIZE) * 2 - 1
    hist = torch.rand(3, 6, SIZE, SIZE) * 2 - 1  # whatever t-1 and t-2 are, the output is the vanilla one
    with torch.no_grad():
        torch.testing.assert_close(temporal(torch.cat([cur, hist], 1)), vanilla(cur))


def test_make_batch_windows_are_consecutive_and_augmented_alike(fake_vs):
    ds = fake_vs.dataset(np.arange(20), SIZE)
    cfg = tiny_cfg(temporal=True, aug_prob=1.0)
    win = training_data.train_windows(np.arange(20), gan.HISTORY + adversarial.D_T_FRAMES)[:4]
    x, cond, real, xy = gan.make_batch(ds, win, cfg, torch.Generator().manual_seed(0))
    assert x.shape == (4 * adversarial.D_T_FRAMES, 9, SIZE, SIZE) and cond.shape == real.shape == (12, 3, SIZE, SIZE)
    # Output frame k's input holds the maps of k, k-1, k-2: frame k+1's t-1 map is frame k's t map.
    x = x.view(4, adversarial.D_T_FRAMES, 9, SIZE, SIZE)
    torch.testing.assert_close(x[:, 1, 3:6], x[:, 0, :3])
    torch.testing.assert_close(x[:, :, :3].reshape(-1, 3, SIZE, SIZE), cond)
    plain, _, _, _ = gan.make_batch(ds, win, tiny_cfg(temporal=True, aug_prob=0.0), torch.Generator())
    assert not torch.equal(plain.view_as(x)[:, :, :3], x[:, :, :3])  # augmented: shifted and zoomed


# --------------------------------------------------------------------------- training


MODES = [("bce", "image", False), ("bce", "vector", False), ("wgan-gp", "image", False),
         ("wgan-gp", "vector", False), ("bce", "image", True), ("wgan-gp", "image", True)]  # fmt: skip


@pytest.mark.parametrize("mode, input, temporal", MODES)
def test_one_epoch_smoke_train_per_mode_and_checkpoint_round_trip(fake_vs, mode, input, temporal):
    summary = gan.train(fake_vs, tiny_cfg(mode, input, temporal), verbose=False)
    gen_type = gentypes.gen_type_of("GenGAN", mode=mode, input=input, temporal=temporal)
    out = Path(summary["out"])
    assert out == gentypes.checkpoint_dir(fake_vs, gen_type, SIZE)
    assert out.name == (f"gan-temporal-{SIZE}" if temporal else f"gan-{mode}-{input}-{SIZE}")
    for name in ("best.pth", "latest.pth", "train_log.csv", "loss_G.png", "loss_D.png", "samples.png"):
        assert (out / name).stat().st_size > 0, name
    assert not list(out.glob(".tmp-*"))
    last = summary["last"]
    assert summary["epoch"] == 1 and last["it_per_s"] > 0 and 0 < last["val_l1"] < 1
    assert np.isfinite([last["loss_D"], last["loss_G"], last["val_sharpness"], last["val_flicker"]]).all()
    assert ("d_acc" in last) == (mode == "bce") and ("loss_D_GP" in last) == (mode == "wgan-gp")
    assert ("loss_G_T_L1" in last) == temporal
    ckpt = checkpoints.load_checkpoint(out / "best.pth", fmt=gan.CKPT_FORMAT, gen_type=gen_type, size=SIZE)
    for key in ("model", "netD", "optimizer_G", "optimizer_D", "model_args", "netD_args", "config", "data"):
        assert ckpt[key] is not None, key
    assert (ckpt["netD_T"] is not None) == temporal and ckpt["epoch"] == 1
    gen = gan.load_generator(fake_vs, gen_type, size=SIZE, device="cpu")
    frames = gen.generate_batch(fake_vs.xy[:5])
    assert frames.shape == (5, SIZE, SIZE, 3) and frames.dtype == np.uint8 and gen.size == SIZE
    assert gen.coherent == temporal
    one = [gen.generate(Skeleton(p)) for p in fake_vs.xy[:5]]  # gen_type 8: generate() keeps the history
    # (batch-size-dependent float rounding may move a pixel by one level)
    assert np.abs(np.stack(one).astype(int) - frames).max() <= 1
    # A clip streamed 2 frames at a time: gen_type 8's second batch still sees the first one's poses.
    chunks = list(gen.generate_clip(fake_vs.xy[:5], batch=2))
    assert [len(c) for c in chunks] == [2, 2, 1] and np.abs(np.concatenate(chunks).astype(int) - frames).max() <= 1
    # Round trip: the reloaded generator scores exactly what the in-memory one scored when best.pth was written.
    val = fake_vs.split().select  # where the trainers validate
    got = metrics.image_metrics(gen.generate_batch(fake_vs.xy[val]), fake_vs.frames(SIZE)[val], fake_vs.xy[val])
    assert got["l1"] == ckpt["val"]["l1"] and got["box_ssim"] == ckpt["val"]["box_ssim"]


def test_resume_matches_an_uninterrupted_run(fake_vs, tmp_path, monkeypatch):
    cfg = tiny_cfg("wgan-gp", "image", epochs=2, n_critic=2)
    straight = gan.train(fake_vs, cfg, out=tmp_path / "straight", verbose=False)
    steps_per_epoch = straight["last"]["step"] // 2
    make_batch = ctrl_c_after(monkeypatch, gan, "make_batch", steps_per_epoch)  # at epoch 2's first batch
    with pytest.raises(KeyboardInterrupt):
        gan.train(fake_vs, cfg, out=tmp_path / "split", verbose=False)
    monkeypatch.setattr(gan, "make_batch", make_batch)
    assert torch.load(tmp_path / "split" / "latest.pth", weights_only=True)["epoch"] == 1
    resumed = gan.train(fake_vs, cfg, out=tmp_path / "split", resume=True, verbose=False)
    assert resumed["epoch"] == 2 and resumed["last"]["step"] == straight["last"]["step"]
    a = torch.load(tmp_path / "straight" / "latest.pth", weights_only=True)
    b = torch.load(tmp_path / "split" / "latest.pth", weights_only=True)
    for part in ("model", "netD"):
        for k, v in a[part].items():
            torch.testing.assert_close(b[part][k], v, msg=f"{part}.{k}")
    for opt in ("optimizer_G", "optimizer_D"):
        assert b[opt]["state"][0]["step"] == a[opt]["state"][0]["step"] > 0
    assert a["optimizer_D"]["state"][0]["step"] == 2 * a["optimizer_G"]["state"][0]["step"]  # n_critic = 2
    rows = (tmp_path / "split" / "train_log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(fake_vs, tmp_path, monkeypatch):
    gan.train(fake_vs, tiny_cfg(), out=tmp_path, verbose=False)
    before = (tmp_path / "latest.pth").read_bytes()
    monkeypatch.setattr(gan, "gan_loss", lambda pred, real, mode: torch.tensor(float("nan")))
    with pytest.raises(UserError, match=r"loss_D became nan .* last good checkpoint kept: .* \(epoch 1\)"):
        gan.train(fake_vs, tiny_cfg(epochs=2), out=tmp_path, resume=True, verbose=False)
    assert (tmp_path / "latest.pth").read_bytes() == before


def test_init_from_vanilla_checkpoint(fake_vs, capsys):
    torch.manual_seed(0)
    args = {**recipes.size_recipe(SIZE).generator(2), **TINY_G["image"]}
    net = networks.build_net(2, args)
    data = training_data.data_fingerprint(fake_vs, fake_vs.split())
    ckpt = {"format": vanilla.CKPT_FORMAT, "gen_type": 3, "config": {"size": SIZE}, "model_args": args,
            "model": net.state_dict(), "epoch": 7, "val": {"box_ssim": 0.5}, "data": data}  # fmt: skip
    path = gentypes.checkpoint_dir(fake_vs, 3, SIZE) / "best.pth"
    checkpoints.save_checkpoint(ckpt, path)
    cfg = tiny_cfg(temporal=True, init_from_vanilla=None, lr_G=1e-12, lr_D=1e-12, aug_prob=0.0)
    summary = gan.train(fake_vs, cfg, verbose=True)
    assert "netG initialised from GenVanillaNN" in capsys.readouterr().out
    assert summary["init_from"]["path"] == str(path) and summary["init_from"]["epoch"] == 7
    ckpt_gan = torch.load(Path(summary["out"]) / "latest.pth", weights_only=True)
    assert ckpt_gan["model_args"]["ch"] == args["ch"] and ckpt_gan["model_args"]["in_ch"] == 9
    w = ckpt_gan["model"]["stem.0.weight"]  # the vanilla stem on t, (still almost) zero on t-1, t-2
    torch.testing.assert_close(w[:, :12], net.state_dict()["stem.0.weight"], atol=1e-6, rtol=0)
    assert w[:, 12:].abs().max() < 1e-6
    # A checkpoint from another split may have seen the selection or test frames: not used (an error when asked for).
    ckpt["data"] = {**ckpt["data"], "val": [0, 5]}
    checkpoints.save_checkpoint(ckpt, path)
    assert gan.train(fake_vs, tiny_cfg(init_from_vanilla=None), verbose=False)["init_from"] is None
    with pytest.raises(UserError, match="another train/select/test split"):
        gan.train(fake_vs, tiny_cfg(init_from_vanilla=True), verbose=False)


def test_bad_requests(fake_vs):
    gappy = FakeVS(fake_vs.root, n=40)
    gappy.rows = np.arange(40) * 2  # every other frame of the video: no run of consecutive frames
    args = {**recipes.size_recipe(SIZE).generator(2), **TINY_G["image"]}
    other = networks.build_net(
        2, {**args, "ch": [8, 8]}
    ).state_dict()  # weights saved by another version of the network
    ckpt = {"format": gan.CKPT_FORMAT, "gen_type": 4, "config": {"size": SIZE}, "variant": 2, "temporal": False,
            "model_args": args, "model": other}  # fmt: skip
    requests = {  # message: request
        r"train it with python GenGAN.py \S+ --mode wgan-gp --input vector$": lambda: gan.load_generator(fake_vs, 6),
        r"--temporal --size 128": lambda: gan.load_generator(fake_vs, 8, size=128),
        "4-8, not 3": lambda: gan.load_generator(fake_vs, 3),
        "drop --input vector": lambda: gan.GANConfig(input="vector", temporal=True),
        "consecutive frames": lambda: gan.train(gappy, tiny_cfg(temporal=True), verbose=False),
        "too few.*at least 16": lambda: gan.train(FakeVS(fake_vs.root, n=12), tiny_cfg(), verbose=False),
        r"nothing to resume: .* train from scratch with python GenGAN.py \S+ --mode bce --input image --size 32 --out ":
            lambda: gan.train(fake_vs, tiny_cfg(), out=fake_vs.root / "elsewhere", resume=True, verbose=False),
        r"checkpoint does not fit this version's UNet .*: retrain it \(GenGAN.py with --force\)$":
            lambda: gan.GenGAN(ckpt, device="cpu"),
        "checkpoint does not fit this version's UNet .*unexpected keyword argument 'depth'":
            lambda: gan.GenGAN({**ckpt, "model_args": {**args, "depth": 3}}, device="cpu"),
    }  # fmt: skip
    for message, request in requests.items():
        with pytest.raises(UserError, match=message):
            request()


def test_a_damaged_latest_checkpoint_is_refused_on_resume(fake_vs, tmp_path):
    gan.train(fake_vs, tiny_cfg(), out=tmp_path, verbose=False)
    good = torch.load(tmp_path / "latest.pth", weights_only=True)
    damage = {
        "lacks netD": ({k: v for k, v in good.items() if k != "netD"}, "lacks netD"),
        "netD of other shapes": ({**good, "netD_args": {**good["netD_args"], "ndf": 16}}, "MultiscaleDiscriminator"),
        "optimizer of another net": ({**good, "optimizer_D": good["optimizer_G"]}, "ValueError"),
        "rng of another size": ({**good, "rng": torch.zeros(3, dtype=torch.uint8)}, "RuntimeError"),
        "other data": ({**good, "data": {**good["data"], "sha256": "0" * 64}}, "trained on other data"),
    }
    for name, (ckpt, message) in damage.items():
        checkpoints.save_checkpoint(ckpt, tmp_path / "latest.pth")
        with pytest.raises(UserError, match=message) as e:
            gan.train(fake_vs, tiny_cfg(epochs=2), out=tmp_path, resume=True, verbose=False)
        assert "--force" in str(e.value), name


# --------------------------------------------------------------------------- CLI


@pytest.mark.parametrize(
    "args, message",
    [
        (["no/such/video.mp4"], "video not found"),
        (["x.mp4", "--force", "--resume"], "contradict"),
        (["x.mp4", "--temporal", "--input", "vector"], "drop --input vector"),
    ],
)
@pytest.mark.slow
def test_cli_bad_input_is_one_line(args, message):
    proc = run_script("GenGAN.py", *args, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_ssim_term_is_logged_and_bad_weights_are_one_line(fake_vs, capsys):
    last = gan.train(fake_vs, tiny_cfg(lambda_ssim=1.0), verbose=False)["last"]
    assert 0 < last["loss_G_SSIM"] < 2
    assert "loss_G_SSIM" not in gan.train(fake_vs, tiny_cfg(), out=fake_vs.root / "plain", verbose=False)["last"]
    with pytest.raises(SystemExit):
        run_cli(GenGAN.main, ["x.mp4", "--lambda_ssim", "-1"])
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--lambda_ssim" in err and len(err.splitlines()) == 1
