"""Video -> square frames + 13-joint skeletons, extracted once with MediaPipe and cached as .npy.

    python VideoSkeleton.py <video> <force_recompute> <frame_skip>     # reference CLI
    python VideoSkeleton.py data/taichi1.mp4 True 5
    python VideoSkeleton.py                                            # the built-in sample

Image space: MediaPipe looks at each whole (upright) frame; then ONE square per clip is chosen that holds the
person's whole body in every frame (framing "person", the default; "center" is the course's centre crop of the
shorter side), padded with black where it leaves the picture, and stored once at 256 px, so 64/128/256 px models
all train from one cache. Skeleton coordinates are in [0, 1] of that square; meta.json's "crop" = (x0, y0, side)
says where it lies in the video's (upright) pixels: x_video = x0 + x * side.
"""

import argparse

from deepdance.cache import FRAME_SIZE, FRAME_SKIP, WORKERS, VideoSkeleton, add_framing_arg, write_preview
from deepdance.cli import parse_bool, run_cli
from deepdance.files import output_path
from deepdance.pose import (
    MODEL_COMPLEXITY,
    POSE_MODE,
)
from deepdance.video import check_video_path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", nargs="?", default=None, help="video file (default: the built-in sample target)")
    p.add_argument("force_recompute", nargs="?", default="false", help="true/false: ignore the cache (default false)")
    p.add_argument("frame_skip_pos", nargs="?", type=int, default=None, metavar="frame_skip", help="keep 1 frame in k")
    p.add_argument("--force", action="store_true", help="same as force_recompute=true")
    p.add_argument("--frame_skip", type=int, default=FRAME_SKIP, help=f"keep 1 frame in k (default {FRAME_SKIP})")
    p.add_argument("--size", type=int, default=FRAME_SIZE, help=f"stored frame side in px (default {FRAME_SIZE})")
    p.add_argument("--model_complexity", type=int, default=MODEL_COMPLEXITY, choices=(0, 1, 2))
    p.add_argument(
        "--mode", default=POSE_MODE, choices=("tracking", "static"), help=f"MediaPipe mode (default {POSE_MODE})"
    )
    p.add_argument("--workers", type=int, default=WORKERS, help=f"extraction processes (default {WORKERS})")
    add_framing_arg(p)
    p.add_argument(
        "--preview", default=None, help="also write the target report's contact sheet (PNG) here (default: none)"
    )
    a = p.parse_args(argv)
    force = a.force or parse_bool(a.force_recompute)
    video = check_video_path(a.video) if a.video else None
    # Refused before the extraction: never the video itself, the sample or a cache, and a PNG by its name.
    preview = a.preview and output_path(a.preview, option="--preview", suffixes=(".png",), inputs=(video,))
    skip = a.frame_skip_pos if a.frame_skip_pos is not None else a.frame_skip
    vs = VideoSkeleton(video, force, skip, a.size, a.model_complexity, a.mode, max(1, a.workers), framing=a.framing)
    print(vs)
    if not vs.extracted:  # a fresh extraction printed it already
        from deepdance import report

        if vs.report_note:
            print(f"note: {vs.report_note}")
        if vs.report is not None:
            print(report.describe_report(vs.report, vs.cache_dir))
    if preview:
        write_preview(vs, preview)
        print(f"preview -> {preview}")


if __name__ == "__main__":
    run_cli(main)
