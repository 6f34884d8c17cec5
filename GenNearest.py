"""gen_type 1, the nearest-neighbour baseline: show the target frame whose skeleton is closest to the query.

    python GenNearest.py                                   # the built-in sample target
    python GenNearest.py ../shared/data/taichi1.mp4 --preview out/nearest.png

Plain mode answers every query on its own (a KD-tree over the target's 26-vectors) and so flickers
between look-alike frames from different moments. Coherent mode treats a batch as one clip and picks,
among the K nearest frames of each step, the path that balances pose distance against jumps in the
target's time (Viterbi). The CLI measures both on the target's own selection block.

Frames are returned at the generator's `size` straight from the cache (stored at 256 px): at the stored size
they are the stored frames themselves (DanceDemo asks for its panel's size, so nothing is upscaled), at any
other size resized from them. Only the frames a batch shows are read, from the file (FrameStore).
"""

import argparse

from deepdance.cache import VideoSkeleton, add_framing_arg
from deepdance.cli import UserError, run_cli
from deepdance.files import output_path
from deepdance.gentypes import SIZE
from deepdance.nearest import FEATURE_CHOICES, FEATURES, JUMP_WEIGHT, K, self_retrieval, write_preview
from deepdance.video import check_video_path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", nargs="?", default=None, help="target video (default: the built-in sample target)")
    add_framing_arg(p, "the target's square")
    p.add_argument("--size", type=int, default=SIZE, choices=(64, 128, 256), help=f"frame side (default {SIZE})")
    p.add_argument(
        "--features", default=FEATURES, choices=FEATURE_CHOICES, help=f"what is matched (default {FEATURES})"
    )
    p.add_argument("--k", type=int, default=K, help=f"coherent mode: candidates per step (default {K})")
    p.add_argument("--jump_weight", type=float, default=JUMP_WEIGHT, help=f"coherent mode (default {JUMP_WEIGHT})")
    p.add_argument("--preview", default=None, help="also write a PNG: query skeletons, frames found, true frames")
    a = p.parse_args(argv)
    if a.k < 1:
        raise UserError(f"--k must be >= 1, got {a.k}")
    if a.jump_weight < 0:
        raise UserError(f"--jump_weight must be >= 0, got {a.jump_weight}")
    video = check_video_path(a.video) if a.video else None
    preview = a.preview and output_path(a.preview, option="--preview", suffixes=(".png",), inputs=(video,))
    vs = VideoSkeleton(video, framing=a.framing)
    gen, query, truth, res = self_retrieval(vs, a.size, a.k, a.jump_weight, a.features)
    print(f"{gen}: selection block of {len(query)} frames matched against the {len(gen.positions)} training frames")
    for mode, r in res.items():
        print(
            f"  {mode:8s} pose error {100 * r['pose_error']:5.2f}% of body height | image L1 {r['image_l1']:5.1f}/255"
            f" | mean jump {r['jump_frames']:6.2f} target frames | frame-to-frame diff {r['frame_diff']:.4f}"
        )
    if preview:
        write_preview(preview, gen, query, truth, res["plain"]["rows"])
        print(f"preview -> {preview} (rows: query skeleton, nearest frame with the query drawn on, true frame)")


if __name__ == "__main__":
    run_cli(main)
