"""Motion transfer end to end: the target person performs the source video's moves.

    python DanceDemo.py                                   # the built-in sample clips -> out/demo.mp4
    python DanceDemo.py --gen_type 1 --video_path ../shared/data/taichi1.mp4 --source ../shared/data/taichi2.mp4
    python DanceDemo.py --gen_type 3 --video_path data/taichi1.mp4 --out out/taichi.mp4 --show
    python DanceDemo.py --live --source 0                 # live from the first webcam (Live.py)

The output keeps the source's sound (its audio from the first rendered frame on, as long as the video; --no_audio
drops it). A source without sound, the built-in sample and --live give a silent video.

Source poses come from VideoSkeleton (MediaPipe, cached like a target's), then: frames without a person
get a pose (interpolated across short gaps, held across long ones), keypoints are smoothed with a
One-Euro filter, and the global pose normalisation of "Everybody Dance Now" maps the source's body
height and placement onto the target's. The output mp4 shows three panels: source frame with its
skeleton | normalised skeleton | generated target (--view side: the source as filmed | generated target; --view
generated: the generated target alone).

gen_type (shared by every script and the README):
  1 nearest neighbour          2 VanillaNN, 26-vector     3 VanillaNN, skeleton image   4 GAN (BCE), skeleton image
  5 GAN (BCE), 26-vector       6 WGAN-GP, 26-vector       7 WGAN-GP, skeleton image     8 temporal GAN
"""

import argparse
import functools
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from deepdance.cache import VideoSkeleton, add_framing_arg
from deepdance.cli import UserError, run_cli
from deepdance.files import ROOT, output_path, write_png
from deepdance.gentypes import GEN_TYPES, SIZE, generator_module, load_generator, shown_size
from deepdance.transfer import (
    DEFAULT_GEN_TYPE,
    OUT,
    PANEL,
    STILLS,
    STRIDE,
    VIEW,
    VIEWS,
    _open_window,
    coverage_warnings,
    first_frames,
    span_sound,
    still_frames,
    transfer,
)
from deepdance.video import check_video_path


def build_parser():
    """DanceDemo.py's options (the module docstring is its --help); --live has its own (deepdance.live)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--gen_type",
        type=int,
        default=DEFAULT_GEN_TYPE,
        choices=sorted(GEN_TYPES),
        help=f"generator, see the table above (default {DEFAULT_GEN_TYPE})",
    )
    p.add_argument("--video_path", default=None, help="target video: who appears (default: the built-in sample target)")
    add_framing_arg(p, "the target's square, whose checkpoints are used")
    p.add_argument(
        "--source",
        default=None,
        help="source video: the moves (default: the built-in sample source); with --live a camera index, URL or video",
    )
    p.add_argument(
        "--live",
        action="store_true",
        help="live from a webcam (--source 0), URL or video played in real time (see python DanceDemo.py --live -h)",
    )
    p.add_argument("--out", default=None, help=f"output mp4 (default {os.path.relpath(OUT, ROOT)} in the project)")
    p.add_argument("--show", action="store_true", help="also show the frames in a window (default: headless)")
    p.add_argument(
        "--view",
        default=VIEW,
        choices=list(VIEWS),
        help=f"the output's panels: three, side (source | generated) or generated (alone) (default {VIEW})",
    )
    p.add_argument(
        "--stills",
        default=None,
        help=f"also write {STILLS} output frames to this .png, one above the other (in a row with --view generated)",
    )
    p.add_argument("--stride", type=int, default=STRIDE, help=f"use every k-th source frame (default {STRIDE})")
    p.add_argument(
        "--max_frames",
        type=int,
        default=0,
        help="render only the first N source frames, after --stride (default 0: all of them)",
    )
    p.add_argument(
        "--no_audio", action="store_true", help="a silent video (default: the source's sound, trimmed to the video)"
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="trained models (default auto)")
    p.add_argument(
        "--size",
        type=int,
        default=SIZE,
        choices=(64, 128, 256),
        help=f"trained generators' px (default {SIZE}; gen_type 1 copies stored frames at the panel's {PANEL} px)",
    )
    p.add_argument(
        "--coherent",
        action="store_true",
        help="gen_type 1: temporally coherent nearest neighbours (Viterbi) instead of per-frame",
    )
    p.add_argument(
        "--smooth",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="One-Euro smoothing of the source keypoints (default on)",
    )
    p.add_argument(
        "--normalize",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="global pose normalisation onto the target (default on)",
    )
    return p


def check_args(a):
    """Refuse contradictory options and unusable paths before any extraction -> (output .mp4 path, --stills .png
    path or None, target path or None, source path or None: None is the built-in sample)."""
    if a.stride < 1:
        raise UserError(f"--stride must be >= 1, got {a.stride}")
    if a.max_frames < 0:
        raise UserError(f"--max_frames must be >= 0, got {a.max_frames}")
    if a.coherent and a.gen_type != 1:
        raise UserError(f"--coherent applies to gen_type 1 only (got --gen_type {a.gen_type})")
    target = check_video_path(a.video_path) if a.video_path else None
    source = check_video_path(a.source) if a.source else None
    # Checked now, not after the extraction: never an input, the sample or a cache (deepdance.files.output_path).
    out = output_path(a.out or OUT, option="--out", suffixes=(".mp4",), inputs=(target, source), need_bytes=16 << 20)
    stills = a.stills and output_path(a.stills, option="--stills", suffixes=(".png",), inputs=(target, source, out))
    return out, stills, target, source


def generator_and_source(a, target_vs, source):
    """(generator, source VideoSkeleton, s its pose extraction took): a trained generator is loaded first, so a
    missing checkpoint fails before the source's extraction; an untrained one is built beside it."""
    options = {"coherent": True} if a.coherent else {}
    trained = GEN_TYPES[a.gen_type].train is not None
    size = shown_size(a.gen_type, a.size, PANEL)  # retrieval: the stored frames at the panel's size, not upscaled
    load = functools.partial(load_generator, target_vs, a.gen_type, size=size, device=a.device, **options)
    gen = load() if trained else None
    if source is None:
        from deepdance import mannequin

        source = mannequin.ensure_sample("source")
    with ThreadPoolExecutor(1) as pool:
        # Nothing trained, so nothing can be missing: build it (KD-tree, imports) while the extraction workers
        # start up rather than before them.
        pending = None if trained else pool.submit(load)
        t = time.perf_counter()
        source_vs = VideoSkeleton(source, frame_skip=a.stride, report=False)  # a source: no target report
        t_extract = time.perf_counter() - t
        gen = gen if trained else pending.result()
    return gen, source_vs, t_extract


def timing_line(out, stats, *, fps, seconds, t_extract):
    """The closing `wrote ...` line: frames, those filled in, and where the seconds went."""
    n = stats["frames"]
    missing = f", {stats['missing']} without a person filled in" if stats["missing"] else ""
    if stats["written"] != n:  # a variable frame rate: the output's frames are the source's times at a steady rate
        missing += f" ({stats['written']} output frames at {fps:g} fps: each source frame at its own time)"
    return (
        f"wrote {out}: {n} frames{missing} in {seconds:.1f} s = {n / seconds:.1f} frames/s end to end "
        f"(source poses {t_extract:.1f} s, generate {stats['generate']:.1f} s, draw {stats['draw']:.1f} s, "
        f"encode {stats['encode']:.1f} s)"
    )


def sound_line(sound, seconds, *, dropped):
    """The `sound: ...` line: whose audio the output has, from where and how long, or why it has none."""
    if dropped:
        return "sound: none (--no_audio)"
    if sound is None:
        return "sound: none in the source"
    if not seconds:  # the writer printed a warning saying why
        return f"sound: none (could not add {sound.path.name}'s audio)"
    return f"sound: {sound.path.name}'s audio from {sound.start:.2f} s, {seconds:.1f} s"


def main(argv=None):
    t_start = time.perf_counter()
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--live" in argv:  # camera, window and recording options of their own: deepdance.live parses them
        from deepdance import live

        return live.main([x for x in argv if x != "--live"])
    a = build_parser().parse_args(argv)
    out, stills, target, source = check_args(a)
    if a.show:
        _open_window()
    generator_module(a.gen_type, target)  # fail before any extraction if the generator's code is missing

    target_vs = VideoSkeleton(target, framing=a.framing)
    gen, source_vs, t_extract = generator_and_source(a, target_vs, source)
    source_vs = first_frames(source_vs, a.max_frames)
    sound = None if a.no_audio else span_sound(source_vs)
    label = f"generated: gen_type {a.gen_type}" + (" coherent" if a.coherent else "")
    for line in coverage_warnings(source_vs, target_vs.skeletons()):  # before rendering; it renders all the same
        print(f"warning: {line}")
    try:
        stats = transfer(
            source_vs,
            target_vs.skeletons(),
            gen,
            out,
            smooth=a.smooth,
            normalize=a.normalize,
            show=a.show,
            label=label,
            sound=sound,
            view=a.view,
        )
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    seconds = time.perf_counter() - t_start
    print(sound_line(sound, stats["sound_s"], dropped=a.no_audio))
    print(timing_line(out, stats, fps=source_vs.fps, seconds=seconds, t_extract=t_extract))
    if stills:
        write_png(stills, still_frames(out, stats["written"]))
        print(f"stills -> {stills}")
    return stats


if __name__ == "__main__":
    run_cli(main)
