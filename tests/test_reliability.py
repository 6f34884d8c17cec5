"""Reliability (issue 8): every script's CLI on bad input, interrupted work, untrusted files, numerics.

Bad input must give one line on stderr naming the problem (and the fix), a non-zero exit, no traceback and
nothing half-written. Most of the matrix runs each script's main() in-process through run_cli, exactly what
`python <script>.py` runs, with file descriptors 1 and 2 captured (capfd: native libraries' output counts too)
and any exception other than the clean exit failing the test. A few cases, the interrupts and the kill-and-resume
run as real processes.
"""

import ast
import importlib
import json
import os
import pickletools
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from deepdance import appbackend, cache, files, gentypes, networks, recipes, video
from deepdance.cli import UserError, run_cli
from deepdance.files import clean_stale_temps
from deepdance.video import VideoWriter

import cv2
import numpy as np
import pytest
import torch

from conftest import ROOT, run_script, write_video

# --------------------------------------------------------------------------- helpers


def terminal_lines(stderr):
    """The lines a terminal shows: progress bars redraw in place with \r, so each line's last state counts."""
    lines = [line.split("\r")[-1].strip() for line in stderr.split("\n")]
    return [line for line in lines if line]


def assert_one_line(code, stderr, needle, prefix="error:"):
    assert code not in (0, None), f"exit code {code}"
    assert "Traceback" not in stderr, stderr
    lines = terminal_lines(stderr)
    assert len(lines) == 1 and lines[0].startswith(prefix), stderr
    assert needle in lines[0].lower(), lines[0]


def run_main(module, argv, capfd):
    """`python <module>.py argv` in-process: (exit code, stdout, stderr); an uncaught exception fails the test."""
    main = importlib.import_module(module).main
    capfd.readouterr()
    try:
        run_cli(main, [str(a) for a in argv])
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capfd.readouterr()
    return code, out, err


def tree(*roots):
    """Every path under the roots (what a run may have left behind), but the build locks' empty files (one per
    cache: they hold nothing, and removing them would race with a second process taking the lock)."""
    return {p for r in roots if Path(r).exists() for p in Path(r).rglob("*") if p.suffix != ".lock"}


def children(pid):
    """pids whose parent is pid (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(predicate, timeout, what):
    t = time.monotonic()
    while not predicate():
        if time.monotonic() - t > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


# --------------------------------------------------------------------------- test footage


def write_bytes(path, data):
    Path(path).write_bytes(data)
    return Path(path)


@pytest.fixture(scope="module")
def clips(tmp_path_factory, short_clip):
    """Every bad (and awkward but valid) input, made once and shared by all scripts."""
    from deepdance import mannequin

    d = tmp_path_factory.mktemp("reliability")
    frames = [f for _, f in video.iter_frames(short_clip)]
    noise = np.random.default_rng(8).integers(0, 256, 20000, dtype=np.uint8).tobytes()
    mp4v = write_video(d / "whole.mp4", frames[:30]).read_bytes()
    # An H.264 file with its index first (as phones and our VideoWriter write it), cut short: it opens, declares
    # 40 frames, and decoding stops after about a third of them.
    with VideoWriter(d / "fast.mp4", 25) as w:
        for f in frames[:40]:
            w.write(f)
    h264 = (d / "fast.mp4").read_bytes()
    room = np.clip(mannequin.background(mannequin.FIGURES["target"]), 0, 255).astype(np.uint8)[..., ::-1]  # BGR
    uhd = [cv2.copyMakeBorder(cv2.resize(f, (2700, 2160)), 0, 0, 570, 570, cv2.BORDER_REPLICATE) for f in frames[:4]]
    c = {
        "missing": d / "missing.mp4",
        "directory": d / "folder",
        "empty": write_bytes(d / "empty.mp4", b""),
        "text": write_bytes(d / "notes.mp4", b"this is not a video\n" * 40),
        "random bytes": write_bytes(d / "noise.mp4", noise),
        "png image": write_bytes(d / "photo.png", cv2.imencode(".png", frames[0])[1].tobytes()),
        "jpeg named .mp4": write_bytes(d / "photo.mp4", cv2.imencode(".jpg", frames[0])[1].tobytes()),
        "truncated mp4": write_bytes(d / "truncated.mp4", mp4v[: len(mp4v) // 2]),  # its index (moov) is lost
        "zero frames": d / "zero.mp4",
        "corrupt mp4": write_bytes(d / "corrupt.mp4", h264[: int(0.6 * len(h264))]),
        "no person": write_video(d / "empty_room.mp4", [np.ascontiguousarray(room)] * 10),
        # Valid but awkward: the person walks out for 20 frames (0.8 s); tiny frames; 4K frames.
        "person leaves": write_video(d / "leaves.mp4", frames[:20] + [np.ascontiguousarray(room)] * 20 + frames[40:]),
        "32x32": write_video(
            d / "tiny.mp4", [cv2.resize(f, (32, 32), interpolation=cv2.INTER_AREA) for f in frames[:8]]
        ),
        "4K": write_video(d / "uhd.mp4", uhd),
    }
    c["directory"].mkdir()
    cv2.VideoWriter(str(c["zero frames"]), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 64)).release()
    return c


@pytest.fixture(scope="module")
def target_vs(short_clip):
    """The short sample clip as a target, extracted once."""
    return cache.VideoSkeleton(short_clip, verbose=False)


# --------------------------------------------------------------------------- the bad-input matrix

# Every way a script takes a video, "{bad}" standing for the bad file.
ENTRIES = {
    "VideoSkeleton": ("VideoSkeleton", ["{bad}"]),
    "GenNearest": ("GenNearest", ["{bad}"]),
    "DanceDemo target": ("DanceDemo", ["--video_path", "{bad}", "--out", "{out}/demo.mp4"]),
    "DanceDemo source": ("DanceDemo", ["--video_path", "{target}", "--source", "{bad}", "--out", "{out}/demo.mp4"]),
    "Evaluate target": ("Evaluate", ["--video_path", "{bad}", "--gen_type", "1", "--out", "{out}/eval"]),
    "Evaluate test": ("Evaluate", ["--video_path", "{target}", "--test", "{bad}", "--gen_type", "1", "--out", "{out}"]),
    "GenVanillaNN": ("GenVanillaNN", ["{bad}", "false", "2", "--out", "{out}/vanilla"]),
    "GenGAN": ("GenGAN", ["{bad}", "--out", "{out}/gan"]),
}
# Bad files -> what the one line must say. All fail before any extraction starts.
FILE_CASES = {
    "missing": "not found",
    "directory": "is a directory",
    "empty": "empty (0 bytes)",
    "text": "cannot read a frame",
    "random bytes": "cannot read a frame",
    "png image": "is a png image, not a video",
    "jpeg named .mp4": "is a jpeg image, not a video",
    "truncated mp4": "cannot read a frame",
    "zero frames": "cannot read a frame",
}


def entry_argv(entry, bad, target, out):
    return [a.format(bad=bad, target=target, out=out) for a in ENTRIES[entry][1]]


@pytest.mark.parametrize("case", FILE_CASES)
@pytest.mark.parametrize("entry", ENTRIES)
def test_bad_file_gives_one_line_and_leaves_nothing(
    entry, case, clips, short_clip, target_vs, data_dir, tmp_path, capfd
):
    out = tmp_path / "out"
    before = tree(data_dir, clips["text"].parent)
    code, _, err = run_main(ENTRIES[entry][0], entry_argv(entry, clips[case], short_clip, out), capfd)
    assert_one_line(code, err, FILE_CASES[case])
    assert tree(data_dir, clips["text"].parent) == before and not out.exists()


@pytest.mark.parametrize(
    "entry, case, needle",
    [
        ("VideoSkeleton", "corrupt mp4", "is damaged: only"),
        ("DanceDemo source", "corrupt mp4", "is damaged: only"),
        ("GenVanillaNN", "corrupt mp4", "is damaged: only"),
        ("VideoSkeleton", "no person", "no person detected"),
        ("Evaluate test", "no person", "no person detected"),
        ("GenNearest", "no person", "no person detected"),
    ],
)
def test_bad_footage_found_during_extraction(
    entry, case, needle, clips, short_clip, target_vs, data_dir, tmp_path, capfd
):
    out = tmp_path / "out"
    before = tree(data_dir)
    code, _, err = run_main(ENTRIES[entry][0], entry_argv(entry, clips[case], short_clip, out), capfd)
    assert_one_line(code, err, needle)
    assert "re-encode it" in err or case != "corrupt mp4"  # the line names the fix
    assert tree(data_dir) == before and not out.exists()


def test_scripts_as_real_processes(clips, short_clip, target_vs, tmp_path):
    """The same contract seen from a shell: exit status 2 and one line on the real stderr (a few scripts: the
    in-process matrix above runs the same code)."""
    entries = ("VideoSkeleton", "DanceDemo source", "GenVanillaNN")
    runs = {entry: entry_argv(entry, clips["random bytes"], short_clip, tmp_path / entry) for entry in entries}
    runs["unknown gen_type"] = ["--gen_type", "10", "--video_path", short_clip]
    scripts = {**{e: ENTRIES[e][0] for e in entries}, "unknown gen_type": "DanceDemo"}
    with ThreadPoolExecutor(len(runs)) as pool:
        procs = {e: pool.submit(run_script, f"{scripts[e]}.py", *argv, timeout=120) for e, argv in runs.items()}
    for entry, proc in procs.items():
        proc = proc.result()
        assert proc.returncode == 2, (entry, proc.stderr)
        needle = "invalid choice: 10" if entry == "unknown gen_type" else "cannot read a frame"
        assert_one_line(proc.returncode, proc.stderr, needle)
        assert not (tmp_path / entry).exists()


@pytest.mark.parametrize(
    "module, argv, needle",
    [
        ("DanceDemo", ["--gen_type", "10"], "invalid choice: 10"),
        ("Evaluate", ["--gen_type", "10"], "unknown gen_type 10"),
        ("GenVanillaNN", ["x.mp4", "false", "3"], "invalid choice: 3"),
        ("GenGAN", ["x.mp4", "--mode", "lsgan"], "invalid choice: 'lsgan'"),
        ("VideoSkeleton", ["x.mp4", "--frame_skip", "two"], "invalid int value"),
    ],
)
def test_unknown_choices_are_one_line_naming_help(module, argv, needle, capfd):
    code, _, err = run_main(module, argv, capfd)
    assert_one_line(code, err, needle)
    assert "--help)" in err or module == "Evaluate"  # argparse's own errors also say where to look


def test_person_leaving_for_a_while_is_reported_not_refused(clips, short_clip, target_vs, tmp_path, capfd):
    code, out, err = run_main("VideoSkeleton", [clips["person leaves"]], capfd)
    assert code == 0 and "Traceback" not in err, err
    vs = cache.VideoSkeleton(clips["person leaves"], verbose=False)
    missing = int((~vs.valid).sum())
    # The empty stretch (frames 20-39), give or take a frame or two of tracking at its ends.
    assert vs.valid[:18].all() and not vs.valid[22:38].any() and vs.valid[42:].all() and 16 <= missing <= 24
    assert f"no person in {missing} frames (1 gaps" in out
    # As a source: the gap is filled and labelled; as a target: the frames with a person are used.
    demo = tmp_path / "demo.mp4"
    code, out, err = run_main(
        "DanceDemo", ["--video_path", short_clip, "--source", clips["person leaves"], "--out", demo], capfd
    )
    assert code == 0 and f"{missing} without a person filled in" in out, err
    assert video.probe_video(demo)[0] == 60
    code, out, err = run_main("GenNearest", [clips["person leaves"]], capfd)
    assert code == 0 and "selection block" in out, err


@pytest.mark.parametrize("case, side", [("32x32", 32), ("4K", 3840)])
def test_tiny_and_4k_frames_work(case, side, clips, short_clip, target_vs, tmp_path, capfd):
    assert video.probe_video(clips[case])[2] == side
    code, out, err = run_main("VideoSkeleton", [clips[case]], capfd)
    assert code == 0 and "Traceback" not in err, err
    vs = cache.VideoSkeleton(clips[case], verbose=False)
    assert vs.frames_all.shape[1:] == (cache.FRAME_SIZE, cache.FRAME_SIZE, 3) and vs.valid.mean() >= 0.75
    demo = tmp_path / "demo.mp4"
    code, out, err = run_main("DanceDemo", ["--video_path", short_clip, "--source", clips[case], "--out", demo], capfd)
    assert code == 0 and demo.exists(), err


# --------------------------------------------------------------------------- caches


@pytest.fixture
def mini_clip(tmp_path, short_clip):
    frames = [f for _, f in video.iter_frames(short_clip, 0, 12)]
    return write_video(tmp_path / "mini.mp4", frames)


def test_cache_from_another_version_is_recomputed_with_a_note(mini_clip, capsys):
    first = cache.VideoSkeleton(mini_clip, verbose=False)
    frames, ske = np.array(first.frames_all), first.ske_all.copy()
    (first.cache_dir / "meta.json").write_text(json.dumps({**first.meta, "version": 0}))
    capsys.readouterr()
    again = cache.VideoSkeleton(mini_clip)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"cache {first.cache_dir.name} was written by another version (cache version 0, this one reads "
        f"{cache.CACHE_VERSION}): extracting again"
    )
    assert again.meta["version"] == cache.CACHE_VERSION and again.cache_dir == first.cache_dir
    np.testing.assert_array_equal(np.array(again.frames_all), frames)
    np.testing.assert_array_equal(again.ske_all, ske)


@pytest.mark.parametrize(
    "damage, note",
    [
        (lambda c: (c / "frames.npy").write_bytes((c / "frames.npy").read_bytes()[:5000]), "is damaged (valueerror"),
        (lambda c: (c / "skeletons.npy").write_bytes(b"\x93NUMPY junk"), "is damaged (valueerror"),
        (lambda c: (c / "skeletons.npy").unlink(), "is damaged (filenotfounderror"),
        (lambda c: (c / "meta.json").write_text("{not json"), "is damaged (meta.json"),
        (lambda c: (c / "meta.json").write_text("[1, 2]"), "is damaged (meta.json"),
        (lambda c: np.save(c / "frames.npy", np.zeros((3, 8, 8, 3), np.uint8)), "is damaged (frames.npy holds"),
    ],
    ids=["frames truncated", "skeletons garbage", "skeletons missing", "meta garbage", "meta a list", "frames shape"],
)
def test_damaged_cache_is_not_used(damage, note, target_vs, tmp_path, monkeypatch, capsys):
    # A copy of the target's cache in a private cache folder, then damaged.
    monkeypatch.setattr(cache, "CACHE_DIR", tmp_path)
    copy = shutil.copytree(target_vs.cache_dir, tmp_path / target_vs.cache_dir.name)
    cache_dir, meta = cache.load_cache(target_vs.video_path, target_vs.meta["params"])
    assert cache_dir == copy and meta == target_vs.meta  # the intact copy is used
    damage(copy)
    capsys.readouterr()
    assert cache.load_cache(target_vs.video_path, target_vs.meta["params"], verbose=True) == (copy, None)
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"cache {copy.name} is damaged (") and line.endswith(": extracting again"), line
    assert note in line.lower(), line


def test_damaged_cache_is_extracted_again_with_a_note(mini_clip, capsys):
    first = cache.VideoSkeleton(mini_clip, verbose=False)
    frames = np.array(first.frames_all)
    npy = first.cache_dir / "frames.npy"
    npy.write_bytes(npy.read_bytes()[: npy.stat().st_size // 3])
    capsys.readouterr()
    again = cache.VideoSkeleton(mini_clip)
    note = capsys.readouterr().out.splitlines()[0]
    assert note.startswith(f"cache {first.cache_dir.name} is damaged (") and note.endswith("extracting again")
    np.testing.assert_array_equal(np.array(again.frames_all), frames)


@pytest.mark.slow
def test_stale_temporary_files_are_cleaned_and_a_cache_caught_mid_swap_is_restored(tmp_path):
    """Staleness is the owner's flock, not a PID: a live writer in another process (or PID namespace, or this
    process) keeps its temporaries; a dead one's are removed, and a cache caught mid-swap is put back."""
    d = tmp_path
    dead, alive_here, alive_there = "d" * 16, None, "a" * 16
    (d / f".lock-{dead}").write_text("")  # its owner died: nobody holds the lock
    (d / f".tmp-{dead}-clip-0123456789").mkdir()
    (d / f".tmp-{dead}-clip-0123456789" / "frames-0.raw").write_bytes(b"x")
    (d / f".tmp-{dead}-best.pth").write_bytes(b"half a checkpoint")
    (d / f".old-{dead}-other-0123456789").mkdir()  # killed between atomic_path's two renames
    (d / f".old-{dead}-other-0123456789" / "meta.json").write_text("{}")
    holder = subprocess.Popen(  # another process writing right now: it holds its lock
        [sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(600)",
         str(d / f".lock-{alive_there}")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        (d / f".tmp-{alive_there}-theirs.pth").write_bytes(b"being written by a live process")
        owner = files._TempOwner(d)  # this process, writing too
        alive_here = owner.token
        (d / f".tmp-{alive_here}-mine.pth").write_bytes(b"being written by this process")
        (d / ".tmp-notes.txt").write_text("not ours")
        done = clean_stale_temps(d)
        assert len(done) == 4  # three temporaries and the dead owner's lock
        assert sorted(p.name for p in d.iterdir()) == sorted(
            [".tmp-notes.txt", f".tmp-{alive_here}-mine.pth", f".tmp-{alive_there}-theirs.pth", "other-0123456789",
             f".lock-{alive_here}", f".lock-{alive_there}"]
        )  # fmt: skip
        assert (d / "other-0123456789" / "meta.json").read_text() == "{}"
        owner.release()
    finally:
        holder.kill()
        holder.wait()
    assert len(clean_stale_temps(d)) == 3  # both owners gone now: their temporaries and the other's lock
    assert clean_stale_temps(d / "nowhere") == []


def test_read_rows_equals_slicing(target_vs):
    frames = target_vs.frames_all
    for a, b in ((0, 1), (5, 21), (50, 64), (58, 99), (70, 80)):
        np.testing.assert_array_equal(video.read_rows(frames, a, b), np.array(frames[a:b]))
    plain = np.arange(40).reshape(10, 4)
    np.testing.assert_array_equal(video.read_rows(plain, 3, 7), plain[3:7])


# --------------------------------------------------------------------------- interrupted extraction


@pytest.fixture
def cached_clip(tmp_path, sample_target):
    """A 200-frame clip (about 6 s of extraction on two workers) that already has a cache (1 frame in 10)."""
    clip = write_video(tmp_path / "longer.mp4", [f for _, f in video.iter_frames(sample_target, 0, 200)])
    vs = cache.VideoSkeleton(clip, frame_skip=10, verbose=False)
    files = {p.name: p.read_bytes() for p in vs.cache_dir.iterdir()}
    return clip, vs.cache_dir, files


def _start_forced_extraction(clip, point, marker):
    """`python VideoSkeleton.py clip true 1` in its own process group, paused by the test hook at `point` of the
    extraction (extract:running: the workers are reading frames; extract:written: the new cache is complete, not
    yet renamed into place); returns (process, its workers) once it is there."""
    env = {**os.environ, "DEEPDANCE_TEST_PAUSE": f"{point}:{marker}"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "VideoSkeleton.py"), str(clip), "true", "1", "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    wait_for(lambda: marker.exists() or proc.poll() is not None, 120, f"the extraction to reach {point}")
    assert proc.poll() is None, proc.communicate()
    return proc, children(proc.pid)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["extract:running", "extract:written"])
def test_ctrl_c_during_extraction_keeps_the_old_cache(cached_clip, point, tmp_path):
    """Ctrl-C while the workers read frames, and in the last moment (the new cache complete, not yet in place):
    exit 130 with one line, the old cache as it was, nothing left behind."""
    clip, cache_dir, cached = cached_clip
    proc, kids = _start_forced_extraction(clip, point, tmp_path / "paused")
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    _, err = proc.communicate(timeout=60)
    assert_one_line(proc.returncode, err.decode(), "nothing half-written", prefix="interrupted:")
    assert proc.returncode == 130
    assert {p.name: p.read_bytes() for p in cache_dir.iterdir()} == cached
    assert not list(cache.CACHE_DIR.glob(".tmp-*")) and not list(cache.CACHE_DIR.glob(".old-*"))
    wait_for(lambda: not any(alive(k) for k in kids), 10, "the workers to exit")


@pytest.mark.slow
def test_kill_during_extraction_keeps_the_old_cache_and_the_next_run_cleans_up(cached_clip, monkeypatch, tmp_path):
    clip, cache_dir, cached = cached_clip
    proc, kids = _start_forced_extraction(clip, "extract:running", tmp_path / "paused")
    proc.kill()  # SIGKILL: no clean-up is possible
    proc.communicate(timeout=60)
    assert list(cache.CACHE_DIR.glob(".tmp-*"))  # left behind, as expected
    wait_for(lambda: not any(alive(k) for k in kids), 10, "orphaned workers to exit")
    assert {p.name: p.read_bytes() for p in cache_dir.iterdir()} == cached

    def no_extract(*a, **k):
        raise AssertionError("the old cache is valid: nothing to extract")

    monkeypatch.setattr(cache, "extract", no_extract)
    vs = cache.VideoSkeleton(clip, frame_skip=10, verbose=False)
    assert vs.cache_dir == cache_dir and not list(cache.CACHE_DIR.glob(".tmp-*"))


# --------------------------------------------------------------------------- checkpoints


class RunsCode:
    """Unpickling this calls open(marker, "w"): a stand-in for whatever a malicious checkpoint would run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickled_globals(path):
    """The 'module.name' globals a .pth's pickle would import, listed with pickletools (nothing is unpickled)."""
    with zipfile.ZipFile(path) as z:
        data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    found, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif op.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
        elif op.name == "STACK_GLOBAL":
            found.add(".".join(strings[-2:]))
    return found


def vanilla_checkpoint(gen_type=3, size=64, **changes):
    from deepdance import vanilla

    variant = {2: 1, 3: 2}[gen_type]
    args = recipes.size_recipe(size).generator(variant)
    torch.manual_seed(0)
    ckpt = {"format": vanilla.CKPT_FORMAT, "gen_type": gen_type, "variant": variant, "config": {"size": size},
            "model_args": args,
            "model": networks.build_net(variant, args).state_dict(), "epoch": 1, "val": {}}  # fmt: skip
    return {**ckpt, **changes}


def write_checkpoint(case, path, marker):
    """Write the checkpoint of a case to path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if case == "missing":
        return
    if case == "corrupt":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
        return
    if case == "truncated":
        torch.save(vanilla_checkpoint(), path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return
    ckpt = {
        "runs code": lambda: {**vanilla_checkpoint(), "model": RunsCode(marker)},
        "not a dict": lambda: [1, 2, 3],
        "GAN checkpoint": lambda: vanilla_checkpoint(format="deepdance-gan-1"),
        "other gen_type": lambda: vanilla_checkpoint(gen_type=2),
        "other size": lambda: vanilla_checkpoint(size=128),
        "keys missing": lambda: {k: v for k, v in vanilla_checkpoint().items() if k != "model"},
        "tampered shapes": lambda: vanilla_checkpoint(model={"stem.0.weight": torch.zeros(3, 3)}),
        "tampered model_args": lambda: vanilla_checkpoint(model_args={"size": 64, "ch": "rm -rf"}),
    }[case]()
    torch.save(ckpt, path)


CKPT_CASES = {
    "missing": "no checkpoint for gen_type 3",
    "corrupt": "cannot read checkpoint",
    "truncated": "cannot read checkpoint",
    "runs code": "cannot read checkpoint",
    "not a dict": "is not a deepdance-vanilla-1 checkpoint",
    "GAN checkpoint": "is not a deepdance-vanilla-1 checkpoint",
    "other gen_type": "is for gen_type 2, not 3",
    "other size": "is for size 128, not 64: pass --size 128",
    "keys missing": "lacks model",
    "tampered shapes": "checkpoint",
    "tampered model_args": "checkpoint",
}
CKPT_ENTRIES = {
    "DanceDemo": ("DanceDemo", ["--gen_type", "3", "--video_path", "{target}", "--out", "{out}/demo.mp4"]),
    "Evaluate": ("Evaluate", ["--gen_type", "3", "--video_path", "{target}", "--out", "{out}/eval"]),
    "GenVanillaNN": ("GenVanillaNN", ["{target}", "false", "2"]),
    "GenVanillaNN --resume": ("GenVanillaNN", ["{target}", "false", "2", "--resume"]),
}


@pytest.fixture
def vanilla_dir(target_vs):
    """Where gen_type 3 at 64 px is looked for on the target; emptied afterwards (other tests expect none)."""

    path = gentypes.checkpoint_dir(target_vs, 3, 64)
    yield path
    shutil.rmtree(path.parent, ignore_errors=True)


@pytest.mark.parametrize(
    "entry, case",
    # vanilla without a checkpoint is no error: it trains one.
    [(e, c) for e in CKPT_ENTRIES for c in CKPT_CASES if (e, c) != ("GenVanillaNN", "missing")],
)
def test_bad_checkpoint_gives_one_line(entry, case, vanilla_dir, short_clip, data_dir, tmp_path, capfd):
    marker = tmp_path / "code-ran"
    name = "latest.pth" if entry.endswith("--resume") else "best.pth"
    write_checkpoint(case, vanilla_dir / name, marker)
    before = tree(data_dir)
    out = tmp_path / "out"
    argv = [a.format(target=short_clip, out=out) for a in CKPT_ENTRIES[entry][1]]
    code, _, err = run_main(CKPT_ENTRIES[entry][0], argv, capfd)
    if case == "missing" and name == "latest.pth":  # the fix is the command that trains from scratch
        assert_one_line(code, err, "nothing to resume: checkpoint not found")
        assert err.strip().endswith(f"train from scratch with python GenVanillaNN.py {short_clip.resolve()} false 2")
    else:
        assert_one_line(code, err, CKPT_CASES[case].lower())
    if case.startswith("tampered") and name == "best.pth":  # the net could not be rebuilt: say so, and the fix
        assert "does not fit this version's unet" in err.lower() and "retrain it" in err
    assert not marker.exists(), "unpickling ran code from the checkpoint"
    assert tree(data_dir) == before and not out.exists()


@pytest.mark.parametrize(
    "case",
    [
        "runs code",
        "other size",
        "lacks variant",
        "tampered shapes",
        "tampered model_args",
    ],
)
def test_bad_gan_checkpoint_gives_one_line(case, target_vs, vanilla_dir, short_clip, tmp_path, capfd):
    from deepdance import gan

    marker = tmp_path / "code-ran"
    ckpt = {**vanilla_checkpoint(), "format": gan.CKPT_FORMAT, "gen_type": 4, "temporal": False}
    ckpt = {
        "runs code": {**ckpt, "model": RunsCode(marker)},
        "other size": {**ckpt, "config": {"size": 128}},
        "lacks variant": {k: v for k, v in ckpt.items() if k != "variant"},
        "tampered shapes": {**ckpt, "model": {"stem.0.weight": torch.zeros(3, 3)}},
        "tampered model_args": {**ckpt, "model_args": {"size": 64, "ch": "rm -rf"}},
    }[case]
    path = gentypes.checkpoint_dir(target_vs, 4, 64) / "best.pth"
    path.parent.mkdir(parents=True)
    torch.save(ckpt, path)
    argv = ["--gen_type", "4", "--video_path", short_clip, "--out", tmp_path / "demo.mp4"]
    code, _, err = run_main("DanceDemo", argv, capfd)
    assert_one_line(code, err, "cannot read checkpoint" if case == "runs code" else "checkpoint")
    if case.startswith("tampered"):
        assert "does not fit this version's unet" in err.lower() and "retrain it (GenGAN.py with --force)" in err
    assert not marker.exists() and not (tmp_path / "demo.mp4").exists()


@pytest.mark.slow
def test_a_checkpoint_that_runs_code_is_refused_everywhere(target_vs, vanilla_dir, short_clip, tmp_path, capfd):
    from deepdance import gan, vanilla

    marker = tmp_path / "code-ran"
    crafted = tmp_path / "crafted.pth"
    write_checkpoint("runs code", crafted, marker)
    # Proof the file is hostile, read without running it: its pickle imports open(), which unpickling would call.
    assert "builtins.open" in pickled_globals(crafted) or "io.open" in pickled_globals(crafted)
    gan_dir = gentypes.checkpoint_dir(target_vs, 4, 64)
    for folder in (vanilla_dir, gan_dir):
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(crafted, folder / "best.pth")
        shutil.copy(crafted, folder / "latest.pth")
    # The real command line: gen_type 3 goes through vanilla's loader, 4 through gan's.
    for gen_type in (3, 4):
        out = tmp_path / "o.mp4"
        proc = run_script("DanceDemo.py", "--gen_type", gen_type, "--video_path", short_clip, "--out", out)
        assert_one_line(proc.returncode, proc.stderr, "cannot read checkpoint")
        assert "weights only load failed" in proc.stderr.lower()
    # The training scripts (they read best.pth before training, latest.pth to resume) and the loaders.
    for module, argv in (("GenGAN", [short_clip]), ("GenGAN", [short_clip, "--resume"])):
        code, _, err = run_main(module, argv, capfd)
        assert_one_line(code, err, "cannot read checkpoint")
    for load, gen_type in ((vanilla.load_generator, 3), (gan.load_generator, 4)):
        with pytest.raises(UserError, match="cannot read checkpoint"):
            load(target_vs, gen_type)
    assert not appbackend.training_summaries(target_vs.key)  # the app's model list skips it
    assert not marker.exists(), "a loader ran the checkpoint's code"


def test_nothing_in_the_project_unpickles():
    """Project code never imports pickle and its kin, torch.load always has weights_only=True, np.load never
    allows pickles (tests may pickle: they craft the hostile files)."""
    banned = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
    problems = []
    files = [p for p in ROOT.glob("*.py")] + list((ROOT / "bench").glob("*.py"))
    assert len(files) >= 8
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            where = f"{path.name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if any(str(n).split(".")[0] in banned for n in names):
                    problems.append(f"{where} imports {names}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load":
                owner = getattr(node.func.value, "id", "")
                kw = {k.arg: getattr(k.value, "value", None) for k in node.keywords}
                if owner == "torch" and kw.get("weights_only") is not True:
                    problems.append(f"{where} torch.load without weights_only=True")
                if owner in ("np", "numpy") and kw.get("allow_pickle", False) is not False:
                    problems.append(f"{where} np.load with allow_pickle")
    assert problems == []


# --------------------------------------------------------------------------- interrupted training


def train_cmd(clip, out, *extra):
    """GenVanillaNN.py on a tiny clip (36 frames: 17 to train on, batch 4: 4 steps an epoch, 2 epochs): argv."""
    args = [clip, "false", "2", "--epochs", "2", "--batch", "4", "--device", "cpu", *extra, "--out", out]
    return [sys.executable, str(ROOT / "GenVanillaNN.py"), *map(str, args)]


# One thread each: runs side by side do not fight over the cores, and every run sums in the same order.
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def run_training(cmd):
    proc = subprocess.run(cmd, capture_output=True, cwd=ROOT, env=ONE_THREAD, timeout=300)
    return proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")


@pytest.mark.slow
def test_training_killed_mid_way_resumes_where_it_stopped(sample_target, tmp_path):
    """GenVanillaNN.py killed (SIGKILL) after epoch 1's checkpoint, then --resume: the same weights, optimizer,
    schedule, RNG and log as one uninterrupted run. Then NaN in the loss stops it with one line and leaves the
    last good checkpoints as they were. The kill comes at a known point: the test hook pauses the run there."""
    clip = write_video(tmp_path / "tiny_target.mp4", [f for _, f in video.iter_frames(sample_target, 0, 36)])
    cache.VideoSkeleton(clip, verbose=False)
    straight_out, split_out = tmp_path / "straight", tmp_path / "split"
    log = split_out / "train_log.csv"
    marker = tmp_path / "paused"

    with ThreadPoolExecutor(1) as pool:
        straight = pool.submit(run_training, train_cmd(clip, straight_out))
        env = {**ONE_THREAD, "DEEPDANCE_TEST_PAUSE": f"train:epoch-saved:{marker}"}
        proc = subprocess.Popen(train_cmd(clip, split_out), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)  # fmt: skip
        wait_for(lambda: marker.exists() or proc.poll() is not None, 240, "epoch 1 to be saved")
        assert proc.poll() is None, proc.communicate()
        proc.kill()  # paused right after epoch 1's checkpoints and log: a SIGKILL there
        proc.communicate(timeout=60)
        code, _, err = straight.result()
    assert code == 0, err[-2000:]
    killed = torch.load(split_out / "latest.pth", weights_only=True)  # intact, whatever the kill interrupted
    assert killed["epoch"] == 1

    code, out, err = run_training(train_cmd(clip, split_out, "--resume"))
    assert code == 0, err[-2000:]
    assert "from epoch 1" in out
    assert not list(split_out.glob(".tmp-*"))  # what the kill may have left mid-write is gone
    a = torch.load(straight_out / "latest.pth", weights_only=True)
    b = torch.load(split_out / "latest.pth", weights_only=True)
    assert (b["epoch"], b["step"]) == (a["epoch"], a["step"]) == (2, 8)
    for k, v in a["model"].items():
        torch.testing.assert_close(b["model"][k], v, msg=k)
    for s_a, s_b in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True):
        for k in s_a:
            torch.testing.assert_close(s_b[k], s_a[k], msg=k)
    assert b["schedule"]["lr"] == pytest.approx(a["schedule"]["lr"]) and torch.equal(b["rng"], a["rng"])
    epochs = [row.split(",")[0] for row in log.read_text().splitlines()[1:]]
    assert epochs == ["1", "2"]

    # NaN / inf in the loss: a run configured with a learning rate of 1e38 overflows its weights when resumed
    # (--resume continues a run as it was configured). One line, the checkpoints untouched.
    b["config"]["lr"] = 1e38
    torch.save(b, split_out / "latest.pth")
    kept = {p.name: p.read_bytes() for p in split_out.glob("*.pth")}
    cmd = train_cmd(clip, split_out, "--resume")
    cmd[cmd.index("--epochs") + 1] = "3"
    code, _, err = run_training(cmd)
    assert_one_line(code, err, "loss became")
    assert "last good checkpoint kept" in err
    assert {p.name: p.read_bytes() for p in split_out.glob("*.pth")} == kept
