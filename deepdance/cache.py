"""The VideoSkeleton class: a video's square frames and 13-joint skeletons, extracted once with MediaPipe in worker
processes and cached as .npy under data/cache/<stem>-<hash>/ (skeletons.npy (N, 13, 3): x, y in [0, 1] of the stored
square, visibility), with the train | selection | test split the trainers and Evaluate share. The command line, and
how the square is chosen, is VideoSkeleton.py's.
"""

import contextlib
import json
import os
import shutil
import sys
import time

from deepdance.cli import UserError, pause_here
from deepdance.dataset import PoseDataset, Split
from deepdance.extraction import join_frames, run_passes, stop_if_reimported, unspawnable_main
from deepdance.files import (
    DATA_DIR,
    atomic_path,
    check_writable,
    clean_stale_locks,
    clean_stale_temps,
    lock_file,
    short_name,
    write_png,
)
from deepdance.pose import (
    MIN_DETECTION_CONFIDENCE,
    MIN_TRACKING_CONFIDENCE,
    MODEL_COMPLEXITY,
    POSE_MODE,
    check_model_complexity,
)
from deepdance.skeleton import N_JOINTS, Skeleton
from deepdance.video import (
    check_video_path,
    detect_size,
    file_hash,
    frame_to_square,
    padding_of,
    read_rows,
    square_frame,
    video_info,
)

import numpy as np

CACHE_DIR = DATA_DIR / "cache"
CHECKPOINT_DIR = DATA_DIR / "checkpoints"
CACHE_VERSION = 2  # caches of another version are extracted again; this one stores person-centred squares ("crop"
# in meta.json), upright frames, times.npy and report.json
FRAME_SIZE = 256  # stored frame side (px)
FRAMING = "person"  # "person": one square per clip holding the whole body; "center": the course's centre crop
FRAMINGS = ("person", "center")
KEEP_BYTES = 1 << 30  # pass 1 keeps the frames MediaPipe saw (<= 640 px) on disk for pass 2 when they fit in this:
# reading them back costs little next to decoding the video a second time
FRAME_SKIP = 1  # keep every k-th frame
WORKERS = min(2, os.cpu_count() or 1)
MIN_FRAMES_PER_WORKER = 48  # below this a second process costs more (start-up) than it saves
TEST_FRAC = 0.15  # share of usable frames held out as the test block (the clip's end): what Evaluate reports
SELECT_FRAC = 0.10  # share held out just before it as the selection block: where the trainers pick best.pth (a
# model chosen on the block it is scored on reads optimistic)
BLOCK_GAP = 5  # frames dropped between two blocks so neighbouring (near-identical) frames cannot leak
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
READ_CHUNK = 64  # cached frames read from disk at a time when streaming a whole clip (12 MB at 256 px)


# --------------------------------------------------------------------------- extraction


def default_video():
    """The built-in sample's target clip (rendered on first use)."""
    from deepdance import mannequin

    return mannequin.ensure_sample("target")


def _check_room(video, *, n_keep, size, seen_size, framing):
    """Whether pass 1 keeps the frames MediaPipe saw on disk for pass 2 (framing "person", when they fit in
    KEEP_BYTES); UserError now, before any decoding, if CACHE_DIR has no room for the cache (and those frames)."""
    dw, dh = seen_size
    # The frames' part files and the merged frames.npy exist side by side for a moment: about 1.5x the cache.
    keep = framing == "person" and n_keep * dw * dh * 3 <= KEEP_BYTES
    need = int(1.6 * n_keep * size * size * 3) + keep * n_keep * dw * dh * 3
    check_writable(CACHE_DIR, need_bytes=need, what=f"the pose cache of {video.name} (frames at {size} px)")
    return keep


def _cache_meta(*, video, digest, info, params, parts, crop, people, workers, seconds):
    """meta.json's contents: the video, how it was read and sampled, the stored square and who was found."""
    n_video, fps, w, h = info["frames"], info["fps"], info["width"], info["height"]
    skel, index, times = parts["skeletons"], parts["index"], parts["times"]
    step = params["frame_skip"]
    return {
        "version": CACHE_VERSION,
        "source": str(video),
        "sha256": digest,
        "video_frames": n_video,
        "video_fps": fps,
        "video_size": [w, h],
        "fps": fps / step,
        "params": params,
        "frame_indices": index.tolist(),
        "frames": len(index),
        "detected": people["detected"],
        "workers": workers,
        "extract_seconds": round(seconds, 3),
        "versions": _versions(),
        # Where the stored square lies in the upright video (px), and how the video was read.
        "framing": params["framing"],
        "crop": [int(v) for v in crop],
        "padding": [int(v) for v in padding_of(crop, w, h)],
        "rotation": info["rotation"],
        "timing": "timestamps" if info["timed"] else "frame count",
        "vfr": bool(np.abs(times - index / fps).max() > 0.5 / fps),
        "duration": round(float(times[-1] - times[0]) + step / fps, 4),
        "people": {
            "checked": int(np.isfinite(skel[parts["looked"], 0, 0]).sum()),
            "second_person": people["second_person"],
            "tracker_switches": people["switches"],
            "other_person_frames": int(people["switched"].sum()),
        },
    }


def extract(video, params, workers=WORKERS, verbose=True, progress=None, report=True):
    """Run MediaPipe over a video in `workers` processes, choose the clip's square, and write its cache (frames,
    skeletons, times, meta, the target report) atomically; return its dir.

    Pass 1 detects on whole frames; the square comes from every frame's joints (framing "person"); pass 2 reads
    the frames again and stores them cut to it (framing "center" knows its square first and stores in pass 1).
    progress(done, total), if given, is called from this process as pass 1's frames are done (the app's bar).
    report: print the target report (it is saved either way).
    """
    video = check_video_path(video)
    check_model_complexity(params["model_complexity"])
    unspawnable = unspawnable_main()  # said before any work: the workers would die unexplained
    if unspawnable:
        raise UserError(unspawnable)
    info = video_info(video)
    digest = file_hash(video)
    cache = cache_dir_for(video, digest, params)
    step, size = params["frame_skip"], params["size"]
    n_keep = (info["frames"] + step - 1) // step
    workers = max(1, min(workers, n_keep // MIN_FRAMES_PER_WORKER))
    t0 = time.perf_counter()
    seen_size = detect_size(info["width"], info["height"])
    keep = _check_room(video, n_keep=n_keep, size=size, seen_size=seen_size, framing=params["framing"])
    with atomic_path(cache) as tmp:
        tmp.mkdir(parents=True)
        info, parts, crop, people, n_spans = run_passes(
            video, params, info=info, tmp=tmp, cache_root=CACHE_DIR, workers=workers, keep=keep, n_keep=n_keep,
            seen_size=seen_size, progress=progress, verbose=verbose,
        )  # fmt: skip
        skel, index, times = parts["skeletons"], parts["index"], parts["times"]
        n, detected = len(index), people["detected"]
        join_frames(tmp, n_spans, n=n, size=size)
        h, w = info["height"], info["width"]
        skel[..., :2] = frame_to_square(skel[..., :2], (h, w), crop)  # (N,13,2): [0,1] of the stored square
        np.save(tmp / "skeletons.npy", skel)
        np.save(tmp / "times.npy", times)  # (N,) float64 s since the first frame: the true times of the frames
        seconds = time.perf_counter() - t0
        meta = _cache_meta(
            video=video, digest=digest, info=info, params=params, parts=parts, crop=crop, people=people,
            workers=workers, seconds=seconds,
        )  # fmt: skip
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        from deepdance import report as target_report  # what the clip is worth as a target (not `report`, the flag)

        backgrounds = (parts["greys"], parts["looked"], parts["others"])
        verdict = target_report.write_report(tmp, meta=meta, skeletons=skel, times=times, backgrounds=backgrounds)
        pause_here("extract:written")  # tests interrupt here too: the new cache complete, not yet renamed into place
    if verbose:
        print(
            f"detected {detected}/{n} frames ({100 * detected / n:.1f}%) of {video.name} in {seconds:.1f} s: "
            f"{n / seconds:.1f} frames/s with {workers} worker{'s' * (workers > 1)} -> {cache}"
        )
        _report_gaps(np.isfinite(skel[:, 0, 0]), index)
        if report:
            print(target_report.describe_report(verdict, cache))
    return cache


def _report_gaps(valid, index):
    """Print where the person was lost, so users can judge their footage."""
    if valid.all():
        return
    miss = np.flatnonzero(~valid)
    runs = np.split(miss, np.flatnonzero(np.diff(miss) > 1) + 1)
    longest = max(runs, key=len)
    print(
        f"  no person in {len(miss)} frames ({len(runs)} gaps, longest {len(longest)} frames "
        f"from video frame {index[longest[0]]}); they are kept as missing, not renumbered"
    )


def _versions():
    import importlib.metadata as md

    out = {"python": sys.version.split()[0]}
    for pkg in ("mediapipe", "numpy", "opencv-contrib-python"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def extraction_params(
    frame_skip=FRAME_SKIP, size=FRAME_SIZE, model_complexity=MODEL_COMPLEXITY, mode=POSE_MODE, framing=FRAMING
):
    """What a cache was extracted with (stored in meta.json; a mismatch means extracting again)."""
    if framing not in FRAMINGS:
        raise UserError(f"unknown framing {framing!r}; expected one of {', '.join(FRAMINGS)}")
    return {
        "frame_skip": int(frame_skip),
        "size": int(size),
        "model_complexity": int(model_complexity),
        "mode": mode,
        "min_detection_confidence": MIN_DETECTION_CONFIDENCE,
        "min_tracking_confidence": MIN_TRACKING_CONFIDENCE,
        "framing": framing,
    }


def cache_dir_for(video, digest, params):
    """data/cache/<stem>-<hash>[-k5][-s128][-static][-mc2][-center]: non-default sampling or framing gets a cache (and
    models) of its own.

    One folder per video would let `DanceDemo.py --stride 5` on a training clip replace the cache its models were
    trained from; the tag keeps both.
    """
    tag = "".join(
        f"-{t}"
        for t, default in (
            (f"k{params['frame_skip']}", f"k{FRAME_SKIP}"),
            (f"s{params['size']}", f"s{FRAME_SIZE}"),
            (params["mode"], POSE_MODE),
            (f"mc{params['model_complexity']}", f"mc{MODEL_COMPLEXITY}"),
            (params.get("framing", FRAMING), FRAMING),
        )
        if t != default
    )
    # The stem at most 100 bytes: the folder name, and atomic_path's temporary name for it, stay under 255 bytes
    # for any file name (79 Chinese characters are 237 bytes).
    return CACHE_DIR / f"{short_name(video.stem, 100)}-{digest[:10]}{tag}"


def cache_problem(cache, meta, digest, params):
    """Why a cache folder cannot be used as it is (a phrase), or None if it is complete and matches."""
    if meta.get("version") != CACHE_VERSION:
        return f"was written by another version (cache version {meta.get('version')}, this one reads {CACHE_VERSION})"
    if meta.get("sha256") != digest:
        return "belongs to another video"
    if meta.get("params") != params:
        old = meta.get("params") if isinstance(meta.get("params"), dict) else {}
        changed = ", ".join(f"{k} {old.get(k)} -> {v}" for k, v in params.items() if old.get(k) != v)
        return f"was extracted with other parameters ({changed})"
    try:
        n, size = int(meta["frames"]), int(params["size"])
        if len(meta["frame_indices"]) != n or not float(meta["fps"]) > 0:
            raise ValueError("meta.json does not match its frames")
        frames = np.load(cache / "frames.npy", mmap_mode="r", allow_pickle=False)
        skel = np.load(cache / "skeletons.npy", mmap_mode="r", allow_pickle=False)
        times = np.load(cache / "times.npy", mmap_mode="r", allow_pickle=False)
        if len(meta["crop"]) != 3 or times.dtype != np.float64 or times.shape != (n,):
            raise ValueError(f"times.npy holds {times.dtype} {times.shape} or the crop is not (x0, y0, side)")
    except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
        return f"is damaged ({type(e).__name__}: {str(e)[:80]})"
    if frames.dtype != np.uint8 or frames.shape != (n, size, size, 3):
        return f"is damaged (frames.npy holds {frames.dtype} {frames.shape}, meta.json says {n} frames of {size} px)"
    if skel.dtype != np.float32 or skel.shape != (n, N_JOINTS, 3):
        return f"is damaged (skeletons.npy holds {skel.dtype} {skel.shape}, expected ({n}, {N_JOINTS}, 3) float32)"
    return None


@contextlib.contextmanager
def build_lock(video, params, verbose=False):
    """Held while one thread or process reads or builds a video's cache for `params`: two sessions opening the same
    uncached video extract it once, the second waiting and then loading what the first wrote. The lock's file
    (.<cache name>.lock beside the cache) is gone once the last holder lets go (files.lock_file)."""
    check_writable(CACHE_DIR, what="pose caches")  # DEEPDANCE_DATA on a file, a read-only place: said now
    cache = cache_dir_for(video, file_hash(video), params)

    def waiting():
        if verbose:
            print(f"waiting for another extraction of {video.name} to finish")

    with lock_file(CACHE_DIR / f".{cache.name}.lock", on_wait=waiting):
        yield


def load_cache(video, params, verbose=False):
    """(cache_dir, meta) if a valid cache for this video content and params exists, else (dir, None).

    An existing cache that cannot be used (other version or parameters, damaged files) is reported in one line
    when verbose; extracting again replaces it.
    """
    digest = file_hash(video)
    clean_stale_temps(CACHE_DIR)  # what a killed extraction left, and a cache caught mid-replacement put back
    clean_stale_locks(CACHE_DIR, ".*.lock")  # build locks a killed extraction could not remove (build_lock)
    cache = cache_dir_for(video, digest, params)
    try:
        meta = json.loads((cache / "meta.json").read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        return cache, None
    except (OSError, ValueError) as e:
        meta, problem = None, f"is damaged (meta.json: {str(e)[:80]})"
    else:
        problem = cache_problem(cache, meta, digest, params)
    if problem and verbose:
        print(f"cache {cache.name} {problem}: extracting again")
    return cache, None if problem else meta


# --------------------------------------------------------------------------- the VideoSkeleton


class VideoSkeleton:
    """Frames and skeletons of one video, from its cache (extracting on first use).

    Indexing (len, ske, frame, split) is over the frames where a person was found; the *_all
    arrays keep every sampled frame, with NaN skeletons where none was.

    crop: (x0, y0, side) of the stored square in the upright video's pixels (x_video = x0 + x * side); padding:
    its black borders (left, top, right, bottom) px; times: (N_all,) float64 s, each cache row's true time since
    the first frame (a phone's variable frame rate: rows are not 1 / fps apart); rotation: degrees the video's
    pictures were turned to stand upright; report: the target report (report.json) as a dict, measured again when
    that file is missing or damaged (report_note says so).
    framing: "person" (one square holding the whole body) or "center" (the course's centre crop). report=False
    does not print the target report after an extraction (a source clip's), it is saved either way.
    """

    def __init__(
        self,
        video=None,
        force=False,
        frame_skip=FRAME_SKIP,
        size=FRAME_SIZE,
        model_complexity=MODEL_COMPLEXITY,
        mode=POSE_MODE,
        workers=WORKERS,
        verbose=True,
        progress=None,
        *,
        framing=FRAMING,
        report=True,
    ):
        self.video_path = check_video_path(video if video is not None else default_video())
        stop_if_reimported(self.video_path, CACHE_DIR)
        if frame_skip < 1:
            raise UserError(f"frame_skip must be >= 1, got {frame_skip}")
        params = extraction_params(frame_skip, size, model_complexity, mode, framing)
        with build_lock(self.video_path, params, verbose):  # one extraction per cache: a second one waits, reuses it
            cache, meta = (None, None) if force else load_cache(self.video_path, params, verbose)
            self.extracted = meta is None  # extracted now (not read from an earlier cache)
            if meta is None:
                cache = extract(self.video_path, params, workers, verbose, progress, report)
                meta = json.loads((cache / "meta.json").read_text())
        if not self.extracted and verbose:
            print(f"loaded {meta['detected']}/{meta['frames']} frames with a person from {cache}")
        self.cache_dir, self.meta = cache, meta
        self.fps = float(meta["fps"])
        try:
            self.frames_all = np.load(cache / "frames.npy", mmap_mode="r", allow_pickle=False)
            self.ske_all = np.load(cache / "skeletons.npy", allow_pickle=False)
            self.times = np.load(cache / "times.npy", allow_pickle=False)  # (N_all,) float64 s
        except (OSError, ValueError) as e:
            raise UserError(f"cache {cache} is damaged ({e}); rerun with force_recompute=True") from None
        self.crop = tuple(int(v) for v in meta["crop"])  # (x0, y0, side) px of the upright video
        self.padding = tuple(int(v) for v in meta["padding"])  # (left, top, right, bottom) px of black
        self.rotation = int(meta["rotation"])
        self.framing = meta["params"]["framing"]  # "person" or "center" (FRAMINGS)
        self._saved_report = None  # report.saved_report's (report, note), read when first asked for
        self.frame_indices = np.asarray(meta["frame_indices"], np.int64)
        self.valid = np.isfinite(self.ske_all[:, 0, 0])
        self.rows = np.flatnonzero(self.valid)  # (N,) cache rows (sampled frames) of the usable frames
        self._resized = {}

    @property
    def report(self):
        """The target report (report.json) as a dict; one missing or damaged is measured again (see report_note)."""
        return self._report()[0]

    @property
    def report_note(self):
        """None, or the line saying report.json was missing or damaged and what `report` is instead."""
        return self._report()[1]

    def _report(self):
        if self._saved_report is None:
            from deepdance.report import saved_report

            self._saved_report = saved_report(self.cache_dir, self.meta, self.ske_all)
        return self._saved_report

    @property
    def key(self):
        """'<video stem>-<content hash>[-<non-default params>]': names this target's cache and checkpoint folders."""
        return self.cache_dir.name

    def model_dir(self, name):
        """Folder for one model trained on this target: data/checkpoints/<key>/<name>/ (see GenTypes.checkpoint_dir)."""
        return CHECKPOINT_DIR / self.key / name

    def __len__(self):
        return len(self.rows)

    def ske(self, i):
        """Skeleton of usable frame i."""
        row = self.ske_all[self.rows[i]]
        return Skeleton(row[:, :2], row[:, 2])

    def skeletons(self):
        """(N, 13, 2) float32 joints of all usable frames, in [0, 1] of the square frame."""
        return self.ske_all[self.rows, :, :2]

    def frame(self, i, size=None):
        """Usable frame i, (size, size, 3) uint8 BGR."""
        f = self.frames_all[self.rows[i]]
        return np.array(f) if size in (None, f.shape[0]) else square_frame(f, size)

    def frames(self, size=None):
        """(N, size, size, 3) uint8 BGR of all usable frames (resized once, then kept)."""
        size = size or self.frames_all.shape[1]
        if size not in self._resized:
            out, pos = np.empty((len(self), size, size, 3), np.uint8), 0
            for a in range(0, len(self.valid), READ_CHUNK):  # streamed from the file: only the result is kept
                for f in read_rows(self.frames_all, a, a + READ_CHUNK)[self.valid[a : a + READ_CHUNK]]:
                    out[pos] = f if size == f.shape[0] else square_frame(f, size)
                    pos += 1
            self._resized[size] = out
        return self._resized[size]

    def split(self, test_frac=TEST_FRAC, select_frac=SELECT_FRAC, gap=BLOCK_GAP):
        """Split(train, select, test) of the usable-frame positions, contiguous, `gap` frames apart:
        train | gap | select | gap | test, the test block at the clip's end (the frames the former val block held).
        A block that does not fit is empty (Train.split_data refuses to train then)."""
        n = len(self)
        n_test = max(1, round(test_frac * n)) if n > 1 else 0
        n_select = max(1, round(select_frac * n)) if n > 2 else 0
        select_stop = max(0, n - n_test - gap)
        select_start = max(0, select_stop - n_select)
        train = np.arange(max(0, select_start - gap))
        return Split(train, np.arange(select_start, select_stop), np.arange(n - n_test, n))

    def dataset(self, positions=None, size=64):
        """A PoseDataset over the given usable-frame positions (all by default), preloaded."""
        positions = np.arange(len(self)) if positions is None else np.asarray(positions)
        return PoseDataset(self.skeletons()[positions], self.frames(size)[positions], positions)

    def __repr__(self):
        return f"VideoSkeleton({self.video_path.name}: {len(self)}/{len(self.valid)} frames with a person)"


# --------------------------------------------------------------------------- CLI


def add_framing_arg(p, whose="the stored square"):
    """--framing, the same in every script that opens a target (its cache, and so its checkpoints, follow it)."""
    p.add_argument(
        "--framing",
        default=FRAMING,
        choices=FRAMINGS,
        help=f"{whose}: one per clip holding the whole body (person) or the course's centre crop, a cache and "
        f"checkpoints of its own (default {FRAMING})",
    )


def write_preview(vs, path, n=8, size=128):
    """The target report's contact sheet (report.png) copied to path; for a cache without one, a PNG row of n evenly
    spaced usable frames with their skeletons drawn on."""
    sheet = vs.cache_dir / "report.png"
    if sheet.is_file():
        with atomic_path(path) as tmp:
            shutil.copyfile(sheet, tmp)
        return
    picks = np.linspace(0, len(vs) - 1, n).round().astype(int)
    tiles = [vs.ske(i).draw(vs.frame(i, size)) for i in picks]
    write_png(path, np.concatenate(tiles, axis=1))
