"""Benchmark multi-process training (torchrun, DistributedDataParallel): images/s for 1 and 2 processes.

    python -m bench.ddp                        # GenVanillaNN variant 2 (gen_type 3) on the built-in sample, CPU
    python -m bench.ddp --gan                  # GenGAN bce / image (gen_type 4), netG from scratch
    python -m bench.ddp --device cuda --procs 1 2 4    # on a machine with 4 GPUs (one per process)

Each configuration trains the same global batch for --epochs epochs through the real command line (plain `python`
for 1 process, `torchrun --standalone` for more) into its own folder under out/bench-ddp, and the throughput is
the median of the train_log.csv's images/s (rank 0's clock over the optimisation steps, all processes' images)
over the epochs after the first (allocation, warm-up). On CPU every process gets one thread (torchrun's default),
so the scaling efficiency images/s(N) / (N x images/s(1 process, 1 thread)) says what N cores in N processes
give over one; 1 process with as many threads as the largest run (what a plain run uses) is shown alongside.
Timings depend on what else runs on the machine: the load average is printed with them.
"""

import argparse
import csv
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from deepdance.cli import UserError, run_cli
from deepdance.files import ROOT

OUT = ROOT / "out" / "bench-ddp"  # the runs' checkpoints and logs (never the user's models)


def train(script_args, *, procs, threads, out, device):
    """One training run through the CLI -> (images/s: the median over epochs 2.., wall seconds, rows of its log)."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"]
    cmd = [*(torchrun if procs > 1 else [sys.executable]), *script_args, "--out", str(out), "--device", device]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        said = [line for line in proc.stderr.splitlines() if line.startswith("error:")] or proc.stderr.splitlines()[-3:]
        raise UserError(f"{' '.join(cmd)} failed: {' / '.join(said)}")
    with open(out / "train_log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    rates = [float(r["img_per_s"]) for r in rows[1:]] or [float(rows[0]["img_per_s"])]
    return statistics.median(rates), wall, rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", default=None, help="target video (default: the built-in sample)")
    p.add_argument("--gan", action="store_true", help="GenGAN bce / image instead of GenVanillaNN variant 2")
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2], help="process counts to run (default 1 2)")
    p.add_argument("--epochs", type=int, default=4, help="epochs per run (default 4; epoch 1 is not timed)")
    p.add_argument("--repeat", type=int, default=1, help="rounds of all the runs, interleaved; the median is shown")
    p.add_argument("--batch", type=int, default=32, help="global batch, the same for every run (default 32)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="default cpu")
    p.add_argument("--out", default=str(OUT), help=f"where runs are written (default {OUT.relative_to(ROOT)})")
    a = p.parse_args(argv)
    if a.epochs < 2 or a.repeat < 1 or min(a.procs) < 1 or 1 not in a.procs:
        raise UserError("need --epochs >= 2, --repeat >= 1 and --procs including 1 (the baseline), all >= 1")
    from deepdance import mannequin

    video = str(a.video or mannequin.ensure_sample("target"))
    if a.gan:
        script = ["GenGAN.py", video, "--force", "--mode", "bce", "--input", "image", "--no-init_from_vanilla"]
    else:
        script = ["GenVanillaNN.py", video, "true", "2"]
    script += ["--epochs", str(a.epochs), "--batch", str(a.batch)]
    runs = [(n, 1) for n in sorted(set(a.procs))]
    if a.device == "cpu" and max(a.procs) > 1:
        runs.append((1, max(a.procs)))  # a plain run with the threads the largest multi-process run uses in all
    print(f"{' '.join(script[:1] + script[2:])}: global batch {a.batch}, {a.epochs} epochs per run, {a.device}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    results, loads = {run: [] for run in runs}, [os.getloadavg()[0]]
    for _ in range(a.repeat):  # interleaved: a load that changes over time weighs on every configuration alike
        for procs, threads in runs:
            out = Path(a.out) / f"{'gan' if a.gan else 'vanilla'}-{procs}p{threads}t"
            ips, wall, rows = train(script, procs=procs, threads=threads, out=out, device=a.device)
            results[procs, threads].append(ips)
            loads.append(os.getloadavg()[0])
            box = float(rows[-1]["val_box_ssim"])
            print(f"{procs} process(es) x {threads} thread(s): {ips:.1f} images/s, {wall:.0f} s for the run, last "
                  f"val body-box SSIM {box:.3f}; load average now {loads[-1]:.2f}")  # fmt: skip
    base = statistics.median(results[1, 1])
    print(f"\nmedian of {a.repeat} round(s); load average {min(loads):.2f}-{max(loads):.2f} on {os.cpu_count()} cores")
    print("\n| processes | threads each | images/s | speed-up | scaling efficiency |")
    print("|---:|---:|---:|---:|---:|")
    for (procs, threads), rates in results.items():
        ips = statistics.median(rates)
        print(f"| {procs} | {threads} | {ips:.1f} | {ips / base:.2f}x | {100 * ips / (procs * threads * base):.0f}% |")
    return 0


if __name__ == "__main__":
    run_cli(main)
