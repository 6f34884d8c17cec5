"""Nothing lost, second pass: outputs, writes and signals.

Each defect (the signal at the pool's start-up is in test_reliability_extraction.py) has a test
here that failed before its fix. Synthetic data only; a signal reaches the process at a known point through the test
hook (DEEPDANCE_TEST_PAUSE), never by racing it.
"""

import errno
import gc
import math
import os
import signal
import subprocess
import sys

from deepdance import cli, evaluation, files, live, trainer, vanilla
from deepdance.checkpoints import save_checkpoint
from deepdance.cli import UserError
from deepdance.video import VideoWriter

import numpy as np
import pytest
import torch

import VideoSkeleton
from conftest import ROOT, FakeVS, read_video, write_video

TINY = {"ch": [8, 16], "n_res": 1}
pytestmark = pytest.mark.usefixtures("one_thread")


def frames(n, size=64, shade=0):
    return [np.full((size, size, 3), (shade + 7 * i) % 256, np.uint8) for i in range(n)]


def paused(cmd, point, marker, **env):
    """Start cmd (a list) with the test hook holding it at `point`; return the process once it is there."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DEEPDANCE_TEST_PAUSE": f"{point}:{marker}", **env}
    # bytes, decoded by hand: text mode would turn a progress bar's \r into lines
    # Ctrl-C as a terminal delivers it, whatever this process inherited (a background CI job ignores SIGINT).
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"it ended before {point}: {finish(proc, 60)}")
        import time

        time.sleep(0.02)  # polling a state (the marker), not timing the work
    return proc


def finish(proc, timeout):
    """(stdout, stderr) of a paused process let go, as str."""
    out, err = proc.communicate(timeout=timeout)
    return out.decode(), err.decode()


def lines(text):
    return [line for line in text.splitlines() if line.strip()]


# --------------------------------------------------------------------------- 1: a signal while a video is finished

WRITE = (
    "import sys, numpy as np; sys.path.insert(0, sys.argv[2])\n"
    "from deepdance.cli import run_cli\nfrom deepdance.video import VideoWriter\n"
    "def main(argv):\n"
    "    with VideoWriter(sys.argv[1], 25) as w:\n"
    "        for i in range(20):\n"
    "            w.write(np.full((64, 64, 3), 200 - 5 * i, np.uint8))\n"
    "run_cli(main)\n"
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_a_signal_while_the_writer_finishes_keeps_the_good_video(tmp_path, sig):
    """ffmpeg has finished the new file, not yet checked: the signal must not put it in place of the good one."""
    out = tmp_path / "keep.mp4"
    with VideoWriter(out, 25) as w:
        for f in frames(10):
            w.write(f)
    good = out.read_bytes()
    marker = tmp_path.parent / f"{tmp_path.name}-paused"  # outside the folder whose contents are checked
    proc = paused([sys.executable, "-c", WRITE, str(out), str(ROOT)], "video:finish", marker)
    os.kill(proc.pid, sig)  # the process alone, as `kill` does; the group's Ctrl-C reaches ffmpeg too
    _, err = finish(proc, 180)  # a loaded CI machine can take long to wind a process down
    assert proc.returncode == 130 and len(lines(err)) == 1 and lines(err)[0].startswith("interrupted:"), err
    assert out.read_bytes() == good and len(read_video(out)[0]) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]


# --------------------------------------------------------------------------- 2, 3, 8: one output rule


@pytest.fixture
def clip(tmp_path):
    return write_video(tmp_path / "clip.mp4", frames(12))


@pytest.mark.parametrize(
    "preview, message",
    [("clip.mp4", "--preview must name a .png file"), ("x.txt", "--preview must name a .png file")],
)
def test_videoskeleton_preview_never_overwrites_the_input(clip, tmp_path, preview, message, capsys):
    before = clip.read_bytes()
    with pytest.raises(SystemExit) as e:
        cli.run_cli(VideoSkeleton.main, [str(clip), "--preview", str(tmp_path / preview)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(lines(err)) == 1 and message in err, err
    assert clip.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_an_input_under_another_name_is_refused_by_every_output_option(clip, tmp_path):
    png = tmp_path / "still.png"
    png.write_bytes(b"x")
    os.link(png, tmp_path / "other.png")
    with pytest.raises(UserError, match=r"--preview .*other.png would overwrite an input video \(.*still.png\)"):
        files.output_path(tmp_path / "other.png", option="--preview", suffixes=(".png",), inputs=(png,))
    (tmp_path / "link.mp4").symlink_to(clip)
    with pytest.raises(UserError, match="would overwrite an input video"):
        files.output_path(tmp_path / "link.mp4", option="--out", suffixes=(".mp4",), inputs=(clip,))


@pytest.mark.parametrize(
    "where, what",
    [("sample/source.mp4", "the built-in sample clips"), ("sample/target.mp4", "the built-in sample clips"),
     ("cache/x/report.png", "the pose caches")],
)  # fmt: skip
def test_outputs_never_land_on_the_sample_or_a_cache(where, what):
    path = files.DATA_DIR / where
    with pytest.raises(UserError, match=f"--out {path} is among {what}"):
        files.output_path(path, option="--out", suffixes=(".mp4", ".png"))
    with pytest.raises(UserError, match=f"is among {what}"):
        files.output_path(path.parent, option="--out", folder=True)  # a training's or Evaluate's folder


def test_dancedemo_refuses_the_sample_source_as_out(capsys):
    import DanceDemo

    with pytest.raises(SystemExit) as e:
        cli.run_cli(DanceDemo.main, ["--out", str(files.DATA_DIR / "sample" / "source.mp4")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(lines(err)) == 1 and "is among the built-in sample clips" in err, err


def test_a_symbolic_link_loop_is_one_line(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    for value in (loop, loop / "x.mp4"):
        with pytest.raises(UserError, match=f"cannot write --out {value}: a symbolic link loop"):
            files.output_path(value, option="--out", suffixes=(".mp4",))
    assert files.resolved(loop) == loop  # DEEPDANCE_DATA: no RuntimeError at import


def test_deepdance_data_on_a_symbolic_link_loop_is_one_line(tmp_path, clip):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    r = subprocess.run([sys.executable, str(ROOT / "VideoSkeleton.py"), str(clip)], cwd=ROOT, capture_output=True,
                       text=True, env={**os.environ, "DEEPDANCE_DATA": str(loop)}, timeout=120)  # fmt: skip
    assert r.returncode == 2 and len(lines(r.stderr)) == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"{loop}" in r.stderr and "symbolic link loop" in r.stderr


# --------------------------------------------------------------------------- 14: the user's file named


def test_write_errors_name_the_users_file_not_a_temporary(tmp_path, capsys):
    target = tmp_path / "preview.png"
    with pytest.raises(OSError) as e, files.atomic_path(target) as tmp:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert e.value.filename == str(target) and e.value.errno == errno.ENOSPC
    with pytest.raises(OSError) as e, files.atomic_path(target):
        raise OSError(errno.ENOSPC, "No space left on device")  # a plain write() names nothing
    assert e.value.filename == str(target)
    cache = tmp_path / "cache"
    with pytest.raises(OSError) as e, files.atomic_path(cache) as tmp:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp / "frames.npy"))
    assert e.value.filename == str(cache / "frames.npy")
    with pytest.raises(SystemExit):
        cli.run_cli(lambda argv: (_ for _ in ()).throw(e.value))
    assert capsys.readouterr().err == f"error: cannot read or write {cache / 'frames.npy'}: disk full\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# --------------------------------------------------------------------------- 16: the disk filling under --dump


def test_a_full_disk_under_the_dump_is_one_oserror(capfd):
    arrays = {"real": np.random.default_rng(0).integers(0, 256, (20, 64, 64, 3), np.uint8), "n": np.arange(3)}
    with pytest.raises(OSError) as e:
        evaluation.save_npz("/dev/full", arrays)  # every write: ENOSPC
    gc.collect()  # np.savez's ZipFile.__del__ printed its traceback here
    assert e.value.errno == errno.ENOSPC and "Exception ignored" not in capfd.readouterr().err


def test_save_npz_reads_back_as_np_savez(tmp_path):
    arrays = {"a": np.arange(6).reshape(2, 3), "names": np.array(["x", "yz"])}
    evaluation.save_npz(tmp_path / "d.npz", arrays)
    with np.load(tmp_path / "d.npz") as d:
        assert sorted(d.files) == ["a", "names"] and (d["a"] == arrays["a"]).all() and list(d["names"]) == ["x", "yz"]


# --------------------------------------------------------------------------- 16: a forced retrain keeps the best


def tiny_cfg(**kw):
    return vanilla.VanillaConfig(**{"batch": 8, "size": 32, "device": "cpu", "model_args": TINY, "epochs": 1, **kw})


def test_an_interrupted_forced_retrain_keeps_the_previous_model_and_log(tmp_path, monkeypatch):
    vs, run = FakeVS(tmp_path, n=40), tmp_path / "run"
    vanilla.train(vs, tiny_cfg(epochs=2), out=run, verbose=False)
    best = torch.load(run / "best.pth", weights_only=True)
    best["best"]["box_ssim"] = 0.99  # a previous model the retrain's first epoch cannot beat
    save_checkpoint(best, run / "best.pth")
    kept = {name: (run / name).read_bytes() for name in trainer.KEPT_FILES}

    def interrupt(point):
        if point == "train:epoch-saved":
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "pause_here", interrupt)
    with pytest.raises(KeyboardInterrupt) as e:  # force=true: a retrain from scratch, interrupted after epoch 1
        vanilla.train(vs, tiny_cfg(epochs=3, seed=7), out=run, verbose=False)
    line = str(e.value)
    assert "best.pth is still the previous run's model (epoch 2, box_ssim 0.99)" in line, line
    assert f"in {run / 'previous'}" in line and "this run's epoch 1 (continue it with --resume)" in line
    assert (run / "best.pth").read_bytes() == kept["best.pth"]
    assert {n: (run / "previous" / n).read_bytes() for n in trainer.KEPT_FILES} == kept
    assert torch.load(run / "latest.pth", weights_only=True)["epoch"] == 1  # the new run can go on
    monkeypatch.undo()
    vanilla.train(vs, tiny_cfg(epochs=3, seed=7), out=run, resume=True, verbose=False)  # it ends: its best wins
    assert torch.load(run / "best.pth", weights_only=True)["config"]["seed"] == 7
    assert not (run / "previous").exists() and not (run / trainer.HELD_BEST).exists()


def test_a_retrain_that_beats_the_previous_model_replaces_it_at_once(tmp_path):
    vs, run = FakeVS(tmp_path, n=40), tmp_path / "run"
    vanilla.train(vs, tiny_cfg(), out=run, verbose=False)
    best = torch.load(run / "best.pth", weights_only=True)
    best["best"]["box_ssim"] = -math.inf  # anything beats it
    save_checkpoint(best, run / "best.pth")
    vanilla.train(vs, tiny_cfg(seed=7), out=run, verbose=False)
    assert torch.load(run / "best.pth", weights_only=True)["config"]["seed"] == 7
    assert not (run / "previous").exists()


# --------------------------------------------------------------------------- 4: the live recording's room


def test_live_out_checks_room_up_front(tmp_path, monkeypatch):
    monkeypatch.setattr(files.shutil, "disk_usage", lambda p: _Usage(8 << 20))
    with pytest.raises(UserError, match=r"cannot write --out .*live.mp4 to .*: disk full \(8 MB free, about 256 MB"):
        live.check_out(str(tmp_path / "live.mp4"), set())


def test_a_recording_stops_and_is_kept_before_the_disk_fills(tmp_path):
    out = tmp_path / "live.mp4"
    rec = live.Recorder(out, fps=5, reserve=1 << 62)  # "nearly full" from the first check on
    for i, f in enumerate(frames(12)):
        rec.add(f, i)
    # checked at the 5th frame written; the frame then on screen is written too
    assert rec.stopped and "nearly full" in rec.stopped and "stopped after 6 frames" in rec.stopped
    rec.finish()
    assert len(read_video(out)[0]) == rec.frames == 6


class _Usage:
    def __init__(self, free):
        self.total, self.used, self.free = 10 * free, 9 * free, free


# --------------------------------------------------------------------------- 16: signals at known points


def test_a_signal_once_the_work_is_done_changes_nothing(tmp_path):
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r})\nfrom deepdance.cli import run_cli\n"
    code += "run_cli(lambda argv: print('done'))\n"
    proc = paused([sys.executable, "-c", code], "cli:done", tmp_path / "paused")
    os.kill(proc.pid, signal.SIGINT)
    (tmp_path / "paused").unlink()
    out, err = finish(proc, 60)
    assert proc.returncode == 0 and out == "done\n" and err == "", err
