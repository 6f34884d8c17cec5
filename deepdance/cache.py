"""The VideoSkeleton class: a video's square frames and 13-joint skeletons, extracted once with MediaPipe in worker
processes and cached as .npy under data/cache/<stem>-<hash>/ (skeletons.npy (N, 13, 3): x, y in [0, 1] of the stored
square, visibility), with the train | selection | test split the trainers and Evaluate share. The command line, and
how the square is chosen, is VideoSkeleton.py's.
"""

import contextlib
import functools
import json
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

from deepdance.cli import UserError, pause_here
from deepdance.dataset import PoseDataset, Split
from deepdance.files import (
    DATA_DIR,
    atomic_path,
    check_writable,
    clean_stale_temps,
    short_name,
    signals_deferred,
    write_png,
)
from deepdance.pose import (
    MIN_DETECTION_CONFIDENCE,
    MIN_TRACKING_CONFIDENCE,
    MODEL_COMPLEXITY,
    POSE_MODE,
    _fit,
    _look_again,
    check_model_complexity,
    follow_one_person,
    make_pose,
    second_people,
)
from deepdance.skeleton import N_JOINTS, Skeleton
from deepdance.video import (
    _resized,
    center_square,
    check_video_path,
    cut_square,
    detect_image,
    detect_size,
    file_hash,
    frame_to_square,
    padding_of,
    person_square,
    read_rows,
    read_span,
    square_frame,
    video_info,
)

import cv2
import numpy as np
from tqdm import tqdm

CACHE_DIR = DATA_DIR / "cache"
CHECKPOINT_DIR = DATA_DIR / "checkpoints"
CACHE_VERSION = 2  # caches of another version are extracted again; this one stores person-centred squares ("crop"
# in meta.json), upright frames, times.npy and report.json
FRAME_SIZE = 256  # stored frame side (px)
FRAMING = "person"  # "person": one square per clip holding the whole body; "center": the course's centre crop
FRAMINGS = ("person", "center")
KEEP_BYTES = 1 << 30  # pass 1 keeps the frames MediaPipe saw (<= 640 px) on disk for pass 2 when they fit in this:
# reading them back costs little next to decoding the video a second time
LOOKS = 10  # frames per clip looked at twice: MediaPipe again with the tracked person masked out (someone else?),
LOOK_SIDE = 160  # and the whole frame kept small (px on its longer side) and grey for the report (did the camera move?)
FRAME_SKIP = 1  # keep every k-th frame
WORKERS = min(2, os.cpu_count() or 1)
MIN_FRAMES_PER_WORKER = 48  # below this a second process costs more (start-up) than it saves
TEST_FRAC = 0.15  # share of usable frames held out as the test block (the clip's end): what Evaluate reports
SELECT_FRAC = 0.10  # share held out just before it as the selection block: where the trainers pick best.pth (a
# model chosen on the block it is scored on reads optimistic)
BLOCK_GAP = 5  # frames dropped between two blocks so neighbouring (near-identical) frames cannot leak
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
MAX_MISSING = 0.05  # share of the frames a video declares that may fail to decode (containers misstate lengths by
# a frame or two; more means a damaged file, refused rather than silently cut short)
READ_CHUNK = 64  # cached frames read from disk at a time when streaming a whole clip (12 MB at 256 px)


# --------------------------------------------------------------------------- extraction


def default_video():
    """The built-in sample's target clip (rendered on first use)."""
    from deepdance import mannequin

    return mannequin.ensure_sample("target")


_progress = _stop = None  # per-worker shared progress counter and stop flag (set by the pool initializer)


def _exit_with_parent(parent):
    """Worker watchdog: a parent killed outright (SIGKILL) cannot shut its pool down, so the worker ends itself."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _worker_error_path(parent_pid):
    """Where an extraction worker that could not start leaves its reason for the parent (one line of text)."""
    return CACHE_DIR / f".worker-error-{parent_pid}"


def _stop_if_reimported(video):
    """In a worker process re-running its parent's main script (spawn imports that script to start each extraction
    worker), a VideoSkeleton made at the script's top level would wait forever for the cache lock its parent holds.
    Leave the reason for the parent (_worker_error_path) and end this worker: the parent reports it in one line."""
    if not getattr(multiprocessing.current_process(), "_inheriting", False):  # not starting as a spawned worker
        return
    main = sys.modules.get("__mp_main__", sys.modules.get("__main__"))  # the script being re-run (runpy's name)
    script = Path(getattr(main, "__file__", None) or "the script").name
    line = (f"{script} makes a VideoSkeleton when it is imported, and extracting {Path(video).name} starts worker "
            f"processes that import {script} again (Python's spawn start): put {script}'s code under "
            'if __name__ == "__main__":')  # fmt: skip
    with contextlib.suppress(OSError), atomic_path(_worker_error_path(os.getppid())) as tmp:
        tmp.write_text(line)
    os._exit(1)


def _unspawnable_main():
    """Why spawned extraction workers cannot start here (one line), or None. Python's spawn starts each worker by
    running the caller's main script again from its file (multiprocessing's preparation data names it); a script
    read from stdin (`python - < script.py`) has no such file, and the workers would die before saying anything."""
    from multiprocessing import spawn

    try:
        path = spawn.get_preparation_data("extract").get("init_main_from_path")
    except RuntimeError:
        return None  # this process is a worker starting up itself: _stop_if_reimported handles that
    if path is None or Path(path).is_file():
        return None
    return (f"extracting poses starts worker processes that run the calling script again from its file (Python's "
            f"spawn), and it has none ({Path(path).name}: a script read from stdin?): save the script to a file and "
            "run that")  # fmt: skip


def _init_worker(counter, stop, parent, ready):
    """Pool initializer: share the progress counter and stop flag, silence MediaPipe/TFLite's C++ logging, then
    count this worker in `ready` (the parent holds signals until every worker is this far: _run_pool).

    Ctrl-C reaches the whole process group: the parent alone handles it (it sets `stop`), workers ignore it.
    """
    global _progress, _stop
    _progress, _stop = counter, stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    os.environ["GLOG_minloglevel"] = "2"
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # the worker's C++ chatter only; its Python exceptions reach the parent
    with ready.get_lock():
        ready.value += 1


def _tick():
    """One more frame done by this worker (the parent's progress bar reads the shared counter)."""
    if _progress is not None:
        with _progress.get_lock():
            _progress.value += 1


def _stopping():
    return _stop is not None and bool(_stop.value)


def _detect_span(task):
    """Worker, pass 1: MediaPipe over one span of a video (read_span) -> part files; one tracker per process.

    Joints stay in [0, 1] of the whole upright frame: the clip's square is chosen once every frame is seen. With a
    square already known (task["crop"], framing "center") the stored frames are written now, appended to a raw file
    as they come (not kept, not memory-mapped): a worker's memory does not grow with the video's length. On every
    task["look_every"]-th frame, the whole frame is kept small and grey, and, if a person was found, MediaPipe
    looks again with that person masked out (someone else?): what the report needs to tell a still camera.
    """
    part, wid, params, crop = Path(task["part"]), task["wid"], task["params"], task["crop"]
    size, every = params["size"], task["look_every"]
    skel, pos, times, looked, others, greys = [], [], [], [], [], []
    counts = {}
    pose, second = make_pose(params["mode"], params["model_complexity"]), None
    frames = open(part / f"frames-{wid}.raw", "wb") if crop is not None else contextlib.nullcontext()
    seen = open(part / f"seen-{wid}.raw", "wb") if task["keep"] else contextlib.nullcontext()  # for pass 2
    try:
        with frames, seen:
            for p, t, frame in read_span(task["video"], counts=counts, **task["span"]):
                if _stopping():
                    break
                if not skel and wid == 0:
                    np.save(part / "thumb.npy", _resized(frame, *_fit(frame.shape, 320)))  # the report's picture
                det = detect_image(frame)
                if task["keep"]:
                    seen.write(np.ascontiguousarray(det).tobytes())
                if crop is not None:
                    # Cut from the already-downscaled image when it is still big enough: saves a costly resize.
                    k = det.shape[1] / frame.shape[1]
                    big = crop[2] * k >= size
                    frames.write(cut_square(det if big else frame, [round(v * k) for v in crop] if big else crop, size)
                                 .tobytes())  # fmt: skip
                row = np.full((N_JOINTS, 3), np.nan, np.float32)
                res = pose.process(cv2.cvtColor(det, cv2.COLOR_BGR2RGB))
                if res.pose_landmarks is not None:
                    s = Skeleton.from_mediapipe(res.pose_landmarks.landmark)
                    row[:, :2], row[:, 2] = s.xy, s.vis
                if len(skel) % every == every // 2:
                    looked.append(len(skel))
                    greys.append(cv2.cvtColor(_resized(det, *_fit(det.shape, LOOK_SIDE)), cv2.COLOR_BGR2GRAY))
                    other = np.full((N_JOINTS, 3), np.nan, np.float32)
                    if np.isfinite(row[0, 0]):
                        second = second or make_pose("static", params["model_complexity"])
                        other = _look_again(second, det, row)
                    others.append(other)
                skel.append(row)
                pos.append(p)
                times.append(t)
                _tick()
    finally:
        pose.close()
        if second is not None:
            second.close()
    np.save(part / f"skeletons-{wid}.npy", np.array(skel, np.float32).reshape(-1, N_JOINTS, 3))
    np.save(part / f"index-{wid}.npy", np.array(pos, np.int64))
    np.save(part / f"times-{wid}.npy", np.array(times, np.float64))
    np.save(part / f"looked-{wid}.npy", np.array(looked, np.int64))
    np.save(part / f"others-{wid}.npy", np.array(others, np.float32).reshape(-1, N_JOINTS, 3))
    np.save(part / f"greys-{wid}.npy", np.array(greys, np.uint8))  # (K, h, w): the whole frame, small and grey
    return {"kept": len(skel), "seen": counts.get("seen", 0), "backwards": counts.get("backwards", False)}


def _store_span(task):
    """Worker, pass 2: the same span's kept frames cut to the clip's square (task["crop"]), appended to a raw part
    file; read back from what pass 1 kept (task["kept"] pictures of task["seen_size"]) or, if None, decoded again."""
    part, wid, crop, size = Path(task["part"]), task["wid"], task["crop"], task["params"]["size"]
    n = 0
    seen = part / f"seen-{wid}.raw"
    if task["kept"] is None:
        pictures = (frame for _, _, frame in read_span(task["video"], **task["span"]))
    else:
        w, h = task["seen_size"]
        k = w / task["video_size"][0]
        crop = [round(v * k) for v in crop]  # the square in the kept pictures' pixels

        def read_kept():
            with open(seen, "rb") as f:
                for _ in range(task["kept"]):
                    yield np.frombuffer(f.read(w * h * 3), np.uint8).reshape(h, w, 3)

        pictures = read_kept()
    with open(part / f"frames-{wid}.raw", "wb") as frames:
        for picture in pictures:
            if _stopping():
                break
            frames.write(cut_square(picture, crop, size).tobytes())
            n += 1
            _tick()
    seen.unlink(missing_ok=True)
    return n


def _run_pool(pool, fn, tasks, *, counter, bar, ready, workers, progress=None, total=None):
    """fn over tasks in the pool, the bar (and progress(done, total)) following the workers' shared frame counter."""
    # A signal while the pool starts up is held until every worker has started (_init_worker counted it in `ready`):
    # interrupted half-way, the executor cannot shut down ("cannot join thread before it is started", or a hang),
    # and a worker still importing prints an EOFError when its pipe closes. `kill <pid>` reaches the parent alone,
    # and another of its threads may take it, so the mask below cannot hold it: Python's handlers are deferred.
    with signals_deferred():
        # Workers are started with Ctrl-C blocked (a child keeps its parent's signal mask): a Ctrl-C to the group
        # while they are still importing would print their tracebacks; the parent alone handles it (sets `stop`).
        deaf = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            futures = [pool.submit(fn, t) for t in tasks]
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, deaf)
        pause_here("extract:starting")  # tests signal the process here: the pool half started
        while ready.value < min(workers, len(futures)) and not any(f.done() for f in futures):
            time.sleep(0.02)  # a dead worker breaks the pool: its futures are done, and this ends
    while not all(f.done() for f in futures):
        time.sleep(0.1)
        if counter.value:
            pause_here("extract:running")  # tests interrupt the extraction here, while the workers read frames
        bar.update(counter.value - bar.n)
        if progress is not None:
            progress(counter.value, total)
    results = [f.result() for f in futures]
    bar.update(counter.value - bar.n)
    if progress is not None:
        progress(counter.value, total)
    return results


def _spans(info, step, workers):
    """read_span's span arguments for each worker: consecutive slot ranges starting on multiples of step, the last
    one open (to the end, whatever length the file declares); a file without timestamps is read in one span."""
    starts = np.linspace(0, info["frames"], (workers if info["timed"] else 1) + 1)[:-1]
    firsts = sorted({int(round(b / step)) * step for b in starts})
    base = {"fps": info["fps"], "step": step, "timed": info["timed"], "t0": info["t0"]}
    return [{**base, "first": a, "stop": b} for a, b in zip(firsts, [*firsts[1:], None], strict=True)]


def _merge_parts(tmp, found):
    """Pass 1's per-worker part files, joined and removed: {"skeletons": (N,13,3) in [0,1] of the frame, "index":
    (N,) frame indices, "times": (N,) s, "looked": (K,) rows looked at again, "others": (K,13,3) who else was found
    there (NaN: nobody), "greys": (K,h,w) uint8, the whole frame small and grey}."""
    names = ("skeletons", "index", "times", "looked", "others", "greys")
    parts = [{k: np.load(tmp / f"{k}-{w}.npy", allow_pickle=False) for k in names} for w in range(len(found))]
    for w in range(len(found)):
        for k in names:
            (tmp / f"{k}-{w}.npy").unlink()
    first_index = np.cumsum([0] + [r["seen"] for r in found[:-1]])  # spans meet exactly: frame counts add up
    first_row = np.cumsum([0] + [r["kept"] for r in found[:-1]])
    out = {k: np.concatenate([p[k] for p in parts]) for k in ("skeletons", "times", "others")}
    out["index"] = np.concatenate([p["index"] + i for p, i in zip(parts, first_index, strict=True)])
    out["looked"] = np.concatenate([p["looked"] + r for p, r in zip(parts, first_row, strict=True)])
    greys = [p["greys"] for p in parts if p["greys"].ndim == 3]  # a worker that looked at none saved (0,)
    out["greys"] = np.concatenate(greys) if greys else np.zeros((0, 1, 1), np.uint8)
    return out


def _check_room(video, *, n_keep, size, seen_size, framing):
    """Whether pass 1 keeps the frames MediaPipe saw on disk for pass 2 (framing "person", when they fit in
    KEEP_BYTES); UserError now, before any decoding, if CACHE_DIR has no room for the cache (and those frames)."""
    dw, dh = seen_size
    # The frames' part files and the merged frames.npy exist side by side for a moment: about 1.5x the cache.
    keep = framing == "person" and n_keep * dw * dh * 3 <= KEEP_BYTES
    need = int(1.6 * n_keep * size * size * 3) + keep * n_keep * dw * dh * 3
    check_writable(CACHE_DIR, need_bytes=need, what=f"the pose cache of {video.name} (frames at {size} px)")
    return keep


def _detect_pass(run, *, video, info, params, tmp, crop, keep, n_keep, workers, progress, counter, bar):
    """Pass 1: _detect_span over the clip's spans, one per worker -> (tasks, their results, info).

    Timestamps that go backwards (a badly joined file) make the spans overlap: the clip is then read again in
    order, counting frames, and the info returned says so ("timed": False).
    """
    step = params["frame_skip"]
    while True:
        tasks = [
            {"video": str(video), "span": span, "params": params, "part": str(tmp), "wid": k,
             "crop": crop, "look_every": max(1, n_keep // LOOKS), "keep": keep}
            for k, span in enumerate(_spans(info, step, workers))
        ]  # fmt: skip
        found = run(_detect_span, tasks, progress=progress, total=n_keep)
        if not any(r["backwards"] for r in found):
            return tasks, found, info
        info = {**info, "timed": False}
        for f in tmp.iterdir():
            f.unlink()
        counter.value = 0
        bar.reset()


def _check_decoded(video, *, n, seen, declared):
    """UserError when no frame, or too few of the `declared` ones (MAX_MISSING), could be decoded."""
    if n == 0:
        raise UserError(f"no frames could be decoded from {video}: corrupt or truncated video")
    if declared - seen > max(2, MAX_MISSING * declared):
        raise UserError(
            f"{video} is damaged: only {seen} of the {declared} frames it declares could be decoded; "
            f"re-encode it (e.g. ffmpeg -i {shlex.quote(video.name)} -c:v libx264 fixed.mp4) or use an "
            "undamaged copy"
        )


def _follow_person(video, parts, width, height):
    """Keep one person: rows where the tracker switched to someone else become NaN in parts["skeletons"] (in
    place). Returns {"switched": (N,) bool, "switches", "second_person", "detected": rows with the person};
    UserError when nobody was found at all."""
    skel = parts["skeletons"]
    switched, switches = follow_one_person(skel, parts["times"], width, height)
    skel[switched] = np.nan  # someone else: kept as frames without the person
    n_second = second_people(parts["others"], skel, parts["looked"], width, height)
    detected = int(np.isfinite(skel[:, 0, 0]).sum())
    if detected == 0:
        raise UserError(
            f"no person detected in any of the {len(skel)} frames of {video}: "
            "use a video with one person, whole body visible"
        )
    return {"switched": switched, "switches": switches, "second_person": n_second, "detected": detected}


def _store_pass(run, *, video, tasks, found, n, crop, keep, seen_size, video_size, size, counter, bar):
    """Pass 2: _store_span cuts each worker's frames to the clip's square (crop, (x0, y0, side) px) at size px;
    UserError if the video gives other frames than the n of pass 1 this time."""
    counter.value = 0
    bar.reset(total=n)
    bar.set_description(f"store {video.name}")
    # The kept pictures serve if the square still has `size` px in them (else: decode again).
    kept = keep and crop[2] * seen_size[0] / video_size[0] >= min(size, crop[2])
    again = [
        {**t, "crop": crop, "kept": r["kept"] if kept else None, "seen_size": seen_size, "video_size": video_size}
        for t, r in zip(tasks, found, strict=True)
    ]
    stored = run(_store_span, again)
    if stored != [r["kept"] for r in found]:
        raise UserError(
            f"{video} gave other frames when read a second time ({sum(stored)} instead of {n}); "
            f"re-encode it (e.g. ffmpeg -i {shlex.quote(video.name)} -c:v libx264 fixed.mp4)"
        )


def _worker_death(video):
    """The UserError for a pool whose workers are all gone: the reason a worker left behind, else the usual one."""
    reason = _worker_error_path(os.getpid())
    if reason.exists():  # a worker that re-ran our caller's main script (_stop_if_reimported)
        line = reason.read_text()
        reason.unlink(missing_ok=True)
        return UserError(line)
    unspawnable = _unspawnable_main()  # the main script's file gone since extract() looked
    if unspawnable:
        return UserError(unspawnable)
    return UserError(
        f"an extraction worker died (out of memory, or killed) while reading {video}; nothing was "
        "written: rerun, with --workers 1 if memory is short"
    )


def _run_passes(video, params, *, info, tmp, workers, keep, n_keep, seen_size, progress, verbose):
    """Both passes in a pool of `workers` processes writing their parts into tmp -> (info, parts, crop, people,
    number of spans): info as pass 1 read the clip, parts as _merge_parts, crop (x0, y0, side) px of the upright
    video, people as _follow_person. Ctrl-C or an error here stops the workers at their next frame."""
    w, h = info["width"], info["height"]
    ctx = multiprocessing.get_context("spawn")
    counter = ctx.Value("q", 0)  # frames done, over all workers
    stop = ctx.Value("b", 0)  # set on Ctrl-C / SIGTERM / an error here: the workers stop at their next frame
    bar = tqdm(total=n_keep, desc=f"extract {video.name}", unit="frame", disable=not verbose, leave=False)
    ready = ctx.Value("i", 0)  # workers started (_init_worker done)
    initargs = (counter, stop, os.getpid(), ready)
    crop = center_square(w, h) if params["framing"] == "center" else None
    with bar, ProcessPoolExecutor(workers, ctx, initializer=_init_worker, initargs=initargs) as pool:
        run = functools.partial(_run_pool, pool, counter=counter, bar=bar, ready=ready, workers=workers)
        try:
            tasks, found, info = _detect_pass(
                run, video=video, info=info, params=params, tmp=tmp, crop=crop, keep=keep, n_keep=n_keep,
                workers=workers, progress=progress, counter=counter, bar=bar,
            )  # fmt: skip
            parts = _merge_parts(tmp, found)
            n = len(parts["index"])
            _check_decoded(video, n=n, seen=sum(r["seen"] for r in found), declared=info["frames"])
            people = _follow_person(video, parts, w, h)
            if crop is None:
                crop = person_square(parts["skeletons"], w, h)
                _store_pass(
                    run, video=video, tasks=tasks, found=found, n=n, crop=crop, keep=keep, seen_size=seen_size,
                    video_size=(w, h), size=params["size"], counter=counter, bar=bar,
                )  # fmt: skip
        except BrokenProcessPool:
            pool.shutdown(wait=True)  # every worker gone: the reason one left is whole, no other replaces it later
            raise _worker_death(video) from None
        except BaseException:
            stop.value = 1
            raise
    return info, parts, crop, people, len(tasks)


def _join_frames(tmp, n_parts, *, n, size):
    """The workers' raw frame parts streamed into one memory-mappable tmp/frames.npy, (n, size, size, 3) uint8
    (bounded memory), each part removed once copied."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
              "shape": (n, size, size, 3)}  # fmt: skip
    with open(tmp / "frames.npy", "wb") as frames:
        np.lib.format.write_array_header_1_0(frames, header)
        for k in range(n_parts):
            with open(tmp / f"frames-{k}.raw", "rb") as part:
                shutil.copyfileobj(part, frames, 1 << 22)
            (tmp / f"frames-{k}.raw").unlink()


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
    unspawnable = _unspawnable_main()  # said before any work: the workers would die unexplained
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
        info, parts, crop, people, n_spans = _run_passes(
            video, params, info=info, tmp=tmp, workers=workers, keep=keep, n_keep=n_keep, seen_size=seen_size,
            progress=progress, verbose=verbose,
        )  # fmt: skip
        skel, index, times = parts["skeletons"], parts["index"], parts["times"]
        n, detected = len(index), people["detected"]
        _join_frames(tmp, n_spans, n=n, size=size)
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
    uncached video extract it once, the second waiting and then loading what the first wrote."""
    from filelock import FileLock, Timeout

    check_writable(CACHE_DIR, what="pose caches")  # DEEPDANCE_DATA on a file, a read-only place: said now
    cache = cache_dir_for(video, file_hash(video), params)
    lock = FileLock(CACHE_DIR / f".{cache.name}.lock", is_singleton=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if verbose:
            print(f"waiting for another extraction of {video.name} to finish")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


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
        _stop_if_reimported(self.video_path)
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
