"""DeepDance in the browser: pick a source video, a target and a generator, press Run, watch the target dance.

    streamlit run app.py                # then open the local URL it prints (http://localhost:8501)

The page runs DanceDemo's pipeline (DanceDemo.transfer): source poses by VideoSkeleton (MediaPipe, cached),
missing poses filled in, One-Euro smoothing, global pose normalisation, a generator from the gen_type table,
and an H.264 mp4 of three panels (source + skeleton | normalised skeleton | generated target) that plays in
the page. Targets are the videos already processed (DATA_DIR/cache) plus the built-in sample; generators
without a trained checkpoint are listed with the command that trains them. Uploads are checked by content
(container signature, then one frame decoded), stored under a generated name in a temp dir, and removed,
pose cache included, once the run is over.
"""

import os

# Before torch loads (trained gen_types import it): passive OpenMP waiting, as in the trainers (GenVanillaNN.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import functools  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import NamedTuple  # noqa: E402

import DanceDemo  # noqa: E402
from GenTypes import GEN_TYPES, SIZE, load_generator, train_command  # noqa: E402
from Skeleton import DATA_DIR, ROOT, UserError  # noqa: E402
from VideoSkeleton import (  # noqa: E402
    CACHE_DIR,
    CHECKPOINT_DIR,
    FRAME_SIZE,
    FRAME_SKIP,
    MODEL_COMPLEXITY,
    POSE_MODE,
    VIDEO_EXTS,
    VideoSkeleton,
    check_video_path,
    probe_video,
)

MAX_UPLOAD_MB = 200  # bigger uploads are refused (st.file_uploader enforces it in the browser, save_upload here)
STRIDE = 2  # default: every 2nd source frame (half the MediaPipe time on a CPU; 12.5 fps from 25 fps footage)
MAX_STRIDE = 10
SNIFF_BYTES = 64  # header bytes read to recognise a container (WebM's DocType sits within the first ~40)
CONTAINERS = {"mp4": ".mp4", "mov": ".mov", "webm": ".webm", "mkv": ".mkv", "avi": ".avi", "mpeg": ".mpg"}
QUICKTIME_ATOMS = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")  # old .mov files start without 'ftyp'
UPLOAD_PREFIX = "deepdance-upload-"  # temp dir of one upload; its file is named upload-<random hex><ext>
SOURCE_KINDS = ("built-in sample source", "a video under data/", "a video path", "upload a video")
PANELS = "source + its skeleton | normalised skeleton | generated target"


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


def display_name(name):
    """A user-given file name made safe to show in the page (markdown): `name` with odd characters replaced."""
    safe = re.sub(r"[^\w.\- ]+", "_", Path(str(name)).name)[:60].strip()
    return f"`{safe or 'upload'}`"


def save_upload(data, name="upload", folder=None, max_mb=MAX_UPLOAD_MB):
    """Check an uploaded video and store it: bytes -> Path of a new file under a new temp dir.

    Checks the size, the container by its first bytes (never the name) and that OpenCV decodes a frame. The
    file is named upload-<random hex><ext of the container found>; the caller removes path.parent when done.
    UserError (one line for the page) when a check fails; nothing is left on disk then.
    """
    shown = display_name(name)
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
    folder = Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX, dir=folder))
    path = folder / f"upload-{secrets.token_hex(8)}{CONTAINERS[kind]}"
    try:
        with open(path, "xb") as f:
            f.write(data)
        probe_video(path)
    except UserError:
        shutil.rmtree(folder, ignore_errors=True)
        raise UserError(
            f"{shown} looks like {kind.upper()} but no frame can be decoded from it: corrupt, truncated or an "
            "unsupported codec"
        ) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return path


# --------------------------------------------------------------------------- what can be picked


class Target(NamedTuple):
    label: str
    video: Path | None  # None: the built-in sample target (rendered on demand)
    params: dict | None  # extraction params of its cache (None: VideoSkeleton's defaults)


def shown_path(path):
    """A path as users type it: relative to the project root when inside it or beside it (../shared/...)."""
    rel = os.path.relpath(path, ROOT)
    return str(path) if rel.startswith(f"..{os.sep}..") or rel == ".." else rel


def processed_targets():
    """The built-in sample target first, then every cached video whose file is still there, newest first."""
    import Mannequin  # paths only: nothing is rendered here

    sample, sample_source = Mannequin.clip_path("target").resolve(), Mannequin.clip_path("source").resolve()
    targets = {sample: Target("built-in sample target", None, None)}
    metas = sorted(CACHE_DIR.glob("*/meta.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for meta_path in metas:
        try:
            meta = json.loads(meta_path.read_text())
            video, params, found = Path(meta["source"]).resolve(), dict(meta["params"]), int(meta["detected"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a cache being written or damaged: VideoSkeleton itself reports those
        if video == sample:
            targets[sample] = Target(targets[sample].label, None, params)
        elif video not in targets and video != sample_source and video.is_file():
            skip = params.get("frame_skip", 1)
            every = f", 1 frame in {skip}" if skip > 1 else ""
            label = f"{video.name}: {found} frames with a person{every} ({shown_path(video.parent)}/)"
            targets[video] = Target(label, video, params)
    return list(targets.values())


def data_videos():
    """Videos under DATA_DIR (caches, checkpoints and hidden folders aside), sorted."""
    found = []
    for folder, dirs, files in os.walk(DATA_DIR):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and here / d not in (CACHE_DIR, CHECKPOINT_DIR))
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
    modules = sorted({spec.module for spec in GEN_TYPES.values()})
    present = tuple((m, (ROOT / f"{m}.py").stat().st_mtime_ns if (ROOT / f"{m}.py").exists() else 0) for m in modules)
    return tuple(sorted(files)), present


def try_load_generator(gen_type, vs, coherent=False):
    """(generator, None) when gen_type loads for this target, else (None, the one-line reason)."""
    try:
        return load_generator(vs, gen_type, size=SIZE, **({"coherent": True} if coherent else {})), None
    except UserError as e:
        return None, str(e)
    except Exception as e:  # a Gen* module being written must not take the whole page down
        return None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def training_summaries(key):
    """{gen_type: summary} for each of a target's model folders with a best.pth (the one at SIZE px preferred).

    A summary holds the folder's name, the best epoch, its validation metrics, training time and the
    loss-curve PNGs (loss*.png: VanillaNN writes loss.png, the GANs loss_G.png and loss_D.png) and samples.png.
    """
    root = CHECKPOINT_DIR / key
    out = {}
    bests = sorted(root.glob("*/best.pth")) if root.is_dir() else []
    if not bests:
        return out
    import torch

    for best in bests:
        try:
            ckpt = torch.load(best, map_location="cpu", weights_only=True)
        except Exception:
            continue  # damaged or being replaced: loading the generator reports it
        gen_type = ckpt.get("gen_type") if isinstance(ckpt, dict) else None
        if gen_type not in GEN_TYPES or (gen_type in out and ckpt.get("size") != SIZE):
            continue
        folder = best.parent
        out[gen_type] = {
            "name": folder.name,
            "epoch": ckpt.get("epoch"),
            "size": ckpt.get("size"),
            "seconds": ckpt.get("train_seconds"),
            "val": {k: float(v) for k, v in (ckpt.get("val") or {}).items() if isinstance(v, (int, float))},
            "loss_pngs": [str(p) for p in sorted(folder.glob("loss*.png"))],
            "samples_png": str(folder / "samples.png") if (folder / "samples.png").exists() else None,
        }
    return out


# --------------------------------------------------------------------------- the work


def run_transfer(
    source, target_vs, gen, label, *, stride=STRIDE, smooth=True, normalize=True, progress=None, forget=False
):
    """Motion transfer of `source` (a video path; None = the built-in sample source) onto gen's target.

    Returns (mp4 bytes, stats). progress(fraction, text) follows the work; forget=True also deletes the
    source's pose cache afterwards (uploads: nothing of them is kept). No output file is left behind.
    """
    report = progress or (lambda fraction, text: None)
    t0 = time.perf_counter()
    if source is None:
        import Mannequin

        report(0.0, "rendering the built-in sample source (first run only)")
        source = Mannequin.ensure_sample("source")
    n_video = probe_video(source)[0]
    report(0.0, f"source poses: MediaPipe on {-(-n_video // stride)} frames (cached after the first run)")
    # The bar: source poses up to one half (skipped when cached), rendering the other half.
    source_vs = VideoSkeleton(
        source,
        frame_skip=stride,
        verbose=False,
        progress=lambda done, total: report(0.5 * done / total, f"source poses: MediaPipe on {done}/{total} frames"),
    )
    t_poses = time.perf_counter() - t0
    try:
        with tempfile.TemporaryDirectory(prefix="deepdance-app-") as tmp:
            out = Path(tmp) / "result.mp4"
            stats = DanceDemo.transfer(
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
    finally:
        if forget:
            shutil.rmtree(source_vs.cache_dir, ignore_errors=True)
    return data, {**stats, "poses": t_poses, "seconds": time.perf_counter() - t0}


def describe(stats):
    """One line about a finished run."""
    missing = f", {stats['missing']} without a person filled in" if stats["missing"] else ""
    return (
        f"{stats['frames']} frames{missing} in {stats['seconds']:.1f} s (source poses {stats['poses']:.1f} s, "
        f"generate {stats['generate']:.1f} s, draw {stats['draw']:.1f} s, encode {stats['encode']:.1f} s)"
    )


# --------------------------------------------------------------------------- the page


@functools.cache
def cached_loaders():
    """The page's Streamlit caches (made once per process: Streamlit sessions are threads sharing them)."""
    import streamlit as st

    @st.cache_resource(show_spinner=False, max_entries=4)
    def load_target(video, stamp, params_json):
        """The target's VideoSkeleton (from its cache; the sample is rendered and extracted on first use)."""
        p = json.loads(params_json) if params_json else {}
        return VideoSkeleton(
            video,
            frame_skip=p.get("frame_skip", FRAME_SKIP),
            size=p.get("size", FRAME_SIZE),
            model_complexity=p.get("model_complexity", MODEL_COMPLEXITY),
            mode=p.get("mode", POSE_MODE),
            verbose=False,
        )

    @st.cache_resource(show_spinner=False, max_entries=32)
    def load_gen(key, gen_type, coherent, stamp, _vs):
        """A ready generator (or why not), kept across reruns; a new or retrained checkpoint changes `stamp`."""
        return try_load_generator(gen_type, _vs, coherent)

    @st.cache_data(show_spinner=False, max_entries=16)
    def summaries(key, stamp):
        return training_summaries(key)

    return load_target, load_gen, summaries


def target_section(st, side, load_target, load_gen):
    """Sidebar: the target and the generator -> (target, target_vs, ckpt_stamp, gen_type, coherent, unavailable)."""
    targets = processed_targets()
    target = side.selectbox("Target (who appears)", targets, format_func=lambda t: t.label, key="target")
    video = None if target.video is None else str(target.video)
    try:
        stamp = target.video.stat().st_mtime_ns if target.video else 0
        first = " (first use: rendering and extracting it, about a minute)" if target.params is None else ""
        with st.spinner(f"loading the target's poses{first}..."):
            target_vs = load_target(video, stamp, json.dumps(target.params, sort_keys=True) if target.params else "")
    except UserError as e:
        st.error(f"target {target.label}: {e}")
        st.stop()
    ckpt_stamp = checkpoint_stamp(target_vs.key)
    with st.spinner("finding the trained generators..."):
        status = {g: load_gen(target_vs.key, g, False, ckpt_stamp, target_vs) for g in GEN_TYPES}
    ready = [g for g, (gen, _) in status.items() if gen is not None]
    unavailable = {g: why for g, (gen, why) in status.items() if gen is None}
    gen_type = side.selectbox(
        "Generator",
        ready,
        format_func=lambda g: f"{g}: {GEN_TYPES[g].description}",
        key="gen_type",
        help="Only generators with a trained checkpoint for this target; the others are listed below the result.",
    )
    coherent = gen_type == 1 and side.checkbox(
        "temporally coherent (Viterbi)", key="coherent", help="gen_type 1: fewer jumps between look-alike frames"
    )
    return target, target_vs, ckpt_stamp, gen_type, coherent, unavailable


def source_section(st, side):
    """Sidebar: the source -> (source path or None, upload or None, its error or None, a hint or None)."""
    kind = side.radio("Source (the moves)", SOURCE_KINDS, key="source_kind")
    source, upload, source_error, hint = None, None, None, None
    if kind == SOURCE_KINDS[1]:
        videos = data_videos()
        if videos:
            source = side.selectbox("Video", videos, format_func=shown_path, key="data_video")
        else:
            hint = f"no video under {shown_path(DATA_DIR)}/ yet: pick another kind of source"
    elif kind == SOURCE_KINDS[2]:
        text = side.text_input("Video path", key="video_path", placeholder="../shared/data/taichi2.mp4")
        if text.strip():
            try:
                source = resolve_path(text)
            except UserError as e:
                source_error = str(e)
        else:
            hint = "type the path of a video (relative to the project folder, or absolute)"
    elif kind == SOURCE_KINDS[3]:
        # No `type=` filter: that would judge by the name (and fail with a traceback); save_upload reads the content.
        upload = side.file_uploader(
            f"Video (up to {MAX_UPLOAD_MB} MB)",
            max_upload_size=MAX_UPLOAD_MB,
            key="upload",
        )
        if upload is None:
            hint = f"upload a video (MP4/MOV, WebM/MKV, AVI or MPEG, up to {MAX_UPLOAD_MB} MB)"
        else:
            checked = st.session_state.get("upload_checked")
            if checked is None or checked[0] != upload.file_id:  # check each upload once, not on every rerun
                try:
                    shutil.rmtree(save_upload(upload.getbuffer(), upload.name).parent, ignore_errors=True)
                    checked = (upload.file_id, None)
                except UserError as e:
                    checked = (upload.file_id, str(e))
                st.session_state["upload_checked"] = checked
            source_error = checked[1]
    return source, upload, source_error, hint


def run_section(st, *, target, target_vs, gen, gen_type, coherent, source, upload, stride, smooth, normalize):
    """The run behind the Run button: progress bar, errors in the page, the result kept in the session."""
    label = f"generated: gen_type {gen_type}" + (" coherent" if coherent else "")
    bar = st.progress(0.0, text="starting")
    folder = None
    try:
        if upload is not None:
            source = save_upload(upload.getbuffer(), upload.name)
            folder = source.parent
        data, stats = run_transfer(
            source,
            target_vs,
            gen,
            label,
            stride=int(stride),
            smooth=smooth,
            normalize=normalize,
            progress=lambda f, text: bar.progress(min(1.0, max(0.0, f)), text=text),
            forget=upload is not None,
        )
    except UserError as e:
        bar.empty()
        st.error(str(e))
    except OSError as e:  # a full or read-only temp folder, a video that went away mid-run
        bar.empty()
        st.error(f"the run failed: {e.strerror or e}")
    else:
        bar.empty()
        name = re.sub(r"[^\w.-]+", "_", target_vs.video_path.stem)
        st.session_state["result"] = {
            "video": data,
            "file_name": f"deepdance-{name}-gen{gen_type}.mp4",
            "what": f"{target.label} | gen_type {gen_type}{' coherent' if coherent else ''} | stride {stride}"
            f"{'' if normalize else ' | no normalisation'}{'' if smooth else ' | no smoothing'}",
            "stats": describe(stats),
        }
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def result_section(st):
    """The last result of this session: the video, what it is, the download button."""
    result = st.session_state.get("result")
    if result:
        st.subheader("Result")
        st.video(result["video"], format="video/mp4")
        st.caption(f"{PANELS}. {result['what']}: {result['stats']}")
        st.download_button(
            "Download the video (mp4)", result["video"], result["file_name"], "video/mp4", on_click="ignore"
        )
    else:
        st.info(f"Pick a target, a generator and a source on the left, then press Run. The video shows: {PANELS}.")


def models_section(st, *, trained, unavailable, target_vs, gen_type):
    """Training summaries of the trained generators, and the ones still to train with their commands."""
    if trained:
        st.subheader("Training summary")
        for g, s in sorted(trained.items()):
            minutes = f", {s['seconds'] / 60:.1f} min of training" if s["seconds"] else ""
            with st.expander(
                f"gen_type {g}: {GEN_TYPES[g].description}: {s['name']}, best epoch {s['epoch']}{minutes}",
                expanded=g == gen_type,
            ):
                if s["val"]:
                    cols = st.columns(len(s["val"]))
                    for col, (k, v) in zip(cols, s["val"].items(), strict=True):
                        col.metric(f"val {k}", f"{v:.4g}")
                for png in s["loss_pngs"]:
                    st.image(png, caption=f"{Path(png).name}: losses and validation metrics per epoch")
                if s["samples_png"]:
                    st.image(s["samples_png"], caption="validation frames: skeleton / generated / real")
    if unavailable:
        with st.expander(f"Generators not available for this target ({len(unavailable)})"):
            for g, why in unavailable.items():
                command = train_command(g, target_vs.video_path)
                if command is None or g in trained:  # nothing to train, or trained: it failed for another reason
                    st.markdown(f"**{g}** {GEN_TYPES[g].description}: cannot be loaded")
                else:
                    st.markdown(f"**{g}** {GEN_TYPES[g].description}: not trained yet: `{command}`")
                st.caption(why)


def main():
    import streamlit as st

    load_target, load_gen, summaries = cached_loaders()
    st.set_page_config(page_title="DeepDance", layout="wide")
    st.title("DeepDance")
    st.caption("Motion transfer: the target person performs the source video's moves (Everybody Dance Now, 64 px).")

    side = st.sidebar
    target, target_vs, ckpt_stamp, gen_type, coherent, unavailable = target_section(st, side, load_target, load_gen)
    source, upload, source_error, hint = source_section(st, side)
    stride = side.number_input(
        "Stride (use 1 source frame in k)", 1, MAX_STRIDE, STRIDE, key="stride", help="higher: faster, choppier"
    )
    normalize = side.checkbox("Pose normalisation onto the target", True, key="normalize")
    smooth = side.checkbox("Smooth the source keypoints (One-Euro)", True, key="smooth")
    blocked = gen_type is None or source_error is not None or hint is not None
    run = side.button("Run", type="primary", key="run", disabled=blocked)

    if source_error:
        st.error(source_error)
    elif hint:
        st.info(hint)
    if gen_type is None:
        st.error("no generator can be loaded for this target (see the list below)")
    if run:
        gen = load_gen(target_vs.key, gen_type, coherent, ckpt_stamp, target_vs)[0]
        run_section(st, target=target, target_vs=target_vs, gen=gen, gen_type=gen_type, coherent=coherent,
                    source=source, upload=upload, stride=stride, smooth=smooth, normalize=normalize)  # fmt: skip
    result_section(st)
    trained = summaries(target_vs.key, ckpt_stamp)
    models_section(st, trained=trained, unavailable=unavailable, target_vs=target_vs, gen_type=gen_type)


if __name__ == "__main__":
    main()
