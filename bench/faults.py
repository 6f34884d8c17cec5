"""Fault bench: the storage faults users hit, on real small file systems (tmpfs mounts), run as a user would.

    sudo python -m bench.faults          # root: mounts tmpfs under a temp folder; skipped (exit 0) otherwise

Each case runs a script on a place that is full, read-only or not a folder, and checks what a user needs: a
non-zero exit, exactly one `error:` line that says what happened in plain words ("disk full", "read-only"),
no traceback, no temporary left behind, and any previous result intact. Prints one table row per case.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from deepdance.files import ROOT


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


def verdict(code, err, words, folder=None):
    """'ok' or what is wrong with a run that should have failed with one plain line."""
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("error:")]
    problems = []
    if code in (0, None):
        problems.append("exit 0")
    if "Traceback" in err:
        problems.append("traceback")
    if len(lines) != 1:
        problems.append(f"{len(lines)} error lines")
    elif not any(w in lines[0] for w in words):
        problems.append(f"says {lines[0][:100]!r}")
    if folder is not None:
        left = [p.name for p in Path(folder).rglob(".tmp-*")]
        if left:
            problems.append(f"left {left[:2]}")
    return ("ok", lines[0] if lines else "") if not problems else ("FAIL: " + "; ".join(problems), err[-300:])


def main():
    if os.geteuid() != 0:
        print("bench/faults.py mounts small tmpfs file systems: run it as root (skipped)")
        return 0
    base = Path(tempfile.mkdtemp(prefix="deepdance-faults-"))
    data = base / "data"
    env = {**os.environ, "DEEPDANCE_DATA": str(data), "OMP_NUM_THREADS": "1"}
    rows, mounts = [], []
    try:
        # A healthy data dir first: the sample, its caches and a 1-epoch model, for the cases that need them.
        target, source = data / "sample" / "target.mp4", data / "sample" / "source.mp4"
        for args in (["DanceDemo.py", "--out", base / "good.mp4"],
                     ["GenVanillaNN.py", target, "false", "2", "--epochs", "1", "--out", base / "model"]):  # fmt: skip
            code, err = run(args, env)
            if code:
                raise SystemExit(f"setting up failed: python {' '.join(map(str, args))}: {err[-500:]}")

        full, tiny, ro = mount(base / "full", "6m"), mount(base / "tiny", "64k"), mount(base / "ro", "1m", True)
        mounts += [full, tiny, ro]
        cases = []
        # Extraction into a data dir with too little room (its merge needs ~1.5x the cache).
        env_full = {**env, "DEEPDANCE_DATA": str(full)}
        cases.append(("extraction, disk full", run(["VideoSkeleton.py", source], env_full), ("disk full",), full))
        # Checkpoints on a disk that fills up, and into a read-only folder, and onto a file.
        args = ["GenVanillaNN.py", target, "true", "2", "--epochs", "1", "--out"]
        cases.append(("training, disk full", run([*args, tiny / "model"], env), ("disk full",), tiny))
        cases.append(("training, read-only --out", run([*args, ro / "model"], env), ("read-only",), None))
        # The demo's video: a full disk after a good file was there, and a read-only place.
        good = (base / "good.mp4").read_bytes()  # a previous result, on a disk that then fills up
        demo = mount(base / "demo", f"{len(good) // 1024 + 256}k")
        mounts.append(demo)
        (demo / "demo.mp4").write_bytes(good)
        fill(demo, 16 << 10)
        code, err = run(["DanceDemo.py", "--out", demo / "demo.mp4"], env)
        intact = (demo / "demo.mp4").read_bytes() == good
        cases.append(("demo --out, disk full" + ("" if intact else " (OLD FILE LOST)"), (code if intact else 0, err),
                      ("disk full",), demo))  # fmt: skip
        cases.append(("demo --out, read-only", run(["DanceDemo.py", "--out", ro / "x.mp4"], env), ("read-only",), None))
        # Evaluate's outputs and dump.
        cases.append(("Evaluate --out, read-only", run(["Evaluate.py", "--gen_type", "1", "--out", ro / "e"], env),
                      ("read-only",), None))  # fmt: skip
        cases.append(("Evaluate --dump, disk full", run(["Evaluate.py", "--gen_type", "1", "--dump", demo / "d.npz"],
                                                        env), ("disk full",), demo))  # fmt: skip
        # DEEPDANCE_DATA pointing at a file.
        (base / "a-file").write_text("x")
        code, err = run(["DanceDemo.py", "--out", base / "y.mp4"], {**env, "DEEPDANCE_DATA": str(base / "a-file")})
        cases.append(("DEEPDANCE_DATA is a file", (code, err), ("not a folder", "a file stands"), None))
        for name, (code, err), words, folder in cases:
            rows.append((name, *verdict(code, err, words, folder)))
    finally:
        for m in reversed(mounts):
            subprocess.run(["umount", "-l", str(m)], check=False)
        shutil.rmtree(base, ignore_errors=True)
    print("| case | verdict | what the user is told |")
    print("|---|---|---|")
    for name, verdict_, line in rows:
        print(f"| {name} | {verdict_} | {line.replace('|', '/')[:140]} |")
    return 1 if any(v != "ok" for _, v, _ in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
