"""Nothing lost, second pass: checkpoints, training folders, target reports and the data folder.

Each defect has a test here that failed before its fix. Synthetic
data only: FakeVS and tiny nets for the trainers, a hand-written cache for the target report.
"""

import dataclasses
import json
import os
import subprocess
import sys
from functools import partial

from deepdance import cache, checkpoints, distributed, gentypes, options, texture, trainer, training_data, vanilla
from deepdance.cli import UserError

import numpy as np
import pytest
import torch

import GenTexture
import GenVanillaNN
import VideoSkeleton
from conftest import POSE, ROOT, FakeVS, write_video

TINY = {"ch": [8, 16], "n_res": 1}
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_cfg(**kw):
    return vanilla.VanillaConfig(**{"batch": 8, "size": 32, "device": "cpu", "model_args": TINY, "epochs": 1, **kw})


@pytest.fixture
def trained(tmp_path):
    """A tiny gen_type 3 trained on FakeVS into its default folder -> (vs, best.pth)."""
    vs = FakeVS(tmp_path / "a", n=40)
    vanilla.train(vs, tiny_cfg(), verbose=False)
    return vs, gentypes.checkpoint_dir(vs, 3, 32) / "best.pth"


def opening(monkeypatch, vs):
    """The trainers' scripts open FakeVS whatever video they are given (no extraction)."""

    class Opens(cache.VideoSkeleton):  # a class still: FakeVS.split calls VideoSkeleton.split
        def __new__(cls, *a, **k):
            return vs

    monkeypatch.setattr(cache, "VideoSkeleton", Opens)
    monkeypatch.setattr(GenTexture, "VideoSkeleton", Opens)


# --------------------------------------------------------------------------- 6: empty checkpoint files


def test_an_empty_checkpoint_is_one_line_naming_it_and_the_fix(trained):
    """A 0-byte best.pth / latest.pth gave IndexError (torch's EOFError has no text) in every loader."""
    vs, best = trained
    latest = best.with_name("latest.pth")
    best.write_bytes(b"")
    with pytest.raises(UserError, match=rf"checkpoint {best} is empty \(0 bytes.*; retrain it \(GenVanillaNN"):
        vanilla.load_generator(vs, 3, size=32, device="cpu")  # DanceDemo, Evaluate
    with pytest.raises(UserError, match=rf"{best} is empty"):  # a trainer's "already trained?"
        options.report_trained(best, partial(vanilla.GenVanillaNN, device="cpu"), "force=true", vs=vs)
    fingerprint = training_data.data_fingerprint(vs, vs.split())
    with pytest.raises(UserError, match=rf"{best} is empty .*; retrain the base"):  # GenGAN / GenTexture start
        checkpoints.start_checkpoint(vs, gen_type=3, size=32, fmt=vanilla.CKPT_FORMAT, fingerprint=fingerprint,
                                     fix="retrain the base")  # fmt: skip
    latest.write_bytes(b"")
    with pytest.raises(UserError, match=rf"checkpoint {latest} is empty .*; start over with force=true"):
        vanilla.train(vs, tiny_cfg(epochs=2), resume=True, verbose=False)


# --------------------------------------------------------------------------- 7: a folder another run is writing


def test_trained_already_is_not_said_of_a_folder_being_written(tmp_path, monkeypatch, capsys):
    """Its best.pth is a model half-trained: say another training is writing there, not "already trained", rc 0."""
    vs = FakeVS(tmp_path, n=40)
    vanilla.train(vs, tiny_cfg(size=64), verbose=False)
    best = gentypes.checkpoint_dir(vs, 3, 64) / "best.pth"
    opening(monkeypatch, vs)
    writing = trainer.TrainRun(best.parent, epochs=1, steps_per_epoch=1, images_per_step=1, time_budget=0,
                               best={"box_ssim": -1.0})  # fmt: skip
    argv = ["--size", "64", "--device", "cpu", "--out", str(best.parent)]
    with writing:
        with pytest.raises(UserError, match=f"another training is writing to {best.parent} right now"):
            GenVanillaNN.main(argv)
        texture_out = gentypes.checkpoint_dir(vs, 9, 64)
        texture_out.mkdir(parents=True)
        (texture_out / "best.pth").write_bytes(best.read_bytes())
        with trainer.TrainRun(texture_out, epochs=1, steps_per_epoch=1, images_per_step=1, time_budget=0,
                              best={"score": -1.0}):  # fmt: skip
            with pytest.raises(UserError, match=f"another training is writing to {texture_out} right now"):
                GenTexture.main(["--device", "cpu"])
    assert "already trained" not in capsys.readouterr().out
    assert GenVanillaNN.main(argv) == 0  # free again: trained already, said
    assert "already trained: " in capsys.readouterr().out


def test_every_rank_leaves_together(tmp_path):
    """Under torchrun a rank leaving before the others (rank 0 reporting "trained already") could make another
    abort at exit: run_trainer ends every path with a meeting and the process group closed."""
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        assert distributed.run_trainer(lambda argv: 0, interrupted="") == 0
        assert not torch.distributed.is_initialized()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


# --------------------------------------------------------------------------- 9: one validation of the weights


BASE_UNET = {"size": 32, "in_ch": 3, "out_ch": 3, "ch": [8, 16], "n_res": 1, "attn": False, "ps": 2}
TEXTURE = {"unet": {"size": 32, "in_ch": 11, "out_ch": 6, "ch": [8, 16], "n_res": 1, "attn": False, "ps": 2},
           "max_flow": 0.5, "prior": True}  # fmt: skip


def save_base(vs, state):
    """state as vs's gen_type 3 best.pth, on this data and split (what GenTexture builds on)."""
    ckpt = {"format": vanilla.CKPT_FORMAT, "gen_type": 3, "config": {"size": 32}, "model_args": BASE_UNET,
            "model": state, "epoch": 4, "val": {"box_ssim": 0.5},
            "data": training_data.data_fingerprint(vs, vs.split())}  # fmt: skip
    path = gentypes.checkpoint_dir(vs, 3, 32) / "best.pth"
    checkpoints.save_checkpoint(ckpt, path)
    return path


def running_var(state):
    return next(k for k in state if k.endswith("running_var"))


def weight(state):
    return next(k for k, v in state.items() if v.is_floating_point() and v.dim() > 1)


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda s: {**s, weight(s): s[weight(s)].to(torch.int64)}, "is torch.int64, not torch.float32"),
        (lambda s: {**s, weight(s): s[weight(s)] > 0}, "is torch.bool, not torch.float32"),
        (lambda s: {**s, weight(s): torch.full_like(s[weight(s)], float("nan"))}, "holds NaN or inf"),
        (lambda s: {**s, running_var(s): -s[running_var(s)]}, r"\(a BatchNorm variance\) holds negative values"),
    ],
    ids=["int64", "bool", "nan", "negative-variance"],
)
def test_a_tampered_base_is_refused_as_every_checkpoint_is(tmp_path, tamper, message):
    """GenTexture built on a tampered gen_type 3 best.pth without the checks DanceDemo applied (a cast, a crash,
    black frames); a negative BatchNorm variance passed every check."""
    from deepdance.networks import UNet

    vs = FakeVS(tmp_path, n=40)
    torch.manual_seed(0)
    path = save_base(vs, tamper(UNet(**BASE_UNET).state_dict()))
    cfg = texture.TextureConfig(size=32, epochs=1, batch=8, device="cpu", model_args=TEXTURE, base="vanilla")
    with pytest.raises(UserError, match=rf"GenVanillaNN checkpoint {path} is damaged: tensor .* {message}"):
        texture.train(vs, cfg, out=tmp_path / "texture", verbose=False)
    assert not (tmp_path / "texture" / "latest.pth").exists()


def test_a_negative_batchnorm_variance_is_refused_by_the_demo(trained):
    vs, best = trained
    ckpt = torch.load(best, weights_only=True)
    name = running_var(ckpt["model"])
    ckpt["model"][name] = -ckpt["model"][name] - 1
    checkpoints.save_checkpoint(ckpt, best)
    with pytest.raises(UserError, match=f"damaged: tensor {name} .* holds negative values; retrain it"):
        vanilla.load_generator(vs, 3, size=32, device="cpu")


# --------------------------------------------------------------------------- 10: the data fingerprint


def test_a_checkpoint_without_its_fingerprint_is_refused_and_the_fix_retrains(trained, tmp_path):
    vs, best = trained
    other = FakeVS(tmp_path / "b", n=40)
    other.key, other.meta = "other-9999999999", {**other.meta, "sha256": "e" * 64}
    ckpt = torch.load(best, weights_only=True)
    del ckpt["data"]  # nothing left to tell whose it is
    dest = gentypes.checkpoint_dir(other, 3, 32) / "best.pth"
    checkpoints.save_checkpoint(ckpt, dest)
    forced = r"retrain it with python GenVanillaNN.py \S*fake.mp4 true 2 --size 32$"
    with pytest.raises(UserError, match=rf"holds no data fingerprint .* trained on other-9999999999; {forced}"):
        vanilla.load_generator(other, 3, size=32, device="cpu")
    dest.write_bytes(best.read_bytes())  # a foreign one: its fix line retrains over it, not "already trained"
    with pytest.raises(UserError, match=rf"trained on other footage .*; {forced}"):
        vanilla.load_generator(other, 3, size=32, device="cpu")
    assert gentypes.train_command(4, "v.mp4", 128, force=True).endswith("--input image --size 128 --force")
    assert gentypes.train_command(2, "v.mp4").endswith("v.mp4 false 1")


# --------------------------------------------------------------------------- 11: --resume and the options typed


def test_resume_judges_the_options_typed_against_the_run_not_the_defaults(tmp_path, monkeypatch):
    """`--resume --lr 0.002` (the default) on a run at 5e-4 went on at 5e-4 in silence."""
    vs = FakeVS(tmp_path, n=40)
    out = tmp_path / "run"
    vanilla.train(vs, tiny_cfg(size=64, lr=5e-4), out=out, verbose=False)
    opening(monkeypatch, vs)
    argv = ["--resume", "--out", str(out), "--device", "cpu", "--batch", "8"]
    with pytest.raises(UserError, match=r"is a run with lr 0.0005; --resume continues it as it was: drop the lr 0.002"):
        GenVanillaNN.main([*argv, "--lr", "0.002"])
    with pytest.raises(UserError, match=r"is a run with seed 1337; .* drop the seed 7"):
        GenVanillaNN.main([*argv, "--seed", "7"])
    assert GenVanillaNN.main([*argv, "--epochs", "2", "--lr", "5e-4"]) == 0  # what the run has: fine
    assert torch.load(out / "latest.pth", weights_only=True)["epoch"] == 2


def test_the_options_typed_are_told_from_their_defaults():
    import argparse

    p = argparse.ArgumentParser()
    options.add_training_args(p, vanilla.VanillaConfig(), lr=2e-3, lr_help="", epochs_help="", folder="x")
    a, typed = options.parse_typed(p, ["clip.mp4", "--lr", "0.002", "--aug", "0.5"])
    assert a.lr == 2e-3 and typed == {"video", "lr", "aug_prob"}
    cfg = options.config_from_args(vanilla.VanillaConfig, a, typed=typed)
    assert cfg.typed == {"lr", "aug_prob"} and "typed" not in dataclasses.asdict(cfg)  # never stored
    assert options.parse_typed(p, ["--size", "64"])[1] == {"size"}
    assert options.parse_typed(p, [])[1] == set()


# --------------------------------------------------------------------------- 13: the saved target report


@pytest.fixture
def cached_clip(tmp_path):
    """A tiny video with a hand-written pose cache (no extraction): VideoSkeleton loads it as it is -> (video, its
    cache folder)."""
    n = 12
    video = write_video(tmp_path / "clip.mp4", [np.full((64, 64, 3), 10 * i, np.uint8) for i in range(n)])
    params = cache.extraction_params()
    digest = cache.file_hash(video)
    folder = cache.cache_dir_for(video, digest, params)
    folder.mkdir(parents=True, exist_ok=True)  # the same clip, so the same cache folder, in every test
    np.save(folder / "frames.npy", np.zeros((n, params["size"], params["size"], 3), np.uint8))
    skeletons = np.concatenate([np.repeat(POSE[None], n, 0), np.ones((n, 13, 1), np.float32)], axis=2)
    np.save(folder / "skeletons.npy", skeletons.astype(np.float32))
    np.save(folder / "times.npy", np.arange(n) / 25.0)
    meta = {"version": cache.CACHE_VERSION, "source": str(video), "sha256": digest, "params": params, "frames": n,
            "frame_indices": list(range(n)), "fps": 25.0, "detected": n, "crop": [0, 0, 64], "padding": [0, 0, 0, 0],
            "rotation": 0, "framing": params["framing"], "video_size": [64, 64], "duration": n / 25.0}  # fmt: skip
    (folder / "meta.json").write_text(json.dumps(meta))
    return video, folder


@pytest.mark.parametrize(
    "damage, why",
    [
        (lambda p: p.write_text("[1, 2]"), "is damaged (not a JSON object)"),
        (lambda p: p.write_text('{"frames": 12}'), "is damaged (it lacks 'camera')"),
        (lambda p: p.unlink(), "is missing"),
        (lambda p: (p.unlink(), p.mkdir()), "cannot be read (Is a directory)"),
    ],
    ids=["list", "missing-keys", "deleted", "unreadable"],
)
def test_a_damaged_or_lost_report_is_measured_again_and_said(cached_clip, damage, why, capsys):
    """`python VideoSkeleton.py <video>` prints the saved report again: a damaged one gave a KeyError traceback, a
    lost one nothing at all."""
    video, folder = cached_clip
    (folder / "report.json").write_text("{}")
    damage(folder / "report.json")
    VideoSkeleton.main([str(video)])
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and notes[0].startswith(f"note: the target report {folder / 'report.json'} {why}"), out
    assert notes[0].endswith("measured again from the cache below, without the camera check (--force extracts the "
                             "clip again for a whole one)")  # fmt: skip
    assert "target report (" in out and "12 frames" in out and "camera motion not measured" in out
    assert "too short to train on" in out


# --------------------------------------------------------------------------- 15: the data folder, the workers


def test_an_empty_deepdance_data_is_unset(tmp_path):
    """`DEEPDANCE_DATA= python ...` (how a shell clears it) put a cache/ wherever the command ran."""
    code = "from deepdance import files; print(files.DATA_DIR)"
    env = {**os.environ, "DEEPDANCE_DATA": "", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == str((ROOT / "data").resolve()), r.stderr


def test_workers_that_cannot_run_a_script_read_from_stdin_are_said_so(tmp_path):
    """Spawned extraction workers run the caller's main script again from its file; a script read from stdin has
    none, and its workers died "out of memory, or killed"."""
    video = write_video(tmp_path / "clip.mp4", [np.full((64, 64, 3), 10 * i, np.uint8) for i in range(8)])
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
              "from deepdance.cli import run_cli\nfrom deepdance.cache import VideoSkeleton\n"
              f"run_cli(lambda argv: VideoSkeleton({str(video)!r}, verbose=False))\n")  # fmt: skip
    r = subprocess.run([sys.executable, "-"], input=script, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "run the calling script again from its file" in lines[0] and "a script read from stdin?" in lines[0]
