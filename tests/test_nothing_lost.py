"""Nothing lost: two users at once, full disks, read-only places, foreign or tampered checkpoints.

Each defect reproduced has a test here that failed before its fix. Faults are made without root: a
process file-size limit (RLIMIT_FSIZE) stands in for a full disk, a path under a file or /proc for a place that
cannot be written, and the test hook (DEEPDANCE_TEST_PAUSE) stops work at a known point instead of racing it.
"""

import os
import resource
import signal
import subprocess
import sys
import threading

from deepdance import checkpoints, cli, files, gan, gentypes, options, trainer, vanilla
from deepdance.cli import UserError
from deepdance.video import VideoWriter

import numpy as np
import pytest
import torch

from conftest import ROOT, FakeVS, ctrl_c_after, read_video, run_script

TINY = {"ch": [8, 16], "n_res": 1}
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_cfg(**kw):
    kw.setdefault("epochs", 1)
    return vanilla.VanillaConfig(batch=8, size=32, device="cpu", model_args=TINY, **kw)


def frames(n, size=64, shade=0):
    return [np.full((size, size, 3), (shade + 7 * i) % 256, np.uint8) for i in range(n)]


# --------------------------------------------------------------------------- temporary names and the writer


def test_temporary_names_are_unique_per_thread_and_call(tmp_path):
    """Two threads of one process writing one file at once: each has its own temporary; both finish whole."""
    barrier, seen, errors = threading.Barrier(2), [], []

    def write(k):
        try:
            with files.atomic_path(tmp_path / "same.bin") as tmp:
                seen.append(tmp.name)
                tmp.write_bytes(bytes([k]) * 1000)
                barrier.wait(timeout=30)  # both temporaries exist at the same time
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(k,)) for k in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(seen)) == 2
    data = (tmp_path / "same.bin").read_bytes()
    assert data in (b"\x01" * 1000, b"\x02" * 1000)  # one of them, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.bin"]


def test_temporary_name_of_a_long_file_name_fits_255_bytes(tmp_path):
    name = "舞" * 79 + ".mp4"  # 241 bytes: valid, but not with a prefix in front
    with files.atomic_path(tmp_path / name) as tmp:
        assert len(tmp.name.encode()) <= 255 and tmp.suffix == ".mp4"
        tmp.write_bytes(b"x")
    assert (tmp_path / name).read_bytes() == b"x"


def test_directory_swap_finishes_before_a_ctrl_c_lands(tmp_path, monkeypatch):
    """Ctrl-C between the two renames of a directory swap used to leave the result under an .old- name."""
    target = tmp_path / "cache"
    target.mkdir()
    (target / "meta.json").write_text("old")
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C right after the first rename
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        with files.atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "meta.json").write_text("new")
    assert (target / "meta.json").read_text() == "new" and len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_writer_refuses_a_broken_file_and_keeps_the_previous_one(tmp_path):
    """A full disk while ffmpeg writes (here a 64 KB file-size limit on the process and its ffmpeg): one error
    line naming the file, exit non-zero, and the good video that was there still plays."""
    out = tmp_path / "demo.mp4"
    with VideoWriter(out, 25) as w:
        for f in frames(10):
            w.write(f)
    good = out.read_bytes()
    code = (
        "import sys, numpy as np; sys.path.insert(0, sys.argv[2])\n"
        "from deepdance.cli import run_cli\nfrom deepdance.video import VideoWriter\n"
        "def main(argv):\n"
        "    rng = np.random.default_rng(0)\n"
        "    with VideoWriter(sys.argv[1], 25) as w:\n"
        "        for _ in range(60):\n"
        "            w.write(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))\n"
        "run_cli(main)\n"
    )

    def limit():  # what a nearly full disk does to the writer: writes past 64 KB fail
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))

    r = subprocess.run([sys.executable, "-c", code, str(out), str(ROOT)], capture_output=True, text=True,
                       preexec_fn=limit, timeout=120)  # fmt: skip
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: cannot write {out}") and "disk full?" in lines[0], lines
    assert out.read_bytes() == good and len(read_video(out)[0]) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.mp4"]


# --------------------------------------------------------------------------- training: one run per folder


def test_a_second_training_into_a_busy_folder_refuses(tmp_path):
    vs = FakeVS(tmp_path, n=40)
    busy = trainer.TrainRun(tmp_path / "run", epochs=1, steps_per_epoch=1, images_per_step=1, time_budget=0,
                          best={"box_ssim": -1.0})  # fmt: skip
    with busy:  # another training holds the folder
        with pytest.raises(UserError, match="another training is writing to .*run right now"):
            vanilla.train(vs, tiny_cfg(), out=tmp_path / "run", verbose=False)
        assert not (tmp_path / "run" / "latest.pth").exists()
    vanilla.train(vs, tiny_cfg(), out=tmp_path / "run", verbose=False)  # free again: it trains
    assert (tmp_path / "run" / "latest.pth").exists()


@pytest.mark.slow
def test_two_training_processes_in_one_folder_one_trains_one_refuses(short_clip, tmp_path):
    """Run A holds the folder (paused by the test hook after its first epoch is saved); run B, started then,
    refuses with one line; A, let go, finishes: best.pth, latest.pth and the log are all A's."""
    out, marker = tmp_path / "one", tmp_path / "paused"
    cmd = [sys.executable, str(ROOT / "GenVanillaNN.py"), str(short_clip), "false", "2", "--epochs", "2", "--batch",
           "8", "--device", "cpu", "--out", str(out)]  # fmt: skip
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "DEEPDANCE_TEST_PAUSE": f"train:epoch-saved:{marker}",
    }
    a = subprocess.Popen([*cmd, "--lr", "1e-3"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: marker.exists() or a.poll() is not None)
        assert a.poll() is None, a.communicate()
        force = [*cmd[2:]]
        force[1] = "true"  # retrain from scratch: into the folder A is writing
        b = run_script("GenVanillaNN.py", *force, "--lr", "2e-3", timeout=300)
        lines = [line for line in b.stderr.splitlines() if line.strip()]
        assert b.returncode == 2 and len(lines) == 1 and "another training is writing to" in lines[0], b.stderr
        marker.unlink()  # let A go on
        assert a.wait(timeout=300) == 0, a.communicate()
    finally:
        if a.poll() is None:
            a.kill()
    for name in ("latest.pth", "best.pth"):
        assert torch.load(out / name, weights_only=True)["config"]["lr"] == 1e-3
    assert [r.split(",")[0] for r in (out / "train_log.csv").read_text().splitlines()[1:]] == ["1", "2"]


def wait_until(condition, seconds=300):
    """Poll until condition() (the test hook's marker appears: a state, not a time); fail after `seconds`."""
    import time

    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "the paused run never reached its pause point"
        time.sleep(0.05)


# --------------------------------------------------------------------------- checkpoints


@pytest.fixture
def trained(tmp_path):
    vs = FakeVS(tmp_path / "a", n=40)
    vanilla.train(vs, tiny_cfg(variant=2), verbose=False)
    return vs, gentypes.checkpoint_dir(vs, 3, 32) / "best.pth"


def test_a_foreign_checkpoint_is_refused_or_used_only_when_asked(trained, tmp_path, capsys):
    vs, best = trained
    other = FakeVS(tmp_path / "b", n=40)
    other.key, other.meta = "other-9999999999", {**other.meta, "sha256": "e" * 64}
    dest = gentypes.checkpoint_dir(other, 3, 32) / "best.pth"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(best.read_bytes())  # taichi1's best.pth copied over the sample's
    with pytest.raises(UserError, match=r"trained on other footage \(fake-0123456789\), not on other-9999999999"):
        vanilla.load_generator(other, 3, size=32, device="cpu")
    gen = vanilla.load_generator(other, 3, size=32, device="cpu", allow_foreign=True)
    assert gen.generate_batch(other.xy[:2]).shape == (2, 32, 32, 3)
    assert "warning: " in capsys.readouterr().err
    with pytest.raises(UserError, match="trained on other footage"):
        options.report_trained(dest, lambda p: vanilla.GenVanillaNN(p, "cpu"), "force=true", vs=other)


def test_a_checkpoint_of_other_extraction_settings_is_refused_naming_them(trained, tmp_path):
    vs, best = trained  # FakeVS records no framing: a checkpoint from before framings, the centre crop
    other = FakeVS(tmp_path / "b", n=40)
    other.meta = {**other.meta, "params": {**other.meta["params"], "frame_skip": 5, "framing": "person"}}
    dest = gentypes.checkpoint_dir(other, 3, 32) / "best.pth"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(best.read_bytes())
    with pytest.raises(UserError) as e:
        vanilla.load_generator(other, 3, size=32, device="cpu")
    assert "trained on frames of this video extracted with other settings: frame_skip 1 (this cache: 5), framing " \
           "center (this cache: person); retrain it with python GenVanillaNN.py" in str(e.value)  # fmt: skip
    assert vanilla.load_generator(vs, 3, size=32, device="cpu").size == 32  # its own data: used
    # A centre-framed target's commands say so; the default framing adds nothing.
    other.framing = "center"
    assert gentypes.train_command_for(other, 3, 32).endswith(" false 2 --size 32 --framing center")
    other.framing = "person"
    assert gentypes.train_command_for(other, 3).endswith(" false 2")


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda t: t.to(torch.int64), "is torch.int64, not torch.float32"),
        (lambda t: t > 0, "is torch.bool, not torch.float32"),
        (lambda t: torch.full_like(t, float("nan")), "holds NaN or inf"),
        (lambda t: t.clone().index_fill_(0, torch.tensor([0]), float("inf")), "holds NaN or inf"),
    ],
    ids=["int64", "bool", "nan", "inf"],
)
def test_tampered_weights_are_refused(trained, tamper, message):
    vs, best = trained
    ckpt = torch.load(best, weights_only=True)
    name = next(k for k, v in ckpt["model"].items() if v.is_floating_point() and v.dim() > 1)
    ckpt["model"][name] = tamper(ckpt["model"][name])
    checkpoints.save_checkpoint(ckpt, best)
    with pytest.raises(UserError, match=f"damaged: tensor {name} {message}.*retrain it"):
        vanilla.load_generator(vs, 3, size=32, device="cpu")


def test_resume_continues_the_run_as_it_was_configured(tmp_path, monkeypatch):
    vs = FakeVS(tmp_path, n=40)
    make_batch = ctrl_c_after(monkeypatch, vanilla, "make_batch", 2)  # at the first batch of epoch 2
    with pytest.raises(KeyboardInterrupt):
        vanilla.train(vs, tiny_cfg(epochs=3, lr=5e-4), out=tmp_path / "run", verbose=False)
    monkeypatch.setattr(vanilla, "make_batch", make_batch)
    resumed = vanilla.train(vs, tiny_cfg(epochs=0), out=tmp_path / "run", resume=True, verbose=False)  # plain
    ckpt = torch.load(tmp_path / "run" / "latest.pth", weights_only=True)
    assert ckpt["config"]["lr"] == 5e-4 and ckpt["config"]["epochs"] == 3 and resumed["epoch"] == 3
    with pytest.raises(UserError, match="a run with lr 0.0005; --resume continues it as it was"):
        vanilla.train(vs, tiny_cfg(lr=2e-2), out=tmp_path / "run", resume=True, verbose=False)


def test_a_resumed_gan_keeps_its_epochs(tmp_path, monkeypatch):
    vs = FakeVS(tmp_path, n=40)
    cfg = gan.GANConfig(size=32, epochs=3, batch=8, g_args=TINY, d_args={"ndf": 8}, device="cpu",
                           init_from_vanilla=False)  # fmt: skip
    make_batch = ctrl_c_after(monkeypatch, gan, "make_batch", 2)  # at the first batch of epoch 2
    with pytest.raises(KeyboardInterrupt):
        gan.train(vs, cfg, out=tmp_path / "gan", verbose=False)
    monkeypatch.setattr(gan, "make_batch", make_batch)
    plain = gan.GANConfig(size=32, batch=8, device="cpu")  # `GenGAN.py --resume`: no --epochs (default 12)
    summary = gan.train(vs, plain, out=tmp_path / "gan", resume=True, verbose=False)
    assert summary["epoch"] == 3


def test_checkpoint_on_a_full_disk_is_one_line_and_keeps_the_previous(tmp_path, monkeypatch):
    vs = FakeVS(tmp_path, n=40)
    vanilla.train(vs, tiny_cfg(), out=tmp_path / "run", verbose=False)
    before = (tmp_path / "run" / "latest.pth").read_bytes()

    def full_disk(obj, f, *a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 3584 vs 3478")

    monkeypatch.setattr(checkpoints.torch, "save", full_disk)
    with pytest.raises(UserError, match=r"cannot write checkpoint .*latest.pth: .* MB free there \(disk full\?\)"):
        vanilla.train(vs, tiny_cfg(epochs=2), out=tmp_path / "run", resume=True, verbose=False)
    assert (tmp_path / "run" / "latest.pth").read_bytes() == before
    assert not list((tmp_path / "run").glob(".tmp-*"))


def test_an_unwritable_checkpoint_folder_fails_before_training(tmp_path, monkeypatch):
    vs = FakeVS(tmp_path, n=40)
    (tmp_path / "a-file").write_text("x")
    calls = []
    monkeypatch.setattr(vanilla, "make_batch", lambda *a: calls.append(1))
    with pytest.raises(UserError, match="cannot write checkpoints to .*a-file/run: a file stands where a folder"):
        vanilla.train(vs, tiny_cfg(), out=tmp_path / "a-file" / "run", verbose=False)
    with pytest.raises(UserError, match="cannot write checkpoints to /sys/deepdance-test"):
        vanilla.train(vs, tiny_cfg(), out="/sys/deepdance-test", verbose=False)
    monkeypatch.setattr(files.shutil, "disk_usage", lambda p: _Usage(1 << 20))
    with pytest.raises(UserError, match=r"disk full \(1 MB free, about \d+ MB needed\)"):
        vanilla.train(vs, tiny_cfg(), out=tmp_path / "run", verbose=False)
    assert calls == []  # not one step was trained


class _Usage:
    def __init__(self, free):
        self.total, self.used, self.free = 10 * free, 9 * free, free


def test_the_train_log_lives_in_the_checkpoint(tmp_path, monkeypatch):
    """A force=true retrain interrupted between writing its checkpoint and rewriting train_log.csv used to lose
    the log of the checkpoint on disk: the checkpoint carries its log, and a resume writes the CSV from it."""
    vs = FakeVS(tmp_path, n=40)
    vanilla.train(vs, tiny_cfg(epochs=2), out=tmp_path / "run", verbose=False)

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.TrainLog, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):  # the retrain's epoch 1: checkpoint written, CSV not
        vanilla.train(vs, tiny_cfg(epochs=2, seed=7), out=tmp_path / "run", verbose=False)
    monkeypatch.undo()
    ckpt = torch.load(tmp_path / "run" / "latest.pth", weights_only=True)
    assert ckpt["epoch"] == 1 and [int(r["epoch"]) for r in ckpt["log"]] == [1]
    vanilla.train(vs, tiny_cfg(epochs=2, seed=7), out=tmp_path / "run", resume=True, verbose=False)
    rows = (tmp_path / "run" / "train_log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]
    assert torch.load(tmp_path / "run" / "latest.pth", weights_only=True)["config"]["seed"] == 7


# --------------------------------------------------------------------------- one line, never a traceback


@pytest.mark.slow
@pytest.mark.parametrize("script", ["VideoSkeleton.py", "GenNearest.py", "GenVanillaNN.py", "DanceDemo.py"])
def test_an_argument_over_255_bytes_is_one_line(script, tmp_path):
    long = str(tmp_path / ("x" * 300 + ".mp4"))
    args = ["--video_path", long] if script == "DanceDemo.py" else [long]
    r = run_script(script, *args, timeout=120)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("error: ") and "too long" in lines[0]


def test_ctrl_c_messages_name_resume_only_for_training():
    assert "--resume" not in cli.INTERRUPTED
    for script in ("GenVanillaNN.py", "GenGAN.py"):
        assert 'interrupted=INTERRUPTED + " (continue this training with --resume)"' in (ROOT / script).read_text()


def test_storage_faults_are_one_line_naming_the_file(capsys):
    def full():
        raise OSError(28, "No space left on device", "/data/cache/x/frames.npy")

    with pytest.raises(SystemExit) as e:
        cli.run_cli(lambda argv: full())
    assert e.value.code == 2
    assert capsys.readouterr().err == "error: cannot read or write /data/cache/x/frames.npy: disk full\n"


# --------------------------------------------------------------------------- extraction and the demo


@pytest.mark.slow
def test_two_threads_and_two_processes_on_a_fresh_data_dir_both_succeed():
    """The issue's first defect: two sessions pressing Run on the defaults of a fresh install. bench/load.py runs
    2 transfers at once as threads of one process, then as processes, each on a fresh data dir, and reads every
    file back (sample, caches, outputs)."""
    r = run_script("bench/load.py", "--runs", "2", timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith(("| threads", "| processes"))]
    assert [row.split("|")[3:7] for row in rows] == [[" 2 ", " 0 ", " 0 ", " 0 "]] * 2, r.stdout


def test_an_audio_only_file_is_called_what_it_is(tmp_path):
    from deepdance import cache

    import imageio_ffmpeg

    audio = tmp_path / "song.m4a"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=1", str(audio)], check=True)  # fmt: skip
    with pytest.raises(UserError, match=r"song.m4a has sound but no picture \(an audio-only file\)"):
        cache.VideoSkeleton(audio, verbose=False)


@pytest.mark.slow
def test_a_long_non_ascii_file_name_extracts(short_clip, tmp_path):
    from deepdance import cache

    clip = tmp_path / ("太极拳" * 26 + "练.mp4")  # 79 characters, 237 bytes + ".mp4"
    clip.write_bytes(short_clip.read_bytes())
    vs = cache.VideoSkeleton(clip, verbose=False)
    assert len(vs) > 0 and len(vs.cache_dir.name.encode()) <= 120


def test_extraction_refuses_a_disk_without_room_before_starting(short_clip, monkeypatch):
    from deepdance import cache, extraction

    monkeypatch.setattr(files.shutil, "disk_usage", lambda p: _Usage(2 << 20))
    monkeypatch.setattr(extraction, "_run_pool", lambda *a, **k: pytest.fail("extraction started"))
    with pytest.raises(UserError, match=r"cannot write the pose cache of short.mp4 .* disk full \(2 MB free"):
        cache.VideoSkeleton(short_clip, force=True, verbose=False)


@pytest.mark.slow
def test_deepdance_data_on_a_file_is_one_line(tmp_path):
    (tmp_path / "a-file").write_text("x")
    r = subprocess.run([sys.executable, str(ROOT / "DanceDemo.py"), "--out", str(tmp_path / "o.mp4")], cwd=ROOT,
                       env={**os.environ, "DEEPDANCE_DATA": str(tmp_path / "a-file")}, capture_output=True, text=True,
                       timeout=300)  # fmt: skip
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "a file stands where a folder is needed" in lines[0]
