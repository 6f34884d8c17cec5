"""The two framings compared fairly: the person-centred square (default) against the course's centre crop.

    python -m bench.framing                                  # taichi1 (../shared/data), gen_types 1 and 3, 64 px
    python -m bench.framing --video sample --gen_type 1      # the built-in sample target

Body-box SSIM in each framing's own square does not compare them: in the person-centred square the person is
bigger, so the same 64 px hold more of the body. Here every generated frame goes back into the source video's
pixels (resized to its square's side and placed at its crop, meta.json's (x0, y0, side)) and is scored against
the raw video frame (decoded as the extraction decodes it: upright, by timestamps) inside the person's body box
in source pixels (the ground-truth skeleton's box, Metrics.BOX_MARGIN, mapped back the same way). Both framings
are scored on the same frames: the target's held-out test block (the last block of VideoSkeleton.split). The
in-square body SSIM (Evaluate.py's) is printed for reference. A gen_type without a checkpoint in a framing is
skipped with the command that trains it there.
"""

import argparse
import shlex
import sys
from pathlib import Path

from deepdance import evaluation
from deepdance.cache import FRAMINGS, VideoSkeleton
from deepdance.cli import UserError, run_cli
from deepdance.extraction import spans
from deepdance.files import ROOT
from deepdance.gentypes import SIZE
from deepdance.metrics import BOX_MARGIN, body_box_px, box_l1, ssim_maps
from deepdance.video import _resized, cut_square, read_span, video_info

import numpy as np

VIDEO = ROOT.parent / "shared" / "data" / "taichi1.mp4"
GEN_TYPES = "1,3"
COLUMNS = ("source-space body SSIM", "source-space body L1", "in-square body SSIM")
SAME_PICTURE = 12.0  # mean |difference| (0-255) a raw frame cut to the square may show against its cached frame
# (resampling, the detection-sized pictures the cache may be cut from); more: the frames are not the cache's


def source_frames(vs, rows):
    """The upright video frames of these cache rows, (len(rows), H, W, 3) uint8 BGR, read as the extraction read
    them (its span arguments, for one worker), so row r is the picture the cache's row r was cut from."""
    info = {**video_info(vs.video_path), "timed": vs.meta["timing"] == "timestamps"}
    wanted = {int(vs.frame_indices[r]): k for k, r in enumerate(rows)}
    out = [None] * len(rows)
    for pos, _, frame in read_span(vs.video_path, **spans(info, vs.meta["params"]["frame_skip"], 1)[0]):
        if pos in wanted:
            out[wanted.pop(pos)] = frame
            if not wanted:
                break
    if wanted:
        raise UserError(f"{vs.video_path} gave {len(rows) - len(wanted)} of the {len(rows)} frames its cache holds")
    return np.stack(out)


def into_source(frame, square, crop):
    """A copy of the video frame with the square picture (S, S, 3) resized to the crop's side and placed at its
    (x0, y0); what falls outside the picture (the square's black padding) is dropped."""
    x0, y0, side = crop
    h, w = frame.shape[:2]
    big = _resized(square, side, side)
    ax0, ay0, ax1, ay1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    out = frame.copy()
    out[ay0:ay1, ax0:ax1] = big[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0]
    return out


def source_box(xy, crop, width, height):
    """The body box (Metrics.body_box_px) of joints in [0, 1] of the square, in the video's pixels (x0, y0, x1, y1),
    end-exclusive, inside the picture."""
    x0, y0, side = crop
    bx0, by0, bx1, by1 = body_box_px(xy, side)
    return max(bx0 + x0, 0), max(by0 + y0, 0), min(bx1 + x0, width), min(by1 + y0, height)


def source_scores(fake, raw, xy, crop):
    """Body SSIM and L1 in the video's pixels of generated square frames (N, S, S, 3) against the raw frames
    (N, H, W, 3), boxes from the joints xy (N, 13, 2): (N,) arrays each. SSIM over the windows inside the box, as
    Evaluate's body SSIM (Metrics.ssim_maps on the box's crop)."""
    h, w = raw.shape[1:3]
    ssim, l1 = np.empty(len(raw)), np.empty(len(raw))
    for i in range(len(raw)):
        placed = into_source(raw[i], fake[i], crop)
        x0, y0, x1, y1 = box = source_box(xy[i], crop, w, h)
        ssim[i] = ssim_maps(placed[None, y0:y1, x0:x1], raw[None, i, y0:y1, x0:x1]).mean()
        l1[i] = box_l1(placed[None], raw[None, i], [box])[0]
    return ssim, l1


def held_out(vs):
    """(test positions, training positions) of a target: the last block of its split and the first."""
    blocks = vs.split()
    test, train = blocks[-1], blocks[0]
    if len(test) == 0 or len(train) == 0:
        raise UserError(f"{vs} is too short to hold out a test block ({len(vs)} frames with a person)")
    return test, train


def compare(video, gen_types, *, size, device):
    """Each framing's generators on the test block: rows of (gen_type, framing, results or a skip line), and the
    frames scored (cache rows, the same in both framings)."""
    targets = {f: VideoSkeleton(video, framing=f) for f in FRAMINGS}  # a framing not cached yet is extracted now
    held = {f: held_out(vs) for f, vs in targets.items()}
    # Both caches come from one detection pass over the whole frames: the same usable frames, the same blocks.
    # Should they ever differ, the frames held out in both are scored.
    rows = {f: vs.rows[held[f][0]] for f, vs in targets.items()}
    common = np.intersect1d(*rows.values())
    if len(common) == 0:
        raise UserError(f"the framings of {video} hold out no frame in common")
    raw = None
    out = []
    for f, vs in targets.items():
        test, train = held[f]
        test = test[np.isin(rows[f], common)]
        if raw is None:
            raw = source_frames(vs, vs.rows[test])
            w, h = raw.shape[2], raw.shape[1]
        stored = vs.frames_all.shape[1]
        drift = np.abs(cut_square(raw[0], vs.crop, stored).astype(float) - vs.frame(int(test[0])).astype(float))
        if drift.mean() > SAME_PICTURE:
            raise UserError(f"{vs.video_path} read now differs from its cache {vs.cache_dir} ({drift.mean():.1f}/255)")
        es = evaluation.EvalSet("test", vs, test, vs.skeletons()[test], vs.frames(size)[test])
        results, outputs, skipped, _ = evaluation.evaluate(es, gen_types, train, device, pose=False)
        for g in gen_types:
            if g in skipped:
                out.append((g, f, vs, skipped[g]))
                continue
            ssim, l1 = source_scores(outputs[g], raw, es.xy, vs.crop)
            out.append((g, f, vs, {"ssim": ssim.mean(), "l1": l1.mean(), "square_ssim": results[g]["box_ssim"]}))
    return out, common, (w, h)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--video", default=str(VIDEO), help=f"target video, or 'sample' for the built-in one (default {VIDEO})"
    )
    p.add_argument("--gen_type", default=GEN_TYPES, help=f"comma list of gen_types (default {GEN_TYPES})")
    p.add_argument("--size", type=int, default=SIZE, choices=(64, 128, 256), help=f"generator px (default {SIZE})")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="trained models (default auto)")
    a = p.parse_args(argv)
    print(f"python -m bench.framing {shlex.join(argv)}".rstrip())
    gen_types = evaluation.parse_gen_types(a.gen_type)
    video = None if a.video == "sample" else Path(a.video)
    if video is not None and not video.exists() and video == VIDEO:
        print(f"note: {VIDEO} is absent: the built-in sample target instead")
        video = None
    rows, frames, (w, h) = compare(video, gen_types, size=a.size, device=a.device)
    vs = rows[0][2]
    print()
    print(
        f"{vs.video_path.name} ({w}x{h}): test block, {len(frames)} frames (cache rows {frames[0]}-{frames[-1]}), "
        f"{a.size} px generators; body box = ground-truth skeleton box widened by {BOX_MARGIN:g} body heights"
    )
    print()
    print(f"| gen_type | framing | square (x0, y0, side) | {' | '.join(COLUMNS)} |")
    print("|---:|---|---|" + "---:|" * len(COLUMNS))
    skipped = []
    for g, f, target, r in rows:
        square = f"({', '.join(map(str, target.crop))})"
        if isinstance(r, str):
            skipped.append(f"gen_type {g}, framing {f}: {r}")
            print(f"| {g} | {f} | {square} | skipped | | |")
        else:
            print(f"| {g} | {f} | {square} | {r['ssim']:.3f} | {r['l1']:.4f} | {r['square_ssim']:.3f} |")
    for line in skipped:
        print(f"- {line}")


if __name__ == "__main__":
    run_cli(main)
