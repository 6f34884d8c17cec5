"""Fault bench: the faults users hit, run as a user would: bad inputs, full and read-only disks (small tmpfs mounts),
signals at known points, live streams that stop half-way, damaged checkpoints and reports, outputs aimed at inputs.

    sudo python -m bench.faults          # root: mounts tmpfs under a temp folder; skipped (exit 0) otherwise

Each probe runs a script and checks what a user needs. A failing command: a non-zero exit, exactly one `error:`
(or, for a signal, `interrupted:`) line that says what happened in plain words and names the user's file, no
traceback, no temporary left behind, and any previous result or input intact. Signals reach the process at a known
point through the test hook (DEEPDANCE_TEST_PAUSE), never by racing it. Prints one row per probe, then
`faults: P probes, C clean, D defects`.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deepdance.files import ROOT

from bench import streams


def mount(path, size, readonly=False):
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if readonly else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], check=True)
    return path


def fill(path, leave):
    """Fill a mounted file system until `leave` bytes are free."""
    free = shutil.disk_usage(path).free
    if free > leave:
        with open(path / "filler", "wb") as f:
            f.truncate(0)
            f.write(b"\0" * (free - leave))


def run(args, env, cwd=ROOT):
    r = subprocess.run([sys.executable, *map(str, args)], env=env, cwd=cwd, capture_output=True, timeout=900)
    return r.returncode, r.stderr.decode(errors="replace")


def run_signalled(args, env, point, sig, base):
    """Run a script held by the test hook at `point`, send `sig` to it alone there, let it go -> (code, stderr)."""
    marker = base / f"paused-{point.replace(':', '-')}"
    env = {**env, "DEEPDANCE_TEST_PAUSE": f"{point}:{marker}"}
    proc = subprocess.Popen([sys.executable, *map(str, args)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    while not marker.exists() and proc.poll() is None:
        time.sleep(0.02)  # the hook's marker: a state, not a time
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        marker.unlink(missing_ok=True)
    _, err = proc.communicate(timeout=900)
    return proc.returncode, err.decode(errors="replace")


def verdict(code, err, words, folder=None, prefix="error:", kept=None):
    """'ok' or what is wrong with a run that should have failed with one plain line. kept: {path: bytes} that must
    be unchanged (a previous result, an input)."""
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith(prefix)]
    problems = []
    if code in (0, None):
        problems.append("exit 0")
    if "Traceback" in err or "Exception ignored" in err or "WARN" in err:
        problems.append("traceback or native line")
    if len(lines) != 1:
        problems.append(f"{len(lines)} {prefix} lines")
    elif not any(w in lines[0] for w in words):
        problems.append(f"says {lines[0][:100]!r}")
    elif ".tmp-" in lines[0] or ".lock-" in lines[0]:
        problems.append("names a temporary")
    if folder is not None:
        left = [p.name for p in Path(folder).rglob(".tmp-*")]
        if left:
            problems.append(f"left {left[:2]}")
    for path, data in (kept or {}).items():
        if not Path(path).is_file() or Path(path).read_bytes() != data:
            problems.append(f"{Path(path).name} LOST")
    return ("ok", lines[0] if lines else "") if not problems else ("FAIL: " + "; ".join(problems), err[-300:])


def clean_run(code, err):
    """A command that should succeed quietly (a damaged report is noted, not fatal)."""
    if code != 0 or "Traceback" in err:
        return f"FAIL: exit {code}" + ("; traceback" if "Traceback" in err else ""), err[-300:]
    return "ok", (err.strip().splitlines() or [""])[-1]


def storage_probes(base, env, *, target, source):
    """Full, tiny and read-only file systems under extraction, training, the demo and Evaluate."""
    full, tiny, ro = mount(base / "full", "6m"), mount(base / "tiny", "64k"), mount(base / "ro", "1m", True)
    mounts = [full, tiny, ro]
    env_full = {**env, "DEEPDANCE_DATA": str(full)}  # the merge needs ~1.5x the cache
    yield "extraction, disk full", verdict(*run(["VideoSkeleton.py", source], env_full), ("disk full",), full)
    args = ["GenVanillaNN.py", target, "true", "2", "--epochs", "1", "--out"]
    yield "training, disk full", verdict(*run([*args, tiny / "model"], env), ("disk full",), tiny)
    yield "training, read-only --out", verdict(*run([*args, ro / "model"], env), ("read-only",))
    good = (base / "good.mp4").read_bytes()  # a previous result, on a disk that then fills up
    demo = mount(base / "demo", f"{len(good) // 1024 + 256}k")
    mounts.append(demo)
    (demo / "demo.mp4").write_bytes(good)
    fill(demo, 16 << 10)
    code, err = run(["DanceDemo.py", "--out", demo / "demo.mp4"], env)
    yield "demo --out, disk full", verdict(code, err, ("disk full",), demo, kept={demo / "demo.mp4": good})
    yield "demo --out, read-only", verdict(*run(["DanceDemo.py", "--out", ro / "x.mp4"], env), ("read-only",))
    code, err = run(["Evaluate.py", "--gen_type", "1", "--out", ro / "e"], env)
    yield "Evaluate --out, read-only", verdict(code, err, ("read-only",))
    code, err = run(["Evaluate.py", "--gen_type", "1", "--dump", demo / "d.npz"], env)
    yield "Evaluate --dump, disk full", verdict(code, err, ("disk full",), demo)
    code, err = run(["VideoSkeleton.py", target, "--preview", ro / "p.png"], env)
    yield "--preview, read-only", verdict(code, err, ("read-only",))
    for m in reversed(mounts):
        subprocess.run(["umount", "-l", str(m)], check=False)


def input_probes(base, env, *, target, source):
    """Bad inputs, outputs aimed at inputs, the sample or a cache, symbolic link loops."""
    clip = base / "clip.mp4"
    shutil.copyfile(target, clip)
    inputs = {clip: clip.read_bytes(), target: target.read_bytes(), source: source.read_bytes()}
    (base / "notes.mp4").write_text("not a video")
    yield "input: text named .mp4", verdict(*run(["VideoSkeleton.py", base / "notes.mp4"], env), ("cannot read",))
    (base / "empty.mp4").write_bytes(b"")
    yield "input: empty file", verdict(*run(["VideoSkeleton.py", base / "empty.mp4"], env), ("empty",))
    aimed = {
        "VideoSkeleton --preview = its video": ["VideoSkeleton.py", clip, "--preview", clip],
        "VideoSkeleton --preview x.txt": ["VideoSkeleton.py", clip, "--preview", base / "x.txt"],
        "GenNearest --preview = its video": ["GenNearest.py", clip, "--preview", clip],
        "demo --out = the sample source": ["DanceDemo.py", "--out", source],
        "demo --out = the sample target": ["DanceDemo.py", "--out", target],
        "demo --out = --source": ["DanceDemo.py", "--source", clip, "--out", clip],
        "Evaluate --dump = its video": ["Evaluate.py", "--gen_type", "1", "--video_path", clip, "--dump", clip],
        "training --out = the caches": ["GenVanillaNN.py", clip, "false", "2", "--out", Path(env["DEEPDANCE_DATA"])
                                        / "cache"],
    }  # fmt: skip
    words = ("would overwrite", "is among", "must name")
    for name, args in aimed.items():
        yield f"output aimed at an input: {name}", verdict(*run(args, env), words, kept=inputs)
    loop = base / "loop"
    loop.symlink_to(loop)
    yield "symlink loop in --out", verdict(*run(["DanceDemo.py", "--out", loop / "x.mp4"], env), ("link loop",))
    code, err = run(["VideoSkeleton.py", clip], {**env, "DEEPDANCE_DATA": str(loop)})
    yield "symlink loop in DEEPDANCE_DATA", verdict(code, err, ("link loop",))
    (base / "a-file").write_text("x")
    code, err = run(["DanceDemo.py", "--out", base / "y.mp4"], {**env, "DEEPDANCE_DATA": str(base / "a-file")})
    yield "DEEPDANCE_DATA is a file", verdict(code, err, ("not a folder", "a file stands"))


def signal_probes(base, env, *, target, source):
    """Ctrl-C and `kill` at known points: the writer's finish, the pool's start-up, the work done."""
    good = (base / "good.mp4").read_bytes()
    keep = base / "keep.mp4"
    for sig, how in ((signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "kill")):
        keep.write_bytes(good)
        code, err = run_signalled(["DanceDemo.py", "--out", keep], env, "video:finish", sig, base)
        yield f"{how} at the writer's finish", verdict(code, err, ("nothing half-written",), base,
                                                        prefix="interrupted:", kept={keep: good})  # fmt: skip
        args = ["VideoSkeleton.py", source, "true", "1", "--workers", "2"]
        code, err = run_signalled(args, env, "extract:starting", sig, base)
        yield f"{how} as the pool starts", verdict(code, err, ("nothing half-written",), prefix="interrupted:")
    code, err = run_signalled(["VideoSkeleton.py", source], env, "cli:done", signal.SIGINT, base)
    yield "Ctrl-C once the work is done", clean_run(code, err)


def stream_probes(base, env, *, target, source):
    """`--live` from a network stream that closes or stalls half-way (bench/streams.py), in both formats cameras
    send: a stop said in one line, as for a camera, the recording so far kept."""
    frames = streams.moving_frames(100)
    for fmt, what in (("fmp4", "fragmented MP4"), ("mjpeg", "MJPEG")):
        for end in ("close", "stall"):
            out = base / f"live-{fmt}-{end}.mp4"
            with streams.stream(fmt, frames, cut=0.5, end=end) as url:
                code, err = run(["DanceDemo.py", "--live", "--source", url, "--out", out, "--window", "off"], env)
            result = verdict(code, err, ("stopped sending frames",), base)
            if result[0] == "ok" and not out.is_file():
                result = ("FAIL: the recording so far was not kept", result[1])
            yield f"stream: {what} {end}s half-way", result


def damage_probes(base, env, *, target, source):
    """Damaged checkpoints and target reports."""
    model = base / "model"
    for name, damage in (("empty best.pth", b""), ("truncated best.pth", (model / "best.pth").read_bytes()[:999])):
        broken = base / f"broken-{len(damage)}"
        shutil.copytree(model, broken)
        (broken / "best.pth").write_bytes(damage)
        code, err = run(["GenVanillaNN.py", target, "false", "2", "--out", broken], env)
        yield f"checkpoint: {name}", verdict(code, err, ("best.pth",))
    caches = sorted(Path(env["DEEPDANCE_DATA"], "cache").glob("*/report.json"))
    if caches:
        report = caches[0]
        saved = report.read_bytes()
        report.write_text("[]")
        yield "target report: a JSON list", clean_run(*run(["VideoSkeleton.py", target], env))
        report.write_bytes(saved)


def main():
    if os.geteuid() != 0:
        print("bench/faults.py mounts small tmpfs file systems: run it as root (skipped)")
        return 0
    base = Path(tempfile.mkdtemp(prefix="deepdance-faults-"))
    data = base / "data"
    env = {**os.environ, "DEEPDANCE_DATA": str(data), "OMP_NUM_THREADS": "1"}
    env.pop("DEEPDANCE_TEST_PAUSE", None)
    rows = []
    try:
        # A healthy data dir first: the sample, its caches and a 1-epoch model, for the probes that need them.
        target, source = data / "sample" / "target.mp4", data / "sample" / "source.mp4"
        for args in (["DanceDemo.py", "--out", base / "good.mp4"],
                     ["GenVanillaNN.py", target, "false", "2", "--epochs", "1", "--out", base / "model"]):  # fmt: skip
            code, err = run(args, env)
            if code:
                raise SystemExit(f"setting up failed: python {' '.join(map(str, args))}: {err[-500:]}")
        for probes in (input_probes, storage_probes, signal_probes, stream_probes, damage_probes):
            for name, (verdict_, line) in probes(base, env, target=target, source=source):
                rows.append((name, verdict_, line))
    finally:
        for m in sorted(base.glob("*"), reverse=True):
            if os.path.ismount(m):
                subprocess.run(["umount", "-l", str(m)], check=False)
        shutil.rmtree(base, ignore_errors=True)
    print("| probe | verdict | what the user is told |")
    print("|---|---|---|")
    for name, verdict_, line in rows:
        print(f"| {name} | {verdict_} | {line.replace('|', '/').replace(chr(10), ' ')[:140]} |")
    defects = sum(v != "ok" for _, v, _ in rows)
    print(f"faults: {len(rows)} probes, {len(rows) - defects} clean, {defects} defects")
    return 1 if defects else 0


if __name__ == "__main__":
    sys.exit(main())
