"""The pose extraction's worker processes: the pool and its start-up under signals, the two passes each worker runs
over its span of the video, and the joining of what they leave in the cache's temporary folder.

    run_passes      both passes in a pool of spawned workers -> the parts, the clip's square, who was found
    join_frames     the workers' raw frame parts -> one memory-mappable frames.npy
    spans           where each worker's span of the video starts
    unspawnable_main, stop_if_reimported, worker_error_path
                    why spawned workers could not start, said in one line by the parent

deepdance.cache (the VideoSkeleton, the cache's folder, lock and meta.json) drives it; nothing here imports it.
"""

import contextlib
import functools
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
from deepdance.files import atomic_path, signals_deferred
from deepdance.pose import _fit, _look_again, follow_one_person, make_pose, second_people
from deepdance.skeleton import N_JOINTS, Skeleton
from deepdance.video import _resized, center_square, cut_square, detect_image, person_square, read_span

import cv2
import numpy as np
from tqdm import tqdm

LOOKS = 10  # frames per clip looked at twice: MediaPipe again with the tracked person masked out (someone else?),
LOOK_SIDE = 160  # and the whole frame kept small (px on its longer side) and grey for the report (did the camera move?)
MAX_MISSING = 0.05  # share of the frames a video declares that may fail to decode (containers misstate lengths by
# a frame or two; more means a damaged file, refused rather than silently cut short)


_progress = _stop = None  # per-worker shared progress counter and stop flag (set by the pool initializer)


def _exit_with_parent(parent):
    """Worker watchdog: a parent killed outright (SIGKILL) cannot shut its pool down, so the worker ends itself."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def worker_error_path(folder, parent_pid):
    """Where an extraction worker that could not start leaves its reason for the parent (one line of text): in
    `folder`, the caches' folder, which parent and worker both know without being told."""
    return Path(folder) / f".worker-error-{parent_pid}"


def stop_if_reimported(video, folder):
    """In a worker process re-running its parent's main script (spawn imports that script to start each extraction
    worker), a VideoSkeleton made at the script's top level would wait forever for the cache lock its parent holds.
    Leave the reason for the parent (worker_error_path in `folder`) and end this worker: the parent reports it in one
    line."""
    if not getattr(multiprocessing.current_process(), "_inheriting", False):  # not starting as a spawned worker
        return
    main = sys.modules.get("__mp_main__", sys.modules.get("__main__"))  # the script being re-run (runpy's name)
    script = Path(getattr(main, "__file__", None) or "the script").name
    line = (f"{script} makes a VideoSkeleton when it is imported, and extracting {Path(video).name} starts worker "
            f"processes that import {script} again (Python's spawn start): put {script}'s code under "
            'if __name__ == "__main__":')  # fmt: skip
    with contextlib.suppress(OSError), atomic_path(worker_error_path(folder, os.getppid())) as tmp:
        tmp.write_text(line)
    os._exit(1)


def unspawnable_main():
    """Why spawned extraction workers cannot start here (one line), or None. Python's spawn starts each worker by
    running the caller's main script again from its file (multiprocessing's preparation data names it); a script
    read from stdin (`python - < script.py`) has no such file, and the workers would die before saying anything."""
    from multiprocessing import spawn

    try:
        path = spawn.get_preparation_data("extract").get("init_main_from_path")
    except RuntimeError:
        return None  # this process is a worker starting up itself: stop_if_reimported handles that
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


def spans(info, step, workers):
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
            for k, span in enumerate(spans(info, step, workers))
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


def _worker_death(video, folder):
    """The UserError for a pool whose workers are all gone: the reason a worker left behind in `folder`, else the
    usual one."""
    reason = worker_error_path(folder, os.getpid())
    if reason.exists():  # a worker that re-ran our caller's main script (stop_if_reimported)
        line = reason.read_text()
        reason.unlink(missing_ok=True)
        return UserError(line)
    unspawnable = unspawnable_main()  # the main script's file gone since extract() looked
    if unspawnable:
        return UserError(unspawnable)
    return UserError(
        f"an extraction worker died (out of memory, or killed) while reading {video}; nothing was "
        "written: rerun, with --workers 1 if memory is short"
    )


def run_passes(video, params, *, info, tmp, cache_root, workers, keep, n_keep, seen_size, progress, verbose):
    """Both passes in a pool of `workers` processes writing their parts into tmp -> (info, parts, crop, people,
    number of spans): info as pass 1 read the clip, parts as _merge_parts, crop (x0, y0, side) px of the upright
    video, people as _follow_person. Ctrl-C or an error here stops the workers at their next frame. cache_root:
    the caches' folder, where a worker that cannot start leaves its reason (worker_error_path)."""
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
            raise _worker_death(video, cache_root) from None
        except BaseException:
            stop.value = 1
            raise
    return info, parts, crop, people, len(tasks)


def join_frames(tmp, n_parts, *, n, size):
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
