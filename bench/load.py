"""Load bench: N motion transfers at once on a fresh data dir, as N browser sessions (threads of one process, as
Streamlit runs them) or N shell users (processes) would start them; then every file they left is checked.

    python -m bench.load                       # 4 threads, then 4 processes, the default demo (built-in sample)
    python -m bench.load --runs 8 --mode processes

Each run is `DanceDemo.main(["--out", <its own mp4>])` on the defaults: the first use renders the sample clips and
extracts both, so every run races for the same sample, caches and output folder. Reported: runs that succeeded,
runs that failed (with their one line), and any file under the data dir or the outputs that does not decode
(an mp4 that ffmpeg cannot read to its end, an .npy that does not load). The target: 0 failures, 0 bad files.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deepdance.files import ROOT

RUNS = 4  # concurrent transfers per mode
MODES = ("threads", "processes")

# The thread mode's child: N threads of one process call DanceDemo.main at once (DEEPDANCE_DATA set before import).
THREADS_CHILD = """
import json, sys, threading
sys.path.insert(0, sys.argv[1])
import DanceDemo
from deepdance.cli import UserError
out_dir, n = sys.argv[2], int(sys.argv[3])
results = [None] * n
def run(k):
    try:
        DanceDemo.main(["--out", f"{out_dir}/run{k}.mp4"])
        results[k] = "ok"
    except UserError as e:
        results[k] = f"error: {e}"
    except BaseException as e:
        results[k] = f"{type(e).__name__}: {e}"
threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(results))
"""


def bad_files(*folders):
    """Files that do not read back whole: mp4s ffmpeg cannot decode to their end, .npy that do not load."""
    import imageio_ffmpeg
    import numpy as np

    bad = []
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.suffix == ".mp4":
                try:
                    n, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
                    if n == 0:
                        bad.append(f"{path} (0 frames)")
                except Exception as e:  # the point is to report it
                    bad.append(f"{path} ({str(e).splitlines()[0][:60]})")
            elif path.suffix == ".npy":
                try:
                    np.load(path, mmap_mode="r", allow_pickle=False)
                except Exception as e:
                    bad.append(f"{path} ({type(e).__name__})")
    return bad


def run_mode(mode, runs):
    """One round on a fresh data dir -> (results per run, seconds, bad files, leftover temporaries)."""
    data, outs = Path(tempfile.mkdtemp(prefix="deepdance-load-")), Path(tempfile.mkdtemp(prefix="deepdance-out-"))
    env = {**os.environ, "DEEPDANCE_DATA": str(data), "OMP_NUM_THREADS": "1"}
    t = time.perf_counter()
    if mode == "threads":
        r = subprocess.run([sys.executable, "-c", THREADS_CHILD, str(ROOT), str(outs), str(runs)], env=env,
                           capture_output=True, text=True)  # fmt: skip
        try:
            results = json.loads(r.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            results = [f"the process failed (rc {r.returncode}): {r.stderr.strip().splitlines()[-1:]}"] * runs
    else:
        procs = [subprocess.Popen([sys.executable, str(ROOT / "DanceDemo.py"), "--out", str(outs / f"run{k}.mp4")],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for k in range(runs)]  # fmt: skip
        results = []
        for p in procs:
            _, err = p.communicate()
            lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith(("error", "Traceback"))]
            results.append("ok" if p.returncode == 0 else (lines[-1] if lines else f"rc {p.returncode}"))
    seconds = time.perf_counter() - t
    leftovers = [str(p) for p in [*data.rglob(".tmp-*"), *data.rglob(".old-*"), *outs.rglob(".tmp-*")]]
    return results, seconds, bad_files(data, outs), leftovers


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=RUNS, help=f"concurrent transfers (default {RUNS})")
    p.add_argument("--mode", choices=(*MODES, "both"), default="both", help="threads, processes or both (default)")
    a = p.parse_args(argv)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; each run: python DanceDemo.py --out ...")
    print("\n| mode | runs | succeeded | failed | files that do not decode | temporaries left | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    failures = []
    for mode in MODES if a.mode == "both" else (a.mode,):
        results, seconds, bad, leftovers = run_mode(mode, a.runs)
        ok = sum(r == "ok" for r in results)
        print(f"| {mode} | {a.runs} | {ok} | {a.runs - ok} | {len(bad)} | {len(leftovers)} | {seconds:.1f} |")
        failures += [f"{mode}: {r}" for r in results if r != "ok"] + [f"{mode}: bad file {b}" for b in bad]
        failures += [f"{mode}: left {f}" for f in leftovers]
    for line in failures:
        print(f"  {line}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
