"""What the web app (app.py) works with, apart from the page itself: no Streamlit here.

uploads       stored by content (container sniffed, one frame decoded), the most recent kept with their poses
targets       the videos that can be picked (the sample, processed videos), their framings, generators and reports
previews      a few frames of a target or a source with their skeletons
the work      a transfer (transfer.transfer), adding a target, and the background Job that runs either
"""

import hashlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import threading
import time
import traceback
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
from deepdance.cli import UserError, pause_here
from deepdance.files import DATA_DIR, ROOT, atomic_path
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
from deepdance.video import check_video_path, count_frames, iter_frames, probe_video

import cv2
import numpy as np

MAX_UPLOAD_MB = 200  # bigger uploads are refused (st.file_uploader enforces it in the browser, store_upload here)
STRIDE = 2  # default: every 2nd source frame (half the MediaPipe time on a CPU; 12.5 fps from 25 fps footage)
SNIFF_BYTES = 64  # header bytes read to recognise a container (WebM's DocType sits within the first ~40)
CONTAINERS = {"mp4": ".mp4", "mov": ".mov", "webm": ".webm", "mkv": ".mkv", "avi": ".avi", "mpeg": ".mpg"}
QUICKTIME_ATOMS = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")  # old .mov files start without 'ftyp'
UPLOAD_DIR = DATA_DIR / "uploads"  # uploaded sources, named by content hash (not listed as sources or targets)
KEEP_UPLOADS = 8  # uploaded sources kept (most recently uploaded first), each with its pose caches
PREVIEW_FRAMES = 6  # frames in each preview strip
PREVIEW_SIZE = 128  # px per preview frame


# --------------------------------------------------------------------------- uploads


def sniff_container(head):
    """Container of a file from its first bytes: 'mp4', 'mov', 'webm', 'mkv', 'avi', 'mpeg', or None."""
    head = bytes(head[:SNIFF_BYTES])
    if head[4:8] == b"ftyp":  # ISO base media (mp4, m4v, 3gp) and QuickTime ('qt  ' brand)
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if head[4:8] in QUICKTIME_ATOMS:
        return "mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska, or WebM by its DocType
        return "webm" if b"webm" in head else "mkv"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"\x00\x00\x01\xba":  # MPEG program stream pack header
        return "mpeg"
    return None


def safe_stem(name):
    """A user-given file name's stem reduced to characters that are safe in a path and in markdown."""
    stem = re.sub(r"[^\w.\- ]+", "_", Path(str(name)).name)[:60].strip().lstrip(".")
    return Path(stem).stem.strip() or "upload"


def display_name(name):
    """A user-given file name made safe to show in the page (markdown): `name` with odd characters replaced."""
    safe = re.sub(r"[^\w.\- ]+", "_", Path(str(name)).name)[:60].strip()
    return f"`{safe or 'upload'}`"


def check_upload(data, shown, max_mb=MAX_UPLOAD_MB):
    """The container an upload holds, judged by its first bytes (never its name); UserError if none or too big."""
    size = len(data)
    if size == 0:
        raise UserError(f"{shown} is empty (0 bytes)")
    if size > max_mb * 2**20:
        raise UserError(f"{shown} is {size / 2**20:.0f} MB: uploads are limited to {max_mb} MB")
    kind = sniff_container(data[:SNIFF_BYTES])
    if kind is None:
        raise UserError(
            f"{shown} is not a video this app reads: its content is not MP4/MOV, WebM/MKV, AVI or MPEG "
            "(the file's name is not trusted)"
        )
    return kind


def store_upload(data, name="upload", *, folder=UPLOAD_DIR, keep_name=False, keep=KEEP_UPLOADS, max_mb=MAX_UPLOAD_MB):
    """Check an uploaded video and store it by content: bytes -> the Path of its file.

    The file is <folder>/<sha256[:16]><ext> (keep_name: <folder>/<sha256[:16]>/<safe stem><ext>, for targets, whose
    name the page shows); the same bytes uploaded again return the stored file, so its pose cache is reused. The
    extension comes from the container found, never from the name. The write is atomic under a name unique to the
    call: two sessions storing one file at once both get a complete file. keep: when not None, the older uploads
    beyond that many are removed with their pose caches. UserError (one line for the page) when a check fails;
    nothing is left on disk then.
    """
    shown = display_name(name)
    kind = check_upload(data, shown, max_mb)
    digest = hashlib.sha256(data).hexdigest()[:16]
    if keep_name:
        stored = [p for p in (folder / digest).glob("*") if p.is_file() and not p.name.startswith(".")]
        path = stored[0] if stored else folder / digest / f"{safe_stem(name)}{CONTAINERS[kind]}"
    else:
        path = folder / f"{digest}{CONTAINERS[kind]}"
    if not (path.is_file() and path.stat().st_size == len(data)):
        try:
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
                probe_video(tmp)
        except UserError:
            raise UserError(
                f"{shown} looks like {kind.upper()} but no frame can be decoded from it: corrupt, truncated or an "
                "unsupported codec"
            ) from None
    path.touch()  # the newest upload: kept by evict_uploads
    if keep is not None:
        evict_uploads(folder, keep, current=path)
    return path


def evict_uploads(folder, keep, *, current=None):
    """Remove the uploads in `folder` beyond the `keep` most recent (never `current`), with their pose caches."""

    def mtime(p):
        try:
            return p.stat().st_mtime
        except OSError:  # another session removed it meanwhile
            return 0.0

    files = sorted((p for p in Path(folder).glob("*") if p.is_file() and not p.name.startswith(".")), key=mtime,
                   reverse=True)  # fmt: skip
    for old in [p for p in files if p != current][max(0, keep - 1) :]:
        old.unlink(missing_ok=True)  # another session may have removed it first
        for cache in CACHE_DIR.glob(f"{old.stem}-*"):
            shutil.rmtree(cache, ignore_errors=True)


def video_summary(path):
    """'901 frames at 29.97 fps, 960x720' for a readable video (its own declared numbers)."""
    n, fps, w, h = probe_video(path)
    return f"{n} frames at {fps:.4g} fps, {w}x{h}"


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
        trained = trained_sizes(cache.key)
        out[framing] = f"trained: gen_type {', '.join(map(str, trained))}" if trained else "nothing trained yet"
    return out


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
    path = check_video_path(path if path.is_absolute() else ROOT / path)
    probe_video(path)
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
    why: str = ""  # why it does not load (damaged, unavailable)
    command: str = ""  # what trains it (untrained) or trains it again over the damaged file (damaged)


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
            else:
                why = why.replace(str(CHECKPOINT_DIR / vs.key), shown_path(CHECKPOINT_DIR / vs.key))
                out.append(
                    Availability(g, size, "damaged", why, retrain_command(g, vs.video_path, size, framing=vs.framing))
                )
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
    """A target report as markdown lines, every value in full: its problems first (each says what to film
    differently), then its notes and numbers (long number lists summarised by their count)."""
    lines = []
    problems = report.get("problems")
    if isinstance(problems, list):
        said = [p.get("line", str(p)) if isinstance(p, dict) else str(p) for p in problems]
        lines.append(f"**{len(said)} problem(s)**, what to film differently:" if said else "**No problems found.**")
        lines += [f"- {line}" for line in said]
    notes = report.get("notes")
    if isinstance(notes, list) and notes:
        lines += ["**Notes**:", *(f"- {note}" for note in notes), "", "**The numbers**:"]
    for k, v in report.items():
        if k in ("problems", "notes", "contact_sheet"):  # listed above; the picture is shown below
            continue
        if isinstance(v, dict):
            lines.append(f"- **{k}**:")
            lines += [f"    - {sk}: {sv}" for sk, sv in v.items() if not isinstance(sv, (dict, list))]
        elif isinstance(v, list) and v and all(isinstance(x, str) for x in v):
            lines.append(f"- **{k}**:")
            lines += [f"    - {x}" for x in v]
        elif isinstance(v, list) and len(v) > 8:
            lines.append(f"- **{k}**: {len(v)} values (see report.json)")
        else:
            lines.append(f"- **{k}**: {v}")
    return lines


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
    source, target_vs, gen, label, *, stride=STRIDE, smooth=True, normalize=True, progress=None, shown=None
):
    """Motion transfer of `source` (a video path; None = the built-in sample source) onto gen's target.

    Returns (mp4 bytes, stats). progress(fraction, text) follows the work; shown: the source's name in messages
    (an upload's own name). No output file is left behind.
    """
    report = progress or (lambda fraction, text: None)
    t0 = time.perf_counter()
    if source is None:
        from deepdance import mannequin

        report(0.0, "rendering the built-in sample source (first run only)")
        source = mannequin.ensure_sample("source")
    shown = shown or display_name(source.name)
    # The bar: source poses up to one half (skipped when cached), rendering the other half.
    source_vs = source_poses(source, stride=stride, shown=shown, report=report)
    t_poses = time.perf_counter() - t0
    coverage = transfer.coverage_warnings(source_vs, target_vs.skeletons())  # poses the target never made
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
        )
        data = out.read_bytes()
    return data, {**stats, "poses": t_poses, "seconds": time.perf_counter() - t0, "coverage": coverage}


def describe_run(stats):
    """One line about a finished run."""
    missing = f", {stats['missing']} without a person filled in" if stats["missing"] else ""
    return (
        f"{stats['frames']} frames{missing} in {stats['seconds']:.1f} s (source poses {stats['poses']:.1f} s, "
        f"generate {stats['generate']:.1f} s, draw {stats['draw']:.1f} s, encode {stats['encode']:.1f} s)"
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


class Cancelled(Exception):
    """Raised in a job's thread at its next progress report once the user pressed Cancel."""


class Job:
    """One long task of a session (a run, adding a target) in a thread of its own.

    Streamlit stops the script run of a session whenever the page reruns (a widget changed, a rerun asked for):
    work done inside it was cancelled silently by any click. The page only shows a job's progress; reruns leave
    the work alone. work(progress) -> result; progress(fraction, text) raises Cancelled once cancel() was called.
    """

    def __init__(self, kind, what, work):
        self.kind, self.what, self._work = kind, what, work
        self.result = self.error = None
        self.cancelled = False
        self.finished = threading.Event()  # set when the work returned or failed (tests wait on it)
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._state = (0.0, "starting")
        self._thread = threading.Thread(target=self._main, name=f"deepdance-{kind}", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def progress(self, fraction, text):
        if self._cancel.is_set():
            raise Cancelled
        with self._lock:
            self._state = (min(1.0, max(0.0, float(fraction))), text)

    def state(self):
        with self._lock:
            return self._state

    def cancel(self):
        self._cancel.set()

    def _main(self):
        try:
            pause_here("app-job")  # tests hold a job here to look at the page while it runs
            self.result = self._work(self.progress)
        except Cancelled:
            self.cancelled, self.error = True, "cancelled"
        except UserError as e:
            self.error = str(e)
        except OSError as e:  # a full or read-only disk, a video that went away mid-run
            self.error = f"{e.strerror or type(e).__name__}{f': {e.filename}' if e.filename else ''}"
        except Exception as e:  # a bug: one line in the page, the traceback in the server's log
            traceback.print_exc(file=sys.stderr)
            self.error = f"unexpected {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        finally:
            self.finished.set()
