"""Video -> square frames + 13-joint skeletons, extracted once with MediaPipe and cached as .npy.

    python VideoSkeleton.py <video> <force_recompute> <frame_skip>     # reference CLI
    python VideoSkeleton.py data/taichi1.mp4 True 5
    python VideoSkeleton.py                                            # the built-in sample

Image space (the course's): each frame is centre-cropped to a square (side = shorter edge) and
stored once at 256 px, so 64/128/256 px models all train from one cache. Skeleton coordinates are
in [0, 1] of that square.
"""

import argparse
import contextlib
import functools
import hashlib
import json
import mmap
import multiprocessing
import os
import shlex
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from Skeleton import (
    DATA_DIR,
    N_JOINTS,
    Skeleton,
    UserError,
    atomic_path,
    clean_stale_temps,
    parse_bool,
    render_maps,
    run_cli,
    write_png,
)

CACHE_DIR = DATA_DIR / "cache"
CHECKPOINT_DIR = DATA_DIR / "checkpoints"
CACHE_VERSION = 1
FRAME_SIZE = 256  # stored frame side (px)
FRAME_SKIP = 1  # keep every k-th frame
MODEL_COMPLEXITY = 1  # 1 = "full", the only pose model mediapipe 0.10.21 ships in its wheel
POSE_MODE = "tracking"  # tracking finds a person in ~100% of real frames, static in ~83%
DETECT_MAX_SIDE = 640  # MediaPipe sees the whole frame (not the crop: the crop loses ~5x more
# detections on taichi1), downscaled to at most this side since its models run at 256 px anyway
MIN_DETECTION_CONFIDENCE = 0.5
MIN_TRACKING_CONFIDENCE = 0.5
WORKERS = min(2, os.cpu_count() or 1)
MIN_FRAMES_PER_WORKER = 48  # below this a second process costs more (start-up) than it saves
VAL_FRAC = 0.15  # share of usable frames held out as the validation block (the clip's end)
VAL_GAP = 5  # frames dropped between the train and val blocks so neighbours cannot leak
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
MAX_MISSING = 0.05  # share of the frames a video declares that may fail to decode (containers misstate lengths by
# a frame or two; more means a damaged file, refused rather than silently cut short)
READ_CHUNK = 64  # cached frames read from disk at a time when streaming a whole clip (12 MB at 256 px)
# Still images FFmpeg would read as a one-frame "video": refused by their first bytes, whatever their name.
IMAGE_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"BM": "BMP", b"II*\x00": "TIFF",
                    b"MM\x00*": "TIFF"}  # fmt: skip
_MODEL_FILES = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite", 2: "pose_landmark_heavy.tflite"}


# --------------------------------------------------------------------------- video helpers


def crop_square(frame):
    """Centre crop to a square of side min(H, W): (H, W, 3) -> (s, s, 3) view."""
    h, w = frame.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    return frame[y0 : y0 + s, x0 : x0 + s]


def square_frame(frame, size):
    """Centre-cropped and resized frame: (H, W, 3) uint8 -> (size, size, 3) uint8."""
    sq = crop_square(frame)
    if sq.shape[0] == size:
        return np.ascontiguousarray(sq)
    interp = cv2.INTER_AREA if sq.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(sq, (size, size), interpolation=interp)


def detect_image(frame, max_side=DETECT_MAX_SIDE):
    """The whole frame, downscaled so its longer side is at most max_side: what MediaPipe sees."""
    h, w = frame.shape[:2]
    k = max_side / max(h, w)
    if k >= 1:
        return frame
    # INTER_AREA only pays off for strong reductions; it is ~3x slower than bilinear.
    interp = cv2.INTER_LINEAR if k >= 0.5 else cv2.INTER_AREA
    return cv2.resize(frame, (round(w * k), round(h * k)), interpolation=interp)


def frame_to_square(xy, shape):
    """Coordinates in [0,1] of the whole (H, W) frame -> [0,1] of its centre square crop."""
    h, w = shape[:2]
    s = min(h, w)
    return ((xy * (w, h) - ((w - s) // 2, (h - s) // 2)) / s).astype(np.float32)


def check_video_path(path):
    """Resolve a user-given video path; UserError if it is missing or not a file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"video not found: {path}")
    if path.is_dir():
        raise UserError(f"{path} is a directory, expected a video file")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty (0 bytes), expected a video file")
    return path.resolve()


def image_kind(head):
    """'PNG', 'JPEG', ... if a file's first bytes are a still image's signature, else None."""
    head = bytes(head[:16])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((kind for sig, kind in IMAGE_SIGNATURES.items() if head.startswith(sig)), None)


def probe_video(path):
    """(n_frames, fps, width, height) of a readable video; UserError if it is not one."""
    with open(path, "rb") as f:
        kind = image_kind(f.read(16))
    if kind:
        raise UserError(f"{path} is a {kind} image, not a video: give a video file (mp4, mov, avi, mkv, webm)")
    cap = cv2.VideoCapture(str(path))
    try:
        ok, frame = cap.read() if cap.isOpened() else (False, None)
        if not ok or frame is None:
            raise UserError(
                f"cannot read a frame from {path}: not a video, corrupt or truncated, or no frames; "
                "use a video file that plays in a video player"
            )
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        h, w = frame.shape[:2]
    finally:
        cap.release()
    if n <= 0:  # some containers do not declare a count: count by decoding
        n = count_frames(path)
    return n, float(fps if 0 < fps < 1000 else 25.0), w, h


def count_frames(path):
    """Number of frames found by decoding the whole video (slow path for odd containers)."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def iter_frames(path, start=0, stop=None, step=1):
    """Yield (index, HxWx3 uint8 BGR) for frames start, start+step, ... < stop, decoding once."""
    cap = cv2.VideoCapture(str(path))
    try:
        if start:
            cap.set(cv2.CAP_PROP_POS_FRAMES, start)
        i = start
        while stop is None or i < stop:
            if (i - start) % step:
                if not cap.grab():
                    return
            else:
                ok, frame = cap.read()
                if not ok:
                    return
                yield i, frame
            i += 1
    finally:
        cap.release()


def read_rows(frames, start, stop):
    """frames[start:stop] as an in-memory array; a cache's memory-mapped frames.npy is read from its file instead.

    Pages touched through a memory map stay mapped and count as the process's memory, so streaming a long clip
    through one grows with the clip; reading chunks keeps it bounded.
    """
    start, stop = max(0, int(start)), min(int(stop), len(frames))
    if stop <= start or not isinstance(getattr(frames, "base", None), mmap.mmap):
        return np.array(frames[start:stop])
    row = int(np.prod(frames.shape[1:]))  # items per frame
    count = (stop - start) * row
    with open(frames.filename, "rb") as f:
        f.seek(frames.offset + start * row * frames.itemsize)
        data = np.fromfile(f, frames.dtype, count)
    if data.size != count:
        raise UserError(f"{frames.filename} is shorter than its header says: rerun with force_recompute=True")
    return data.reshape(stop - start, *frames.shape[1:])


def file_hash(path):
    """Hex SHA-256 of the file's bytes (identifies a video's content, not its name).

    Remembered per (path, size, mtime) in this process: a first extraction asks twice (cache lookup, then the
    cache it writes), and the app asks on every run.
    """
    st = os.stat(path)
    return _file_hash(os.path.realpath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _file_hash(path, size, mtime_ns, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_model_complexity(complexity):
    """MediaPipe 0.10.21 ships only the 'full' model; 0 and 2 would be downloaded: refuse offline."""
    if complexity == 1:
        return
    import importlib.util

    spec = importlib.util.find_spec("mediapipe")
    model = Path(spec.origin).parent / "modules" / "pose_landmark" / _MODEL_FILES[complexity]
    if not model.exists():
        raise UserError(
            f"model_complexity {complexity} needs {model.name}, which mediapipe downloads from the internet "
            f"and is not present at {model.parent}; use --model_complexity 1 (the model shipped in the wheel)"
        )


# --------------------------------------------------------------------------- extraction


def default_video():
    """The built-in sample's target clip (rendered on first use)."""
    import Mannequin  # only needed when no video is given

    return Mannequin.ensure_sample("target")


def make_pose(mode=POSE_MODE, model_complexity=MODEL_COMPLEXITY):
    """A MediaPipe Pose tracker with the extraction's settings."""
    import mediapipe as mp

    return mp.solutions.pose.Pose(
        static_image_mode=mode == "static",
        model_complexity=model_complexity,
        min_detection_confidence=MIN_DETECTION_CONFIDENCE,
        min_tracking_confidence=MIN_TRACKING_CONFIDENCE,
    )


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence C++ writes to fd 2 (MediaPipe's start-up INFO/W0000 lines) for the block; Python's own are kept."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def detect_poses(images, mode=POSE_MODE, desc="MediaPipe"):
    """MediaPipe on square frames (N,S,S,3) uint8 BGR, in order -> (N,13,2) float32 joints in [0,1], NaN if none.

    The extraction's model and thresholds, so that generated and real frames are judged alike.
    """
    out = np.full((len(images), N_JOINTS, 2), np.nan, np.float32)
    with _quiet_native_stderr():
        pose = make_pose(mode)
    try:
        for i, img in enumerate(tqdm(images, desc=desc, unit="frame", leave=False)):
            # The graph logs its start-up lines during the first frame only.
            with _quiet_native_stderr() if i == 0 else contextlib.nullcontext():
                res = pose.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
            if res.pose_landmarks is not None:
                out[i] = Skeleton.from_mediapipe(res.pose_landmarks.landmark).xy
    finally:
        pose.close()
    return out


_progress = _stop = None  # per-worker shared progress counter and stop flag (set by the pool initializer)


def _exit_with_parent(parent):
    """Worker watchdog: a parent killed outright (SIGKILL) cannot shut its pool down, so the worker ends itself."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _init_worker(counter, stop, parent):
    """Pool initializer: share the progress counter and stop flag, silence MediaPipe/TFLite's C++ logging.

    Ctrl-C reaches the whole process group: the parent alone handles it (it sets `stop`), workers ignore it.
    """
    global _progress, _stop
    _progress, _stop = counter, stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    os.environ["GLOG_minloglevel"] = "2"
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # the worker's C++ chatter only; its Python exceptions reach the parent


def _extract_range(task):
    """Worker: frames [start, stop) of one video chunk -> part files; one tracker per process.

    Frames are appended to a raw file as they come (not kept, not memory-mapped): a worker's memory does not
    grow with the video's length.
    """
    video, start, stop, params, part_dir, wid = task
    step, size = params["frame_skip"], params["size"]
    first = start + (-start) % step  # first index in range that is a multiple of step
    n_max = max(0, (stop - first + step - 1) // step)
    skel = np.full((n_max, N_JOINTS, 3), np.nan, np.float32)
    index = np.zeros(n_max, np.int64)
    pose = make_pose(params["mode"], params["model_complexity"])
    n = 0
    with open(part_dir / f"frames-{wid}.raw", "wb") as frames:
        for i, frame in iter_frames(video, first, stop, step):
            if n >= n_max or (_stop is not None and _stop.value):
                break
            det = detect_image(frame)
            # Store from the already-downscaled image when it is still big enough: saves a costly resize.
            frames.write(square_frame(det if min(det.shape[:2]) >= size else frame, size).tobytes())
            index[n] = i
            res = pose.process(cv2.cvtColor(det, cv2.COLOR_BGR2RGB))
            if res.pose_landmarks is not None:
                s = Skeleton.from_mediapipe(res.pose_landmarks.landmark)
                skel[n, :, :2], skel[n, :, 2] = frame_to_square(s.xy, frame.shape), s.vis
            n += 1
            if _progress is not None:
                with _progress.get_lock():
                    _progress.value += 1
    pose.close()
    np.save(part_dir / f"skeletons-{wid}.npy", skel[:n])
    np.save(part_dir / f"index-{wid}.npy", index[:n])
    return n


def extract(video, params, workers=WORKERS, verbose=True, progress=None):
    """Run MediaPipe over a video in `workers` processes; write its cache atomically, return its dir.

    progress(done, total), if given, is called from this process as frames are done (the app's bar).
    """
    video = check_video_path(video)
    check_model_complexity(params["model_complexity"])
    n_video, fps, w, h = probe_video(video)
    digest = file_hash(video)
    cache = cache_dir_for(video, digest, params)
    step, size = params["frame_skip"], params["size"]
    n_keep = (n_video + step - 1) // step
    workers = max(1, min(workers, n_keep // MIN_FRAMES_PER_WORKER))
    bounds = np.linspace(0, n_video, workers + 1).round().astype(int)
    t0 = time.perf_counter()
    with atomic_path(cache) as tmp:
        tmp.mkdir(parents=True)
        tasks = [(str(video), int(bounds[k]), int(bounds[k + 1]), params, tmp, k) for k in range(workers)]
        ctx = multiprocessing.get_context("spawn")
        counter = ctx.Value("q", 0)  # frames done, over all workers
        stop = ctx.Value("b", 0)  # set on Ctrl-C / SIGTERM / an error here: the workers stop at their next frame
        bar = tqdm(total=n_keep, desc=f"extract {video.name}", unit="frame", disable=not verbose, leave=False)
        initargs = (counter, stop, os.getpid())
        with bar, ProcessPoolExecutor(workers, ctx, initializer=_init_worker, initargs=initargs) as pool:
            try:
                futures = [pool.submit(_extract_range, t) for t in tasks]
                while not all(f.done() for f in futures):
                    time.sleep(0.1)
                    bar.update(counter.value - bar.n)
                    if progress is not None:
                        progress(counter.value, n_keep)
                counts = [f.result() for f in futures]
                if progress is not None:
                    progress(counter.value, n_keep)
            except BrokenProcessPool:
                raise UserError(
                    f"an extraction worker died (out of memory, or killed) while reading {video}; nothing was "
                    "written: rerun, with --workers 1 if memory is short"
                ) from None
            except BaseException:
                stop.value = 1
                raise
            bar.update(counter.value - bar.n)
        n = sum(counts)
        if n == 0:
            raise UserError(f"no frames could be decoded from {video}: corrupt or truncated video")
        if n_keep - n > max(2, MAX_MISSING * n_keep):
            raise UserError(
                f"{video} is damaged: only {n} of the {n_keep} frames it declares could be decoded; re-encode it "
                f"(e.g. ffmpeg -i {shlex.quote(video.name)} -c:v libx264 fixed.mp4) or use an undamaged copy"
            )
        # Merge the per-worker parts into one memory-mappable file per array, streamed: bounded memory.
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
                  "shape": (n, size, size, 3)}  # fmt: skip
        skel, index = [], []
        with open(tmp / "frames.npy", "wb") as frames:
            np.lib.format.write_array_header_1_0(frames, header)
            for k in range(workers):
                with open(tmp / f"frames-{k}.raw", "rb") as part:
                    shutil.copyfileobj(part, frames, 1 << 22)
                skel.append(np.load(tmp / f"skeletons-{k}.npy", allow_pickle=False))
                index.append(np.load(tmp / f"index-{k}.npy", allow_pickle=False))
                for name in (f"frames-{k}.raw", f"skeletons-{k}.npy", f"index-{k}.npy"):
                    (tmp / name).unlink()
        skel, index = np.concatenate(skel), np.concatenate(index)
        detected = int(np.isfinite(skel[:, 0, 0]).sum())
        seconds = time.perf_counter() - t0
        if detected == 0:
            raise UserError(
                f"no person detected in any of the {n} frames of {video}: "
                "use a video with one person, whole body visible"
            )
        np.save(tmp / "skeletons.npy", skel)
        meta = {
            "version": CACHE_VERSION,
            "source": str(video),
            "sha256": digest,
            "video_frames": n_video,
            "video_fps": fps,
            "video_size": [w, h],
            "fps": fps / step,
            "params": params,
            "frame_indices": index.tolist(),
            "frames": n,
            "detected": detected,
            "workers": workers,
            "extract_seconds": round(seconds, 3),
            "versions": _versions(),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    if verbose:
        print(
            f"detected {detected}/{n} frames ({100 * detected / n:.1f}%) of {video.name} in {seconds:.1f} s: "
            f"{n / seconds:.1f} frames/s with {workers} worker{'s' * (workers > 1)} -> {cache}"
        )
        _report_gaps(np.isfinite(skel[:, 0, 0]), index)
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


def extraction_params(frame_skip=FRAME_SKIP, size=FRAME_SIZE, model_complexity=MODEL_COMPLEXITY, mode=POSE_MODE):
    """What a cache was extracted with (stored in meta.json; a mismatch means extracting again)."""
    return {
        "frame_skip": int(frame_skip),
        "size": int(size),
        "model_complexity": int(model_complexity),
        "mode": mode,
        "min_detection_confidence": MIN_DETECTION_CONFIDENCE,
        "min_tracking_confidence": MIN_TRACKING_CONFIDENCE,
    }


def cache_dir_for(video, digest, params):
    """data/cache/<stem>-<hash>[-k5][-s128][-static][-mc2]: non-default sampling gets a cache (and models) of its own.

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
        )
        if t != default
    )
    return CACHE_DIR / f"{video.stem}-{digest[:10]}{tag}"


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
    except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
        return f"is damaged ({type(e).__name__}: {str(e)[:80]})"
    if frames.dtype != np.uint8 or frames.shape != (n, size, size, 3):
        return f"is damaged (frames.npy holds {frames.dtype} {frames.shape}, meta.json says {n} frames of {size} px)"
    if skel.dtype != np.float32 or skel.shape != (n, N_JOINTS, 3):
        return f"is damaged (skeletons.npy holds {skel.dtype} {skel.shape}, expected ({n}, {N_JOINTS}, 3) float32)"
    return None


def load_cache(video, params, verbose=False):
    """(cache_dir, meta) if a valid cache for this video content and params exists, else (dir, None).

    An existing cache that cannot be used (other version or parameters, damaged files) is reported in one line
    when verbose; extracting again replaces it.
    """
    digest = file_hash(video)
    clean_stale_temps(CACHE_DIR)  # what a killed extraction left, and a cache caught mid-replacement put back
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
    ):
        self.video_path = check_video_path(video if video is not None else default_video())
        if frame_skip < 1:
            raise UserError(f"frame_skip must be >= 1, got {frame_skip}")
        params = extraction_params(frame_skip, size, model_complexity, mode)
        cache, meta = (None, None) if force else load_cache(self.video_path, params, verbose)
        if meta is None:
            cache = extract(self.video_path, params, workers, verbose, progress)
            meta = json.loads((cache / "meta.json").read_text())
        elif verbose:
            print(f"loaded {meta['detected']}/{meta['frames']} frames with a person from {cache}")
        self.cache_dir, self.meta = cache, meta
        self.fps = float(meta["fps"])
        try:
            self.frames_all = np.load(cache / "frames.npy", mmap_mode="r", allow_pickle=False)
            self.ske_all = np.load(cache / "skeletons.npy", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise UserError(f"cache {cache} is damaged ({e}); rerun with force_recompute=True") from None
        self.frame_indices = np.asarray(meta["frame_indices"], np.int64)
        self.valid = np.isfinite(self.ske_all[:, 0, 0])
        self.rows = np.flatnonzero(self.valid)  # (N,) cache rows (sampled frames) of the usable frames
        self._resized = {}

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

    def split(self, val_frac=VAL_FRAC, gap=VAL_GAP):
        """(train, val) positions: the last `val_frac` of the clip is one contiguous val block."""
        n = len(self)
        n_val = max(1, round(val_frac * n)) if n > 1 else 0
        n_train = max(0, n - n_val - gap)
        return np.arange(n_train), np.arange(n - n_val, n)

    def dataset(self, positions=None, size=64):
        """A PoseDataset over the given usable-frame positions (all by default), preloaded."""
        positions = np.arange(len(self)) if positions is None else np.asarray(positions)
        return PoseDataset(self.skeletons()[positions], self.frames(size)[positions], positions)

    def __repr__(self):
        return f"VideoSkeleton({self.video_path.name}: {len(self)}/{len(self.valid)} frames with a person)"


class PoseDataset:
    """Tensors preloaded once (no per-item I/O): skeleton maps, 26-vectors and target images.

    Items: (map (3,S,S) in [-1,1], vector (26,) in [-1,1], image (3,S,S) in [-1,1]); `batch(idx)`
    returns the same for a whole index tensor without Python-level per-item work.
    """

    def __init__(self, xy, images, positions):
        import torch

        size = images.shape[1]
        self.size = size
        self.positions = torch.as_tensor(np.asarray(positions))
        self.xy = torch.as_tensor(np.asarray(xy, np.float32))  # (N, 13, 2) in [0, 1]
        self.maps = torch.from_numpy(render_maps(xy, size)).permute(0, 3, 1, 2).contiguous()  # (N,3,S,S) uint8
        self.images = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()  # uint8

    def __len__(self):
        return len(self.images)

    def batch(self, idx):
        """(maps, vectors, images) for an index tensor, as float tensors in [-1, 1]."""
        maps = self.maps[idx].float() / 127.5 - 1.0  # (B, 3, S, S) in [-1, 1]
        vec = self.xy[idx].reshape(len(idx), -1) * 2.0 - 1.0  # (B, 26) in [-1, 1]
        img = self.images[idx].float() / 127.5 - 1.0  # (B, 3, S, S) in [-1, 1]
        return maps, vec, img

    def __getitem__(self, i):
        maps, vec, img = self.batch([i])
        return maps[0], vec[0], img[0]


# --------------------------------------------------------------------------- CLI


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
    p.add_argument("--preview", default=None, help="also write a PNG grid of frames with their skeletons")
    a = p.parse_args(argv)
    force = a.force or parse_bool(a.force_recompute)
    skip = a.frame_skip_pos if a.frame_skip_pos is not None else a.frame_skip
    vs = VideoSkeleton(a.video, force, skip, a.size, a.model_complexity, a.mode, max(1, a.workers))
    print(vs)
    if a.preview:
        write_preview(vs, a.preview)
        print(f"preview -> {a.preview}")


def write_preview(vs, path, n=8, size=128):
    """PNG grid of n evenly spaced usable frames with their skeletons drawn on."""
    picks = np.linspace(0, len(vs) - 1, n).round().astype(int)
    tiles = [vs.ske(i).draw(vs.frame(i, size)) for i in picks]
    write_png(path, np.concatenate(tiles, axis=1))


if __name__ == "__main__":
    run_cli(main)
