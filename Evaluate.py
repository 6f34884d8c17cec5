"""Measure every generator on poses it never saw: numbers (Markdown table, metrics.json) and pictures.

    python Evaluate.py                                             # the built-in sample, every trained gen_type
    python Evaluate.py --video_path ../shared/data/taichi1.mp4 --gen_type all
    python Evaluate.py --video_path ../shared/data/taichi1.mp4 --gen_type 1,3 --test held_out.mp4
    python Evaluate.py --gen_type 1 --dump out/frames.npz && python -m bench.verify_dump out/frames.npz

Without --test the poses are the target's own test block (the contiguous block at the clip's end that
neither the training nor the choice of best.pth saw; --block select scores the selection block the
trainers chose best.pth on instead) and gen_types 1 and 9 retrieve from the training block only. With
--test they are the skeletons of a separate clip of the same person, extracted by the same pipeline, and
its frames are the truth; --normalize maps them onto the target's
placement first (and the generated frames back) when the framing differs.

Ground truth is the frame in the generators' image space (square crop, --size px). Per gen_type:
L1, PSNR, SSIM over the whole image; L1 and SSIM inside the body box (ground-truth skeleton box widened
to hold head and feet); sharpness (gradient energy in the body box, generated / real: 1 = as sharp as
real); fine detail (the same for the finest band: the luma minus its sigma-1 blur); flicker (mean
|difference| of consecutive outputs / the same for the real frames: 1 = as steady as real); at >= 128 px,
pose consistency (MediaPipe on the generated frame vs the input skeleton).
Outputs in --out: metrics.json, table.md, strip.png (skeleton | each generator | real), chart.png.
"""

import argparse
import os
import shlex
import sys
from pathlib import Path

from deepdance.cache import VideoSkeleton, add_framing_arg
from deepdance.cli import UserError, run_cli
from deepdance.evaluation import (
    EVAL_GEN_TYPES,
    OUT_DIR,
    POSE_MIN_SIZE,
    STRIP_FRAMES,
    _num,
    clip_set,
    evaluate,
    held_out_set,
    markdown_table,
    parse_gen_types,
    write_outputs,
)
from deepdance.files import output_path
from deepdance.gentypes import GEN_TYPES, SIZE, generator_module
from deepdance.metrics import BOX_MARGIN, FINE_SIGMA, POSE_NEAR, body_boxes, pose_consistency
from deepdance.pose import EVAL_MARGIN, POSE_MODE, detect_poses
from deepdance.video import check_video_path


def build_parser():
    """Evaluate.py's options (the module docstring is its --help)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video_path", default=None, help="target video (default: the built-in sample target)")
    add_framing_arg(p, "the target's square (and --test's), whose checkpoints are measured")
    p.add_argument(
        "--gen_type",
        default=EVAL_GEN_TYPES,
        help=f"'all' or a comma list of {sorted(GEN_TYPES)} (default {EVAL_GEN_TYPES})",
    )
    p.add_argument("--test", default=None, help="held-out clip of the same person (default: the target's --block)")
    p.add_argument(
        "--block",
        default="test",
        choices=("test", "select"),
        help="without --test: the target's test block, or the selection block best.pth was chosen on (default test)",
    )
    p.add_argument("--normalize", action="store_true", help="--test: map its poses onto the target's placement")
    p.add_argument("--size", type=int, default=SIZE, choices=(64, 128, 256), help=f"generator px (default {SIZE})")
    p.add_argument(
        "--gen_size",
        type=int,
        default=None,
        choices=(64, 128, 256),
        help="run the generators at this size and score their frames scaled to --size (default: --size)",
    )
    p.add_argument("--out", default=None, help="output folder (default out/eval/<target>[-on-<test>]/)")
    p.add_argument("--dump", default=None, help="also write every frame compared as uint8 arrays to this .npz")
    p.add_argument("--figures", default=None, help="also copy strip.png and chart.png here as eval_strip/eval_chart")
    p.add_argument("--strip_frames", type=int, default=STRIP_FRAMES, help=f"rows of strip.png (default {STRIP_FRAMES})")
    p.add_argument(
        "--pose", choices=("auto", "on", "off"), default="auto", help=f"pose consistency (auto: >= {POSE_MIN_SIZE} px)"
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="trained models (default auto)")
    return p


def check_args(a):
    """Refuse contradictory or misspelt options before anything slow -> (gen_types, target path or None (the
    built-in sample), --test path or None)."""
    gen_types = parse_gen_types(a.gen_type)
    if a.strip_frames < 1:
        raise UserError(f"--strip_frames must be >= 1, got {a.strip_frames}")
    if a.normalize and not a.test:
        raise UserError("--normalize applies to --test clips only (the target's blocks are in its own placement)")
    target = check_video_path(a.video_path) if a.video_path else None
    test = check_video_path(a.test) if a.test else None
    if a.dump:  # now, before any extraction (output_places checks it again, with the target's cache known)
        output_path(a.dump, option="--dump", suffixes=(".npz",), inputs=(target, test))
    if len(gen_types) == 1:  # a single type whose code is missing fails now, not after an extraction
        generator_module(gen_types[0], target)
    return gen_types, target, test


def eval_set(a, vs, test):
    """The poses and truth scored -> (EvalSet, training positions of the target (the retrieval's pool), a phrase
    naming the set): the target's --block, or the --test clip (optionally normalised onto the target)."""
    if test is None:
        es, train = held_out_set(vs, a.size, a.block)
        what = f"{a.block} block of {vs.video_path.name}: positions {es.positions[0]}-{es.positions[-1]}"
        what += f" ({len(es)} frames), training block 0-{train[-1]}"
        return es, train, what
    test_vs = VideoSkeleton(test, framing=a.framing)
    if test_vs.key == vs.key:
        raise UserError("--test is the target video itself, whose frames the models trained on; leave out --test")
    es = clip_set(test_vs, vs, a.size, a.normalize)
    what = f"{test.name} ({len(es)} frames with a person){' normalised onto the target' if a.normalize else ''}"
    return es, vs.split().train, what


def output_places(a, vs, es, test):
    """(results folder, --figures folder or None, --dump file or None), resolved; each checked writable now,
    before the generators run for minutes, so a full or read-only place fails with its name."""
    inputs = (vs.video_path, test)
    out = a.out or OUT_DIR / (vs.key if test is None else f"{vs.key}-on-{es.vs.key}")
    out = output_path(out, option="--out", folder=True, inputs=inputs, need_bytes=8 << 20)
    figures = a.figures and output_path(a.figures, option="--figures", folder=True, inputs=inputs, need_bytes=8 << 20)
    dump = a.dump and output_path(a.dump, option="--dump", suffixes=(".npz",), inputs=inputs, need_bytes=8 << 20)
    return out, figures, dump


def table_notes(es, *, size, pose, reference, warnings, skipped):
    """The lines printed (and saved) under the table: what each column means, the flicker's time base, the pose
    reference of the real frames (or why there is none), then warnings and skipped gen_types."""
    n_pairs = int(es.consecutive.sum())
    notes = [
        "L1 in [0, 1] pixels; body = ground-truth skeleton box widened by "
        f"{BOX_MARGIN:g} body heights; sharpness = gradient energy in the body box / the real frames' (1 = as sharp); "
        f"fine detail = the same for the luma minus its sigma-{FINE_SIGMA:g} blur, the finest band; "
        "flicker = mean |frame-to-frame change| / the real frames' (1 = as steady)",
        f"flicker over {n_pairs} consecutive pairs, 1 file frame = {1 / es.vs.fps:.3g} s at the video's declared "
        f"{es.vs.fps:g} fps (footage sampled from a longer recording is further apart in real time: taichi1 keeps "
        "1 frame in 10, ~1/3 s)",
    ]
    if reference is not None:
        notes.append(
            f"pose: MediaPipe ({POSE_MODE}) on each generated {size} px frame, with a black border of "
            f"{EVAL_MARGIN:.0%} of the side (its detector misses a person filling the frame), vs its input skeleton; "
            "the real frames "
            f"score {reference['pose_found']:.0%} found, {reference['pose_err']:.1%} of body height; found near = "
            f"found with joints within {POSE_NEAR:g} body heights of the input (further off, it is not the person)"
        )
    elif pose is None:
        notes.append(f"pose consistency: n/a below {POSE_MIN_SIZE} px (MediaPipe finds nobody in such small frames)")
    return notes + list(warnings.values()) + [f"skipped gen_type {g}: {msg}" for g, msg in skipped.items()]


def metrics_meta(a, argv, *, vs, es, train, results, reference, skipped, warnings, notes):
    """metrics.json's contents: the command, the target, the set scored, the sizes, every result and note."""
    return {
        "command": "python Evaluate.py " + shlex.join(argv) if argv else "python Evaluate.py",
        "target": str(vs.video_path),
        "target_key": vs.key,
        "eval": {
            "set": es.name,
            "video": str(es.vs.video_path),
            "positions": [int(es.positions[0]), int(es.positions[-1])],
            "frames": len(es),
            "train_positions": [int(train[0]), int(train[-1])],
            "normalize": bool(a.normalize),
            "consecutive_pairs": int(es.consecutive.sum()),
            "frame_interval_s": 1.0 / es.vs.fps,
        },
        "size": a.size,
        "gen_size": a.gen_size or a.size,
        "crop": list(es.vs.crop),  # (x0, y0, side) px of the upright source video: the square of the frames
        "box_margin": BOX_MARGIN,
        "results": {str(g): {k: _num(v) for k, v in r.items()} for g, r in results.items()},
        "reference_real_frames": {k: _num(v) for k, v in reference.items()} if reference else None,
        "skipped": {str(g): msg for g, msg in skipped.items()},
        "warnings": {str(g): msg for g, msg in warnings.items()},
        "notes": notes,
    }


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    a = build_parser().parse_args(argv)
    gen_types, target, test = check_args(a)
    vs = VideoSkeleton(target, framing=a.framing)
    es, train, what = eval_set(a, vs, test)
    out, figures, dump = output_places(a, vs, es, test)
    pose = {"auto": None, "on": True, "off": False}[a.pose]

    scaled = f" (generators at {a.gen_size} px, scaled up)" if a.gen_size and a.gen_size != a.size else ""
    print(f"evaluating on the {what}, {a.size} px{scaled}")
    results, outputs, skipped, warnings = evaluate(es, gen_types, train, a.device, pose, a.gen_size)
    if not results:
        raise UserError("nothing to evaluate: " + " | ".join(skipped.values()))
    reference = None
    if next(iter(results.values())).get("pose_found") is not None:
        found = detect_poses(es.real, POSE_MODE, desc="MediaPipe on the real frames", margin=EVAL_MARGIN)
        reference = pose_consistency(found, es.xy)
    notes = table_notes(es, size=a.size, pose=pose, reference=reference, warnings=warnings, skipped=skipped)
    table = markdown_table(results, reference)
    print()
    print(table)
    print()
    for line in notes:
        print(f"- {line}")

    boxes = body_boxes(es.xy, es.size)
    meta = metrics_meta(
        a, argv, vs=vs, es=es, train=train, results=results, reference=reference, skipped=skipped,
        warnings=warnings, notes=notes,
    )  # fmt: skip
    title = f"{vs.video_path.stem}: {es.name} ({len(es)} frames, {a.size} px)"
    written = write_outputs(out=out, figures=figures, dump=dump, meta=meta, table=table, notes=notes, es=es,
                            outputs=outputs, results=results, boxes=boxes, title=title,
                            strip_frames=a.strip_frames)  # fmt: skip
    print(
        "wrote "
        + ", ".join(os.path.relpath(w, Path.cwd()) if w.is_relative_to(Path.cwd()) else str(w) for w in written)
    )
    return meta


if __name__ == "__main__":
    run_cli(main)
