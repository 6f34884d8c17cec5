"""Runs of the same generator side by side: one table and one picture strip from several Evaluate dumps.

    python Evaluate.py --video_path ../shared/data/taichi1.mp4 --gen_type 9 --dump before.npz
    (train again with other options into another DEEPDANCE_DATA, then Evaluate --dump after.npz)
    python -m bench.compare "default=before.npz:9" "--lambda_feat 0.2=after.npz:9" --strip docs/compare.png

Each argument is LABEL=DUMP:GEN_TYPE. Every dump must hold the same real frames (the same block at the same size):
the runs were scored on the same poses, so their rows compare. The table prints each run's figures as Evaluate
measured them (body SSIM, body L1, sharpness, fine detail and, at 128 px and up, pose found / found near); the strip
is skeleton | each run | real, for evenly spaced frames of the block.
"""

import argparse
from pathlib import Path

from deepdance.cli import UserError, run_cli
from deepdance.evaluation import COLUMNS, labelled_columns
from deepdance.files import output_path, write_png
from deepdance.skeleton import render_maps

import numpy as np

from bench.verify_dump import load_dump

ROWS = 6  # frames in the strip
SHOWN = ("box_ssim", "box_l1", "sharpness", "detail", "pose_found", "pose_near")  # Evaluate's columns, its formats


def parse_run(text):
    """'LABEL=DUMP:GEN_TYPE' -> (label, Path, gen_type str)."""
    label, sep, rest = text.partition("=")
    path, sep2, g = rest.rpartition(":")
    if not (sep and sep2 and label and path and g.isdigit()):
        raise UserError(f"{text!r}: give each run as LABEL=DUMP:GEN_TYPE, e.g. default=out/eval/a.npz:9")
    return label, Path(path), g


def load_runs(specs):
    """[(label, frames (N, S, S, 3) uint8, {metric: value})] and the first dump (its real frames and joints)."""
    runs, first = [], None
    for label, path, g in map(parse_run, specs):
        data = load_dump(path, required=("real", "xy", "metric_names"))
        if f"fake_{g}" not in data:
            raise UserError(f"{path} holds no gen_type {g} (it has {', '.join(map(str, data['gen_types'].tolist()))})")
        if first is None:
            first = data
        elif data["real"].shape != first["real"].shape or not np.array_equal(data["real"], first["real"]):
            raise UserError(f"{path} was scored on other frames than {specs[0]}: compare runs of the same block")
        names = [str(n) for n in data["metric_names"]]
        runs.append((label, data[f"fake_{g}"], dict(zip(names, data[f"metrics_{g}"].tolist(), strict=True))))
    return runs, first


def table(runs):
    """The runs' figures as a Markdown table (columns none of them has are left out)."""
    shown = [c for c in COLUMNS if c[0] in SHOWN]
    cols = [c for c in shown if any(np.isfinite(m.get(c[0], np.nan)) for _, _, m in runs)]
    lines = ["| run | " + " | ".join(h for _, h, _ in cols) + " |", "|---|" + "---:|" * len(cols)]
    for label, _, m in runs:
        cells = [f.format(m[k]) if np.isfinite(m.get(k, np.nan)) else "n/a" for k, _, f in cols]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def strip(runs, first, rows=ROWS):
    """(H, W, 3) uint8: one row per picked frame, columns skeleton | each run | real, each under its label."""
    real, xy = first["real"], first["xy"]
    size = real.shape[1]
    picks = np.unique(np.linspace(0, len(real) - 1, min(rows, len(real))).round().astype(int))
    columns = [("skeleton", render_maps(xy[picks], size))] + [(lb, f[picks]) for lb, f, _ in runs]
    columns.append(("real", real[picks]))
    return labelled_columns([(label[:24], frames) for label, frames in columns], size)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="LABEL=DUMP:GEN_TYPE, one per run")
    p.add_argument("--strip", help="also write the picture strip to this .png (default: none)")
    p.add_argument("--rows", type=int, default=ROWS, help=f"frames in the strip (default {ROWS})")
    a = p.parse_args(argv)
    if a.rows < 1:
        raise UserError(f"need --rows >= 1, got {a.rows}")
    out = a.strip and output_path(a.strip, option="--strip", suffixes=(".png",), inputs=())
    runs, first = load_runs(a.runs)
    print(f"{len(first['real'])} frames, {first['real'].shape[1]} px")
    print(table(runs))
    if out:
        write_png(out, strip(runs, first, a.rows))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
