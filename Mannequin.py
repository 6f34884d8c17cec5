"""DeepDance's built-in sample footage: a shaded, clothed mannequin rendered from a 13-joint skeleton.

Two deterministic clips: "target" (mannequin A running through a varied routine the models train on) and
"source" (mannequin B: other proportions, clothes and placement, dancing moves within the target's range).
The ground-truth joints follow MediaPipe Pose's semantics, in pixels of the 320x256 frame.
"""

import argparse
import time
from dataclasses import replace
from pathlib import Path

from deepdance.cli import run_cli
from deepdance.files import atomic_path, write_png
from deepdance.mannequin import (
    CLIPS,
    N_FRAMES,
    SHOTS,
    clip_path,
    contact_sheet,
    ensure_sample,
    joints_path,
    render_shot,
    write_clip,
)

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Render DeepDance's sample clips (mp4 + ground-truth joints), or --shot: footage framed as users "
        "film it (python Mannequin.py --shot portrait --rotate 90 --out out/portrait.mp4)."
    )
    ap.add_argument("--which", choices=(*CLIPS, "both"), default="both", help="clip(s) to render (default: both)")
    ap.add_argument("--force", action="store_true", help="re-render even if the files exist (default: off)")
    ap.add_argument("--preview", default=None, help="also write a contact sheet PNG here (default: none)")
    ap.add_argument("--shot", choices=tuple(SHOTS), default=None, help="render this shot to --out (default: none)")
    ap.add_argument("--out", default="out/shot.mp4", help="the shot's mp4, joints next to it (default: %(default)s)")
    ap.add_argument("--frames", type=int, default=None, help="the shot's length (default: the shot's own, 100)")
    ap.add_argument(
        "--rotate", type=int, default=0, choices=(0, 90, 180, 270), help="store it turned, as a phone does (default 0)"
    )
    args = ap.parse_args(argv)
    if args.shot:
        shot = SHOTS[args.shot] if args.frames is None else replace(SHOTS[args.shot], frames=max(1, args.frames))
        frames, joints = render_shot(shot)
        out = write_clip(args.out, frames, rotation=args.rotate)
        npy = out.with_name(f"{out.stem}_joints.npy")
        with atomic_path(npy) as tmp, open(tmp, "wb") as f:
            np.save(f, joints, allow_pickle=False)  # (P, N, 13, 2) px of the upright frame
        print(f"{args.shot}: wrote {out} ({shot.frames} frames, {shot.width}x{shot.height}) + {npy.name}")
        return
    for which in CLIPS if args.which == "both" else (args.which,):
        t0 = time.perf_counter()
        if args.preview:
            out = Path(args.preview)
            out = out.with_name(f"{out.stem}_{which}{out.suffix or '.png'}") if args.which == "both" else out
            write_png(out, contact_sheet(which))
            print(f"{which}: preview written to {out}")
        existed = clip_path(which).exists() and joints_path(which).exists()
        video = ensure_sample(which, force=args.force)
        verb = "kept existing" if existed and not args.force else "wrote"
        print(f"{which}: {verb} {video} + {joints_path(which).name} ({N_FRAMES[which]} frames) "
              f"in {time.perf_counter() - t0:.1f}s")  # fmt: skip


if __name__ == "__main__":
    run_cli(main)
