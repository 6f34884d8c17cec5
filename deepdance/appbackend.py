"""What the web app (app.py) works with, apart from the page itself: no Streamlit here.

targets       the videos that can be picked (the sample, processed videos), their framings, generators and reports
previews      a few frames of a target or a source with their skeletons
the work      a transfer (transfer.transfer) in the view asked for, with its still strip, and adding a target

Uploads (stored by content, listed, forgotten) are deepdance.uploads; the thread a run or an addition works in is
deepdance.jobs.Job. Both are below this module: they import nothing of it.
"""

import functools
import importlib.util
import json
import os
import shlex
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from deepdance import transfer
from deepdance.cache import (
    CACHE_DIR,
    CHECKPOINT_DIR,
    FRAME_SIZE,
    FRAMING,
    FRAMINGS,
    VIDEO_EXTS,
    VideoSkeleton,
    extraction_params,
    load_cache,
)
from deepdance.checkpoints import checkpoint_size
from deepdance.cli import UserError
from deepdance.files import DATA_DIR, ROOT, png_bytes
from deepdance.gentypes import (
    GEN_TYPES,
    LIBRARY,
    SIZE,
    checkpoint_dir,
    load_generator,
    shown_size,
    train_command,
    train_command_for,
)
from deepdance.pose import detect_poses
from deepdance.skeleton import draw_skeleton
from deepdance.uploads import UPLOAD_DIR, display_name
from deepdance.video import check_video_path, count_frames, iter_frames, probe_video

import cv2
import numpy as np

STRIDE = 2  # default: every 2nd source frame (half the MediaPipe time on a CPU; 12.5 fps from 25 fps footage)
PREVIEW_FRAMES = 6  # frames in each preview strip
PREVIEW_SIZE = 128  # px per preview frame


# --------------------------------------------------------------------------- what can be picked


class Framed(NamedTuple):
    """A target's pose cache in one framing: what VideoSkeleton opens it with, and where its models are."""

    params: dict  # extraction params of the cache (meta.json), framing included
    key: str  # the cache folder's name: the target key its checkpoints sit under (data/checkpoints/<key>/)


class Target(NamedTuple):
    label: str  # short: what the select box shows
    video: Path | None  # None: the built-in sample target (rendered on demand)
    caches: dict  # {framing: Framed} of the framings it is extracted in, in FRAMINGS order ({}: none yet)
    details: str = ""  # the rest, written out in full under the select box

    def framings(self):
        """The framings it can be opened in: those extracted; FRAMING alone before any (the sample's first use)."""
        return list(self.caches) or [FRAMING]

    def params(self, framing):
        """Extraction params of its cache in `framing` (None: none yet, VideoSkeleton's defaults)."""
        cache = self.caches.get(framing)
        return None if cache is None else cache.params

    def video_path(self):
        """Its video file (the built-in sample's clip, rendered or not, for the sample target)."""
        if self.video is not None:
            return self.video
        from deepdance import mannequin

        return mannequin.clip_path("target").resolve()


def shown_path(path):
    """A path as users type it: relative to the project root when inside it or beside it (../shared/...)."""
    rel = os.path.relpath(path, ROOT)
    return str(path) if rel.startswith(f"..{os.sep}..") or rel == ".." else rel


def processed_targets():
    """The built-in sample target first, then every cached video whose file is still there, newest first, each with
    the framings it is extracted in.

    Uploaded sources (UPLOAD_DIR) have caches too but are not targets. In each framing the cache the trainers read
    (VideoSkeleton's default sampling: its key holds their checkpoints) is preferred over a newer one with another
    sampling (a target also used as a source with a stride), else the newest is taken.
    """
    from deepdance import mannequin

    sample, sample_source = mannequin.clip_path("target").resolve(), mannequin.clip_path("source").resolve()
    chosen = {sample: {}}  # video -> {framing: (Framed, whether the trainers read it, details)}
    metas = sorted(CACHE_DIR.glob("*/meta.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    uploads = UPLOAD_DIR.resolve()
    for meta_path in metas:
        try:
            meta = json.loads(meta_path.read_text())
            video, params = Path(meta["source"]).resolve(), dict(meta["params"])
            found, frames = int(meta["detected"]), int(meta["frames"])
            framing = params.get("framing", FRAMING)
            trainers = params == extraction_params(framing=framing)
        except (OSError, ValueError, KeyError, TypeError, UserError):
            continue  # a cache being written or damaged, an unknown framing: VideoSkeleton itself reports those
        if video == sample_source or video.is_relative_to(uploads) or not (video == sample or video.is_file()):
            continue
        framed = chosen.setdefault(video, {})
        if framing not in framed or (trainers and not framed[framing][1]):
            skip = params.get("frame_skip", 1)
            every = f", 1 frame in {skip}" if skip > 1 else ""
            details = f"{found} of {frames} frames with a person{every}; in {shown_path(video.parent)}/"
            framed[framing] = Framed(params, meta_path.parent.name), trainers, details
    targets = []
    for video, framed in chosen.items():
        caches = {f: framed[f][0] for f in FRAMINGS if f in framed}
        if video == sample:
            targets.append(Target("built-in sample target", None, caches, "a rendered mannequin, 600 frames"))
        else:  # the counts of its first framing's cache (those of another framing differ little)
            targets.append(Target(video.name, video, caches, framed[next(iter(caches))][2]))
    names = [t.label for t in targets]
    # Labels are short (the select box cuts long ones); two videos of one name are told apart by their folder.
    return [t._replace(label=f"{t.label} ({shown_path(t.video.parent)}/)") if names.count(t.label) > 1 else t
            for t in targets]  # fmt: skip


def framing_states(target):
    """{framing: one line} for every framing: whether the target is extracted in it, and the generators trained on
    that framing's cache (its checkpoints are its own: data/checkpoints/<key>/, the key ending -center or not)."""
    out = {}
    for framing in FRAMINGS:
        cache = target.caches.get(framing)
        if cache is None:  # not extracted in it; the sample before its first use opens in FRAMING, extracting it
            out[framing] = "extracted on first use" if framing in target.framings() else "not extracted"
            continue
        found = trained_sizes(cache.key)
        trained = [g for g in found if any(loads(best_path(cache.key, g, size), g) for size in found[g])]
        damaged = [g for g in found if g not in trained]
        said = f"trained: gen_type {', '.join(map(str, trained))}" if trained else "nothing trained yet"
        out[framing] = said + (f"; damaged: gen_type {', '.join(map(str, damaged))}" if damaged else "")
    return out


def best_path(key, gen_type, size):
    """A target's best.pth of gen_type at `size` px (data/checkpoints/<key>/<folder>-<size>/best.pth)."""
    return CHECKPOINT_DIR / key / f"{GEN_TYPES[gen_type].folder}-{size}" / "best.pth"


def loads(path, gen_type):
    """Whether a best.pth reads as a checkpoint of gen_type (a damaged one is there but is not a trained model)."""
    try:
        st = path.stat()
    except OSError:
        return False
    return _loads(str(path), gen_type, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=256)
def _loads(path, gen_type, mtime_ns, size):
    """loads(), once per version of the file (its mtime and size are part of the key): the page asks on every rerun."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # damaged, foreign or being replaced: torch raises anything from EOFError to UnpicklingError
        return False
    return isinstance(ckpt, dict) and ckpt.get("gen_type", gen_type) == gen_type


def data_videos():
    """Videos under DATA_DIR (caches, checkpoints, uploads and hidden folders aside), sorted."""
    skipped = (CACHE_DIR, CHECKPOINT_DIR, UPLOAD_DIR)
    found = []
    for folder, dirs, files in os.walk(DATA_DIR):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and here / d not in skipped)
        found += [here / f for f in files if Path(f).suffix.lower() in VIDEO_EXTS and not f.startswith(".")]
    return sorted(found)


def resolve_path(text):
    """A typed video path (relative to the project root, ~ allowed) -> checked absolute Path; UserError if bad."""
    path = Path(text.strip()).expanduser()
    try:
        path = check_video_path(path if path.is_absolute() else ROOT / path)
        probe_video(path)
    except OSError as e:  # a name over 255 bytes (ENAMETOOLONG), a folder it may not read: the system's own words
        why = (e.strerror or type(e).__name__).lower()
        raise UserError(f"{display_name(text.strip())} cannot be opened: {why}") from None
    return path


def checkpoint_stamp(key):
    """What decides which generators load for a target: its checkpoint files (name, mtime), the Gen* modules there."""
    root = CHECKPOINT_DIR / key
    files = []
    if root.is_dir():
        for p in root.rglob("*.pth"):
            try:
                if not p.name.startswith(".tmp-"):
                    files.append((str(p.relative_to(root)), p.stat().st_mtime_ns))
            except OSError:
                continue  # replaced while we looked: the next rerun sees it
    modules = sorted(
        ROOT / (LIBRARY[spec.script].replace(".", "/") + ".py") for spec in GEN_TYPES.values() if spec.train
    )
    present = tuple((m.name, m.stat().st_mtime_ns if m.exists() else 0) for m in dict.fromkeys(modules))
    return tuple(sorted(files)), present


def trained_sizes(key):
    """{gen_type: [sizes]} of a target's checkpoint folders (<folder>-<size>/) that hold a best.pth."""
    root = CHECKPOINT_DIR / key
    out = {}
    for g, spec in GEN_TYPES.items():
        if spec.folder is None or not root.is_dir():
            continue
        for best in root.glob(f"{spec.folder}-*/best.pth"):
            size = best.parent.name[len(spec.folder) + 1 :]
            if size.isdigit():
                out.setdefault(g, []).append(int(size))
    return {g: sorted(sizes) for g, sizes in out.items()}


def try_load_generator(gen_type, vs, *, size=SIZE, coherent=False):
    """(generator, None) when gen_type loads for this target at `size` px, else (None, the one-line reason)."""
    try:
        options = {"coherent": True} if coherent else {}
        shown = shown_size(gen_type, size, transfer.PANEL)  # retrieval: the stored frames, not upscaled
        return load_generator(vs, gen_type, size=shown, **options), None
    except UserError as e:
        return None, str(e)
    except Exception as e:  # a Gen* module being written must not take the whole page down
        return None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


class Availability(NamedTuple):
    gen_type: int
    size: int
    state: str  # "ready", "untrained", "damaged" or "unavailable"
    why: str = ""  # why it does not load (unavailable: shown; damaged: the loader's words, not shown)
    command: str = ""  # what trains it (untrained) or trains it again over the damaged file (damaged)


def with_data_dir(command):
    """A command as the page shows it: with DEEPDANCE_DATA=<this server's data folder> in front when the server runs
    with one (run without it, the command would read and train into another folder)."""
    if not os.environ.get("DEEPDANCE_DATA") or DATA_DIR == (ROOT / "data").resolve():
        return command
    return f"DEEPDANCE_DATA={shlex.quote(shown_path(DATA_DIR))} {command}"


def retrain_command(gen_type, video, size=SIZE, *, framing=None):
    """The command that trains gen_type again over a damaged checkpoint: the training command, forced."""
    return train_command(gen_type, video, size, framing=framing, force=True)


def generator_states(vs, load):
    """Every gen_type at each of its trained sizes (SIZE when none) -> [Availability]; load(g, size) -> (gen, why).

    A checkpoint file that is there but does not load is damaged (or from another version): it is not "not
    trained", and retraining it needs the forcing command.
    """
    sizes = trained_sizes(vs.key)
    out = []
    for g, spec in GEN_TYPES.items():
        for size in sizes.get(g) or [SIZE]:
            gen, why = load(g, size)
            if gen is not None:
                out.append(Availability(g, size, "ready"))
            elif spec.train is None or importlib.util.find_spec(LIBRARY[spec.script]) is None:
                out.append(Availability(g, size, "unavailable", why))
            elif not (checkpoint_dir(vs, g, size) / "best.pth").exists():
                out.append(Availability(g, size, "untrained", command=train_command_for(vs, g, size)))
            else:  # `why` is PyTorch's words, for a developer: the page says what to do, in one line
                why = why.replace(str(CHECKPOINT_DIR / vs.key), shown_path(CHECKPOINT_DIR / vs.key))
                fix = retrain_command(g, vs.video_path, size, framing=vs.framing)
                out.append(Availability(g, size, "damaged", why, fix))
    return out


def training_summaries(key):
    """[summary] for each of a target's model folders with a best.pth that loads, by gen_type then size.

    A summary holds the gen_type, size, the folder's name, the best epoch, its validation metrics, training time
    and the loss-curve PNGs (loss*.png: VanillaNN writes loss.png, the GANs loss_G.png and loss_D.png) and
    samples.png.
    """
    root = CHECKPOINT_DIR / key
    bests = sorted(root.glob("*/best.pth")) if root.is_dir() else []
    if not bests:
        return []
    import torch

    out = []
    for best in bests:
        try:
            ckpt = torch.load(best, map_location="cpu", weights_only=True)
        except Exception:
            continue  # damaged or being replaced: the generators' list reports it
        gen_type = ckpt.get("gen_type") if isinstance(ckpt, dict) else None
        if gen_type not in GEN_TYPES:
            continue
        folder = best.parent
        out.append(
            {
                "gen_type": gen_type,
                "size": checkpoint_size(ckpt),
                "name": folder.name,
                "epoch": ckpt.get("epoch"),
                "seconds": ckpt.get("train_seconds"),
                "val": {k: float(v) for k, v in (ckpt.get("val") or {}).items() if isinstance(v, (int, float))},
                "loss_pngs": [str(p) for p in sorted(folder.glob("loss*.png"))],
                "samples_png": str(folder / "samples.png") if (folder / "samples.png").exists() else None,
            }
        )
    return sorted(out, key=lambda s: (s["gen_type"], s["size"] or 0))


def target_report(cache_dir):
    """(report dict or None, contact-sheet PNG paths, problem line or None): what VideoSkeleton may write next to a
    cache (report.json and a PNG). Read defensively: versions without them, or a file being written, are fine."""
    cache_dir = Path(cache_dir)
    report, problem = None, None
    try:
        report = json.loads((cache_dir / "report.json").read_text())
        if not isinstance(report, dict):
            report, problem = None, "report.json does not hold a JSON object"
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as e:
        problem = f"report.json cannot be read ({type(e).__name__}: {str(e).splitlines()[0][:80]})"
    pngs = sorted(p for p in cache_dir.glob("*.png") if not p.name.startswith("."))
    return report, pngs, problem


def report_lines(report):
    """A target report as markdown lines: its problems first (each says what to film differently), then its notes,
    then what it measured in words. Each part is its own block (a blank line apart: markdown would run a heading on
    into the list above it); the raw numbers stay in report.json."""
    lines = []
    problems = report.get("problems")
    if isinstance(problems, list):
        said = [p.get("line", str(p)) if isinstance(p, dict) else str(p) for p in problems]
        head = f"**{len(said)} problem{'s' * (len(said) > 1)}**, what to film differently:"
        lines += [head, "", *(f"- {line}" for line in said), ""] if said else ["**No problems found.**", ""]
    notes = report.get("notes")
    if isinstance(notes, list) and notes:
        lines += ["**Notes**:", "", *(f"- {note}" for note in notes), ""]
    measured = measured_lines(report)
    if measured:
        lines += ["**What it measured**:", "", *(f"- {line}" for line in measured), ""]
    return lines[:-1] if lines and lines[-1] == "" else lines


def measured_lines(r):
    """The report's numbers said in words, those it holds (an older or damaged report may lack some)."""

    def num(*keys):
        v = r
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    out = []
    frames, found, share, seconds = num("frames"), num("with_person"), num("share_with_person"), num("duration_s")
    if frames is not None:
        length = f" ({seconds:.1f} s)" if seconds else ""
        person = f"; the person is found in {found} ({100 * share:.0f}%)" if found is not None and share else ""
        out.append(f"{frames} frames{length}{person}")
    fill, px = num("height_in_square"), num("height_px")
    if fill is not None and px is not None:
        out.append(f"standing, the person is {100 * fill:.0f}% of the stored square's height, {px:.0f} px tall in "
                   "the video")  # fmt: skip
    off = num("off_picture")
    if off is not None:
        out.append(f"part of the body outside the picture in {100 * off:.0f}% of the frames")
    shift = num("camera", "shift")
    if shift is not None:
        out.append(f"the background shifts by up to {100 * shift:.0f}% of the picture (a still camera: about 0%)")
    checked, second = num("people", "checked"), num("people", "second_person")
    if checked:
        out.append(f"someone else in the picture in {second or 0} of {checked} frames checked")
    spread = num("poses", "spread_deg")
    if spread is not None:
        out.append(f"the poses differ by {spread:.0f} degrees of limb direction, typically (under 12: barely moves)")
    return out


# --------------------------------------------------------------------------- previews


def pose_strip(frames, poses, size=PREVIEW_SIZE):
    """Square BGR frames with their poses ((13, 2) in [0, 1]; NaN: none found) drawn on, side by side."""
    tiles = []
    for frame, xy in zip(frames, poses, strict=True):
        tile = np.array(
            frame if frame.shape[0] == size else cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
        )
        tiles.append(draw_skeleton(tile, xy))
    return np.concatenate(tiles, axis=1)


def vs_preview(vs, n=PREVIEW_FRAMES):
    """n evenly spaced frames of a VideoSkeleton with a person in them, their skeletons drawn on."""
    picks = np.linspace(0, len(vs) - 1, min(n, len(vs))).round().astype(int)
    return pose_strip([vs.frame(i) for i in picks], vs.skeletons()[picks])


def is_extracted(path, stride):
    """Whether a source's poses are in a cache at this stride (a quick look: meta.json and the arrays' headers)."""
    return load_cache(path, extraction_params(frame_skip=stride))[1] is not None


def extracted_preview(path, stride, n=PREVIEW_FRAMES):
    """A source's preview strip from its pose cache at this stride, or None when it was not extracted so yet."""
    return vs_preview(VideoSkeleton(path, frame_skip=stride, verbose=False), n) if is_extracted(path, stride) else None


def padded_square(frame, size=FRAME_SIZE):
    """The whole frame on a black square (not cropped: however the extraction frames it, nobody is cut off here)."""
    h, w = frame.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    square = cv2.copyMakeBorder(frame, top, side - h - top, left, side - w - left, cv2.BORDER_CONSTANT, value=0)
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)


def detected_preview(path, n=PREVIEW_FRAMES):
    """A source's preview strip before extraction: MediaPipe on n frames spread over it (seconds; nothing written)."""
    n_video = probe_video(path)[0]
    frames = []
    for i in np.unique(np.linspace(0, max(0, n_video - 2), n).round().astype(int)):
        frames += [padded_square(f) for _, f in iter_frames(path, int(i), int(i) + 1)]
    if not frames:
        raise UserError(f"cannot read a frame from {path}")
    return pose_strip(frames, detect_poses(np.stack(frames), mode="static", desc="preview"))


# --------------------------------------------------------------------------- the work


def named(error, path, shown):
    """A UserError's line with a stored file's path and name replaced by the name the user knows it by."""
    text = str(error)
    if path is not None:
        text = text.replace(str(path), shown).replace(Path(path).name, shown.strip("`"))
    return text


def source_poses(source, *, stride, shown, report):
    """The source's VideoSkeleton at this stride (extracted on first use, cached by content).

    Errors name the file as the user knows it (an upload's own name, not its stored one) with the video's own
    frame counts, not the stride's share of them.
    """
    n_video = probe_video(source)[0]
    used = -(-n_video // stride)
    of = f"{used} of the {n_video} frames" if stride > 1 else f"the {n_video} frames"
    if is_extracted(source, stride):
        report(0.0, f"source poses: from the cache of {shown} (extracted by an earlier run)")
    else:
        report(0.0, f"source poses: MediaPipe on {of} of {shown} (cached after the first run)")
    try:
        return VideoSkeleton(
            source,
            frame_skip=stride,
            verbose=False,
            progress=lambda done, total: report(
                0.5 * done / total, f"source poses: MediaPipe on {done}/{total} frames of {shown} (stride {stride})"
            ),
        )
    except UserError as e:
        if "frames it declares" not in str(e):
            raise UserError(named(e, source, shown)) from None
        decoded = count_frames(source)  # the whole video, not the stride's share
        raise UserError(
            f"{shown} is damaged: it declares {n_video} frames but only {decoded} can be decoded; re-encode it "
            f"(e.g. `ffmpeg -i {shlex.quote(shown.strip('`'))} -c:v libx264 fixed.mp4`) or use an undamaged copy"
        ) from None


def run_transfer(
    source, target_vs, gen, label, *, stride=STRIDE, smooth=True, normalize=True, progress=None, shown=None,
    keep_sound=True, view=transfer.VIEW,
):  # fmt: skip
    """Motion transfer of `source` (a video path; None = the built-in sample source) onto gen's target.

    Returns (mp4 bytes, stats). progress(fraction, text) follows the work; shown: the source's name in messages
    (an upload's own name); keep_sound: the source's sound under the video, trimmed to the rendered span; view: the
    video's panels (transfer.VIEWS). stats["stills"] is a PNG of a few of its frames, evenly spread, in that layout
    (transfer.still_frames, as DanceDemo's --stills). No output file is left behind.
    """
    transfer.check_view(view)  # a bad view fails before any extraction
    report = progress or (lambda fraction, text: None)
    t0 = time.perf_counter()
    if source is None:
        from deepdance import mannequin

        if not (mannequin.clip_path("source").is_file() and mannequin.joints_path("source").is_file()):
            report(0.0, "rendering the built-in sample source (first run only)")
        source = mannequin.ensure_sample("source")
    shown = shown or display_name(source.name)
    # The bar: source poses up to one half (skipped when cached), rendering the other half.
    source_vs = source_poses(source, stride=stride, shown=shown, report=report)
    t_poses = time.perf_counter() - t0
    coverage = coverage_lines(source_vs, target_vs.skeletons())  # poses the target never made
    # As DanceDemo: the source's own sound from the first rendered frame on, so the player and the download keep it.
    sound = transfer.span_sound(source_vs) if keep_sound else None
    with tempfile.TemporaryDirectory(prefix="deepdance-app-") as tmp:
        out = Path(tmp) / "result.mp4"
        stats = transfer.transfer(
            source_vs,
            target_vs.skeletons(),
            gen,
            out,
            smooth=smooth,
            normalize=normalize,
            label=label,
            progress=lambda done, total: report(0.5 + 0.5 * done / total, f"rendering: {done}/{total} frames"),
            verbose=False,
            sound=sound,
            view=view,
        )
        report(1.0, f"the still strip: {transfer.STILLS} frames of the result")
        stills = png_bytes(transfer.still_frames(out, stats["written"]), name="the still strip", compression=6)
        data = out.read_bytes()
    said = sound_said(sound, stats["sound_s"], dropped=not keep_sound)
    done = {"poses": t_poses, "seconds": time.perf_counter() - t0, "coverage": coverage, "sound": said}
    return data, {**stats, **done, "stills": stills}


def sound_said(sound, seconds, *, dropped):
    """What the result's sound is, for the line under its video."""
    if dropped:
        return "silent: sound left out"
    if sound is None:
        return "silent: the source has no sound"
    if not seconds:
        return "silent: the source's sound could not be added"
    return "with the source's sound"


def coverage_lines(source_vs, target_xy, share=transfer.COVERAGE_SHARE):
    """transfer.coverage_warnings for the page: the same lines, but numbering the video file's own frames (what the
    page describes the source by), not the positions in the strided sequence the run used; [] when few frames are
    far from the target's poses."""
    from deepdance import coverage

    gaps = coverage.uncovered(source_vs.ske_all[..., :2], target_xy)
    if gaps.share <= share or not gaps.far.any():
        return []
    frames = np.asarray(source_vs.frame_indices)

    def where(positions):
        runs = coverage._runs(positions)  # runs of the sequence used: one per stretch of the file
        text = ", ".join(f"{frames[a]}" if a == b else f"{frames[a]}-{frames[b]}" for a, b in runs[:4])
        return text + (f" and {len(runs) - 4} more" if len(runs) > 4 else "")

    far = np.flatnonzero(gaps.far)
    strided = len(frames) > 1 and frames[1] - frames[0] > 1
    count = f"{len(far)} of the {len(frames)} source frames used" if strided else f"{len(far)} source frames"
    out = [
        f"{count} ({100 * gaps.share:.0f}%) have poses far from every pose of the target (frames {where(far)}): "
        "they are rendered as the nearest pose the target made"
    ]
    out += [f"the target never {sentence} (frames {where(pos)})" for _, sentence, pos in gaps.never]
    return out


def describe_run(stats):
    """A finished run in a few words: its frames, its time and its sound (describe_timing: where the time went)."""
    missing = f", {stats['missing']} without a person filled in" if stats["missing"] else ""
    sound = f"; {stats['sound']}" if stats.get("sound") else ""
    return f"{stats['frames']} frames{missing} in {stats['seconds']:.1f} s{sound}"


def describe_timing(stats):
    """Where a run's time went."""
    return (
        f"source poses {stats['poses']:.1f} s, generate {stats['generate']:.1f} s, draw {stats['draw']:.1f} s, "
        f"encode {stats['encode']:.1f} s"
    )


def add_target(video, *, shown, framing=FRAMING, progress=None):
    """Extract a new target's poses in `framing` (otherwise VideoSkeleton's defaults, as the trainers read them) -> a
    summary dict. A video already extracted in that framing is only read from its cache."""
    report = progress or (lambda fraction, text: None)
    n_video = probe_video(video)[0]
    report(0.0, f"target poses: MediaPipe on the {n_video} frames of {shown}")
    try:
        vs = VideoSkeleton(
            video,
            verbose=False,
            progress=lambda done, total: report(done / total, f"target poses: {done}/{total} frames of {shown}"),
            framing=framing,
        )
    except UserError as e:
        raise UserError(named(e, video, shown)) from None
    return {"video": str(vs.video_path), "shown": shown, "key": vs.key, "cache_dir": str(vs.cache_dir),
            "detected": len(vs), "frames": len(vs.valid), "framing": vs.framing}  # fmt: skip
