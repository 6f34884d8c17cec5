"""DeepDance in the browser: pick a source video, a target and a generator, press Run, watch the target dance.

    streamlit run app.py                # then open the local URL it prints (http://localhost:8501)

The page runs transfer's pipeline (transfer.transfer): source poses by VideoSkeleton (MediaPipe, cached),
missing poses filled in, One-Euro smoothing, global pose normalisation, a generator from the gen_type table,
and an H.264 mp4 that plays in the page, in the view chosen (transfer.VIEWS: the generated target alone, source |
generated, or three panels: source + skeleton | normalised pose | generated target), with a still strip under it.

- Targets are the videos already processed (DATA_DIR/cache) plus the built-in sample; "Add a target" extracts a
  new one from an upload or a path and shows the commands that train its generators. Generators are listed per
  trained size; untrained ones with their training command, damaged ones with the command that retrains them.
- A target is opened in a framing (VideoSkeleton's --framing: "person" by default, or "center"), one of those it is
  extracted in, each shown with what is trained on it; the generators listed and run are that framing's (its cache
  has its own key, and so its own checkpoints). "Extract in framing" extracts another framing as adding a target does.
- Long work (a run, adding a target) goes to a thread of its own (Job): Streamlit stops a script run whenever the
  page reruns, so work done in the script was cancelled silently by any click. The settings are locked while a job
  runs and the page says what is running; Cancel stops it.
- Uploads are checked by content (container signature, one frame decoded, the packets read through: a file cut
  short is refused at once) and stored under their content hash, so a second run on the same file reuses its poses;
  the KEEP_UPLOADS most recent are kept, with their caches. 'Your uploads' says what is kept and the space it takes;
  'Forget my uploads' deletes it (uploaded sources and targets, their caches and the models trained on them).
- A job's id is in the page's address (?job=...): a reloaded tab (a new session) takes the job back, running or done.
"""

import functools
import json
import re
from pathlib import Path
from typing import NamedTuple

from deepdance import transfer
from deepdance.appbackend import (
    PREVIEW_FRAMES,
    STRIDE,
    Target,
    add_target,
    checkpoint_stamp,
    data_videos,
    describe_run,
    describe_timing,
    detected_preview,
    extracted_preview,
    framing_states,
    generator_states,
    is_extracted,
    named,
    processed_targets,
    report_lines,
    resolve_path,
    run_transfer,
    shown_path,
    target_report,
    training_summaries,
    try_load_generator,
    vs_preview,
    with_data_dir,
)
from deepdance.cache import FRAME_SIZE, FRAME_SKIP, FRAMING, FRAMINGS, VideoSkeleton
from deepdance.cli import UserError
from deepdance.files import DATA_DIR
from deepdance.gentypes import GEN_TYPES, SIZE, train_command
from deepdance.jobs import Job
from deepdance.pose import MODEL_COMPLEXITY, POSE_MODE
from deepdance.uploads import (
    KEEP_UPLOADS,
    MAX_UPLOAD_MB,
    TARGET_DIR,
    UPLOAD_DIR,
    display_name,
    forget_uploads,
    kept_uploads,
    shown_bytes,
    store_upload,
    video_summary,
)

MAX_STRIDE = 10
SOURCE_KINDS = ("built-in sample source", "a video under data/", "a video path", "upload a video")
TARGET_FROM = ("upload a video", "a video path on this machine")
FRAMING_HELP = (
    "the target's square: 'person' holds the whole body in every frame (the scripts' default), 'center' is the "
    "course's centre crop. Each framing has a pose cache and trained generators of its own (--framing in the scripts)"
)
PANELS = {view: " | ".join(names) for view, names in transfer.VIEWS.items()}  # what draw_panels writes, per view
# The view's choices, simplest first; the default is the demo's (DanceDemo.py's --view).
VIEW_LABELS = {"generated": "generated only", "side": "source | generated", "three": "three panels"}
VIEW_HELP = (
    "what the result video shows: the generated target alone; the source as filmed beside it, to compare the moves; "
    "or three panels, source + its skeleton | normalised pose | generated target. A strip of a few of its frames comes "
    "with it, under the video"
)
JOB_POLL_S = 0.5  # how often the page redraws a running job's progress bar
TOO_BIG = (
    f"Up to {MAX_UPLOAD_MB} MB. A bigger file is refused by the browser before it is sent (its name turns red "
    "under the drop zone): shorten or shrink it first, e.g. `ffmpeg -i big.mp4 -t 120 -vf scale=-2:720 small.mp4`, "
    "or, when the file is on this machine, give its path instead."
)


# --------------------------------------------------------------------------- the page: caches and jobs


@functools.cache
def cached_loaders():
    """The page's Streamlit caches (made once per process: Streamlit sessions are threads sharing them)."""
    import streamlit as st

    @st.cache_resource(show_spinner=False, max_entries=4)
    def load_target(video, stamp, params_json):
        """The target's VideoSkeleton (from its cache; the sample is rendered and extracted on first use)."""
        p = json.loads(params_json) if params_json else {}
        # The cache's own framing when it records one (VideoSkeleton versions that frame the person): another value
        # would extract the target again.
        framing = {"framing": p["framing"]} if "framing" in p else {}
        return VideoSkeleton(
            video,
            frame_skip=p.get("frame_skip", FRAME_SKIP),
            size=p.get("size", FRAME_SIZE),
            model_complexity=p.get("model_complexity", MODEL_COMPLEXITY),
            mode=p.get("mode", POSE_MODE),
            verbose=False,
            **framing,
        )

    @st.cache_resource(show_spinner=False, max_entries=48)
    def load_gen(key, gen_type, size, coherent, stamp, _vs):
        """A ready generator (or why not), kept across reruns; a new or retrained checkpoint changes `stamp`."""
        return try_load_generator(gen_type, _vs, size=size, coherent=coherent)

    @st.cache_data(show_spinner=False, max_entries=16)
    def summaries(key, stamp):
        return training_summaries(key)

    @st.cache_data(show_spinner=False, max_entries=16)
    def target_strip(key, _vs):
        return vs_preview(_vs)

    @st.cache_data(show_spinner=False, max_entries=16)
    def source_strip(path, mtime_ns, stride, extracted):
        """(strip, where its poses come from): the pose cache once extracted at this stride (`extracted`: a run
        since made one), else MediaPipe on a few frames (cached apart: it does not depend on the stride)."""
        strip = extracted_preview(Path(path), stride) if extracted else None
        if strip is not None:
            return strip, "its pose cache"
        return detected_strip(path, mtime_ns), f"MediaPipe on {PREVIEW_FRAMES} frames (the run extracts them all)"

    @st.cache_data(show_spinner=False, max_entries=16)
    def detected_strip(path, mtime_ns):
        return detected_preview(Path(path))

    return load_target, load_gen, summaries, target_strip, source_strip


@functools.cache
def job_panel():
    """The running job's progress bar and Cancel button, redrawn every JOB_POLL_S (a fragment: the rest of the page
    is not rerun); once the job is done, the whole page reruns to show its result and unlock the settings."""
    import streamlit as st

    @st.fragment(run_every=JOB_POLL_S)
    def panel():
        job = st.session_state.get("job")
        if job is None:
            return
        if job.finished.is_set():
            st.rerun()
        fraction, text = job.state()
        st.progress(fraction, text=text)
        st.button("Cancel", key="cancel", on_click=job.cancel, help="stops the work at its next step; nothing is kept")

    return panel


def reattach_job(st):
    """A reloaded tab is a new session: it takes back the job its address names (?job=<id>), still running (its
    progress, the settings locked, Cancel) or done (its result), instead of coming back "Ready" on defaults."""
    if st.session_state.get("reattach_checked"):
        return
    st.session_state["reattach_checked"] = True
    job = Job.find(st.query_params.get("job", ""))
    if job is not None and st.session_state.get("job") is None:
        st.session_state["job"], st.session_state["reattached"] = job, True


def collect_job(st):
    """A finished job's result into the session: the result, or the error (the previous result kept, labelled)."""
    job = st.session_state.get("job")
    if job is None or not job.finished.is_set():
        return
    st.session_state["job"] = None
    if job.error is None and job.kind == "run":
        st.session_state["result"] = job.result
    elif job.error is None:
        st.session_state["added"] = {**job.result, "origin": job.origin}
        st.session_state["select_target"] = job.result["video"], job.result["framing"]
    st.session_state["last_job"] = {"kind": job.kind, "what": job.what, "error": job.error, "cancelled": job.cancelled}


def request_job(kind, framing=None):
    """on_click of Run / Extract: recorded in the session before the script runs, so the settings render locked at
    once and a click is not lost when the page reruns meanwhile. framing: the one 'Extract in framing' asks for."""
    import streamlit as st

    st.session_state["requested"] = kind
    st.session_state["extract_framing"] = framing


def apply_pending_selection(st, targets):
    """After a target was added: select it in the framing it was extracted in (before the select box and the radio
    exist: Streamlit allows it only then)."""
    pending = st.session_state.pop("select_target", None)
    if pending is None:
        return
    video, framing = pending
    match = [t for t in targets if str(t.video_path()) == video]
    if match:
        st.session_state["target"] = match[0]
        st.session_state["framing"] = framing
    st.session_state["added"]["selected"] = bool(match)  # the built-in sample source, say, is never a target


# --------------------------------------------------------------------------- the page: sections


class Choice(NamedTuple):
    """What the side panel picked."""

    target: Target
    framing: str  # the target's, FRAMINGS
    target_vs: VideoSkeleton
    ckpt_stamp: tuple
    states: list  # [Availability]
    gen_type: int | None
    size: int
    coherent: bool
    source: Path | None  # None: the built-in sample source (or nothing picked yet: see hint / source_error)
    source_shown: str
    source_error: str | None
    hint: str | None
    stride: int
    normalize: bool
    smooth: bool
    view: str  # transfer.VIEWS


def framing_section(side, target, *, busy):
    """Side panel: the target's framing, among those it is extracted in, each with what is trained on it; a button
    for each framing it is not extracted in yet (a job, as adding a target) -> the framing."""
    framings, said = target.framings(), framing_states(target)
    framing = side.radio(
        "Framing", framings, index=framings.index(FRAMING) if FRAMING in framings else 0, key="framing",
        captions=[said[f] for f in framings], horizontal=True, disabled=busy, help=FRAMING_HELP,
    )  # fmt: skip
    for other in (f for f in FRAMINGS if f not in framings):
        side.button(f"Extract in framing {other}", key=f"extract_{other}", disabled=busy, on_click=request_job,
                    args=("framing", other), help=f"its poses in framing {other}, under 'Add a target'")  # fmt: skip
    return framing


def target_section(st, side, *, load_target, load_gen, busy):
    """Side panel: the target, its framing and the generator -> (target, framing, target_vs, ckpt_stamp, states,
    gen_type, size, coherent)."""
    targets = processed_targets()
    apply_pending_selection(st, targets)
    chosen = st.session_state.get("target")
    fresh = [t for t in targets if chosen is not None and t.video == chosen.video]
    if fresh and fresh[0] != chosen:  # the select box keeps the Target it was given: its framings may have grown since
        st.session_state["target"] = fresh[0]
    target = side.selectbox(
        "Target (who appears)", targets, format_func=lambda t: t.label, key="target", disabled=busy,
        help="the processed videos; add your own under 'Add a target' on the right",
    )  # fmt: skip
    side.markdown(f"{target.label}: {target.details}" if target.details else target.label)
    framing = framing_section(side, target, busy=busy)
    video, params = None if target.video is None else str(target.video), target.params(framing)
    try:
        stamp = target.video.stat().st_mtime_ns if target.video else 0
        first = " (first use: rendering and extracting it, about a minute)" if params is None else ""
        with st.spinner(f"loading the target's poses{first}..."):
            target_vs = load_target(video, stamp, json.dumps(params, sort_keys=True) if params else "")
    except (UserError, OSError) as e:  # its cache or video went bad since it was listed: the other targets remain
        st.error(f"target {target.label}: {e}")
        st.stop()
    if params is None and not st.session_state.get("relisted"):
        # Its first use just extracted it: list it again, so the framing says what is trained, not "on first use".
        st.session_state["relisted"] = True
        st.rerun()
    ckpt_stamp = checkpoint_stamp(target_vs.key)
    with st.spinner("finding the trained generators..."):
        states = generator_states(target_vs, lambda g, s: load_gen(target_vs.key, g, s, False, ckpt_stamp, target_vs))
    ready = sorted({a.gen_type for a in states if a.state == "ready"})
    # A radio, not a select box: its labels wrap instead of being cut off.
    gen_type = side.radio(
        "Generator", ready, format_func=lambda g: f"{g}: {GEN_TYPES[g].description}", key="gen_type", disabled=busy,
        help="the generators trained for this target; the others are listed under 'Generators' on the right",
    )  # fmt: skip
    sizes = [a.size for a in states if a.gen_type == gen_type and a.state == "ready"]
    if len(sizes) > 1:
        size = side.radio("Size (px)", sizes, key="size", horizontal=True, disabled=busy,
                          help="the sizes this generator was trained at")  # fmt: skip
    else:
        size = sizes[0] if sizes else SIZE
    coherent = gen_type == 1 and side.checkbox(
        "temporally coherent (Viterbi)", key="coherent", disabled=busy,
        help="gen_type 1: fewer jumps between look-alike frames",
    )  # fmt: skip
    return target, framing, target_vs, ckpt_stamp, states, gen_type, size, coherent


def checked_upload(st, upload, *, folder, keep_name, keep):
    """An upload checked and stored once per file (not on every rerun) -> (path or None, message, error or None)."""
    memo_key = f"stored:{folder}"
    memo = st.session_state.get(memo_key)
    if memo is None or memo[0] != upload.file_id or (memo[1] is not None and not Path(memo[1]).is_file()):
        shown = display_name(upload.name)
        try:
            path = store_upload(upload.getbuffer(), upload.name, folder=folder, keep_name=keep_name, keep=keep)
            memo = (upload.file_id, str(path), f"{shown}: {video_summary(path)}", None)
        except UserError as e:
            memo = (upload.file_id, None, None, str(e))
        except OSError as e:
            memo = (upload.file_id, None, None, f"{shown} cannot be stored: {e.strerror or e}")
        st.session_state[memo_key] = memo
    return (Path(memo[1]) if memo[1] else None), memo[2], memo[3]


def source_section(st, side, *, busy):
    """Side panel: the source -> (source path or None, its name for messages, its error or None, a hint or None)."""
    kind = side.radio("Source (the moves)", SOURCE_KINDS, key="source_kind", disabled=busy)
    source, shown, source_error, hint = None, "the built-in sample source", None, None
    if kind == SOURCE_KINDS[1]:
        videos = data_videos()
        if videos:
            source = side.selectbox("Video", videos, format_func=shown_path, key="data_video", disabled=busy)
            shown = f"`{shown_path(source)}`"
        else:
            hint = f"no video under {shown_path(DATA_DIR)}/ yet: pick another kind of source"
    elif kind == SOURCE_KINDS[2]:
        text = side.text_input("Video path", key="video_path", placeholder="../shared/data/taichi2.mp4", disabled=busy)
        if text.strip():
            shown = display_name(text.strip())
            try:
                source = resolve_path(text)
            except UserError as e:
                source_error = str(e)
        else:
            hint = "type the path of a video (relative to the project folder, or absolute) in the side panel"
    elif kind == SOURCE_KINDS[3]:
        # No `type=` filter: that would judge by the name (and fail with a traceback); store_upload reads the content.
        upload = side.file_uploader(
            f"Video (up to {MAX_UPLOAD_MB} MB)",
            max_upload_size=MAX_UPLOAD_MB,
            key=upload_key(st, "upload"),
            disabled=busy,
        )
        side.markdown(TOO_BIG)
        if upload is None:
            hint = (
                f"upload a video (MP4/MOV, WebM/MKV, AVI or MPEG) in the side panel: up to {MAX_UPLOAD_MB} MB, a "
                "bigger file is refused by the browser (its name turns red; the side panel says what to do)"
            )
        else:
            shown = display_name(upload.name)
            source, message, source_error = checked_upload(
                st, upload, folder=UPLOAD_DIR, keep_name=False, keep=KEEP_UPLOADS
            )
            if message:
                side.markdown(f"{message}. Kept in `{shown_path(UPLOAD_DIR)}/` with its poses for the next runs: "
                              "see 'Your uploads' at the bottom of the page")  # fmt: skip
    if source is not None and source_error is None and kind != SOURCE_KINDS[3]:
        try:
            side.markdown(f"{shown}: {video_summary(source)}")
        except UserError as e:  # a file under data/ that is not a video after all
            source_error = named(e, source, shown)
    return source, shown, source_error, hint


def side_panel(st, *, load_target, load_gen, busy):
    """All the settings, in the side panel (locked while a job runs) -> Choice."""
    side = st.sidebar
    side.header("Settings")
    target, framing, target_vs, ckpt_stamp, states, gen_type, size, coherent = target_section(
        st, side, load_target=load_target, load_gen=load_gen, busy=busy
    )
    # Beside the generator, not at the bottom: what the result looks like is chosen with what makes it.
    view = side.radio("View (the result video)", list(VIEW_LABELS), index=list(VIEW_LABELS).index(transfer.VIEW),
                      format_func=VIEW_LABELS.get, key="view", horizontal=True, disabled=busy,
                      help=VIEW_HELP)  # fmt: skip
    source, shown, source_error, hint = source_section(st, side, busy=busy)
    stride = side.number_input(
        "Stride (use 1 source frame in k)", 1, MAX_STRIDE, STRIDE, key="stride", disabled=busy,
        help="higher: faster, choppier",
    )  # fmt: skip
    normalize = side.checkbox("Pose normalisation onto the target", True, key="normalize", disabled=busy)
    smooth = side.checkbox("Smooth the source keypoints (One-Euro)", True, key="smooth", disabled=busy)
    return Choice(target, framing, target_vs, ckpt_stamp, states, gen_type, size, coherent, source, shown,
                  source_error, hint, int(stride), normalize, smooth, view)  # fmt: skip


def in_framing(framing):
    """' in framing center' for a framing other than the default, as the training commands add --framing."""
    return "" if framing == FRAMING else f" in framing {framing}"


def run_what(c):
    """One line naming a run's settings: shown while it runs, and under its video."""
    return (
        f"{c.source_shown} onto {c.target.label}{in_framing(c.framing)} | gen_type {c.gen_type} at {c.size} px"
        f"{' coherent' if c.coherent else ''} | stride {c.stride}"
        f"{'' if c.normalize else ' | no normalisation'}{'' if c.smooth else ' | no smoothing'}"
        f"{'' if c.view == transfer.VIEW else f' | view: {VIEW_LABELS[c.view]}'}"
    )


def start_run(c, load_gen):
    """The Job behind Run, with the settings of the click."""
    gen = load_gen(c.target_vs.key, c.gen_type, c.size, c.coherent, c.ckpt_stamp, c.target_vs)[0]
    label = f"generated: gen_type {c.gen_type}" + (" coherent" if c.coherent else "")
    name = re.sub(r"[^\w.-]+", "_", c.target_vs.video_path.stem)

    def work(progress):
        data, stats = run_transfer(c.source, c.target_vs, gen, label, stride=c.stride, smooth=c.smooth,
                                   normalize=c.normalize, progress=progress, shown=c.source_shown,
                                   view=c.view)  # fmt: skip
        stem = f"deepdance-{name}-gen{c.gen_type}{'' if c.view == transfer.VIEW else f'-{c.view}'}"
        return {"video": data, "file_name": f"{stem}.mp4", "what": run_what(c), "stats": describe_run(stats),
                "timing": describe_timing(stats), "coverage": stats["coverage"], "view": c.view,
                "stills": stats["stills"], "stills_name": f"{stem}-stills.png"}  # fmt: skip

    return Job("run", run_what(c), work).start()


def start_add_target(st, target=None):
    """The Job behind 'Extract the poses' (Add a target), from that section's upload or path and framing; None if none
    given. With `target`: the one behind 'Extract in framing', that target in the framing it asked for."""
    framing = st.session_state.get("target_framing", FRAMING)
    if target is not None:
        framing, shown = st.session_state["extract_framing"], f"`{target.label}`"

        def locate(progress):
            if target.video is None:  # the sample: rendered, in case its clip went since
                from deepdance import mannequin

                return mannequin.ensure_sample("target")
            return target.video
    elif st.session_state.get("target_from", TARGET_FROM[0]) == TARGET_FROM[0]:
        upload = st.session_state.get(upload_key(st, "target_upload"))
        if upload is None:
            return None
        shown, data, name = display_name(upload.name), bytes(upload.getbuffer()), upload.name

        def locate(progress):
            progress(0.0, f"storing {shown}")
            return store_upload(data, name, folder=TARGET_DIR, keep_name=True, keep=None)
    else:
        text = (st.session_state.get("target_path") or "").strip()
        if not text:
            return None
        shown = display_name(text)

        def locate(progress):
            return resolve_path(text)

    def work(progress):
        return add_target(locate(progress), shown=shown, framing=framing, progress=progress)

    origin = "target" if target is None else "framing"
    return Job("target", f"adding the target {shown}{in_framing(framing)}", work, origin=origin).start()


def run_section(st, c, *, busy):
    """The top of the page: Run (visible without scrolling on any screen), what it will run or is running, the
    progress of a running job and what the last one came to."""
    blocked = c.gen_type is None or c.source_error is not None or c.hint is not None
    left, right = st.columns([1, 7], vertical_alignment="center")
    left.button("Run", type="primary", key="run", disabled=busy or blocked, on_click=request_job, args=("run",))
    job = st.session_state.get("job")
    with right:
        if job is not None:
            where = " (its progress bar is under 'Add a target', below)" if job.origin == "target" else ""
            again = " This tab was reloaded meanwhile: it went on." if st.session_state.get("reattached") else ""
            st.markdown(f"**Running**: {job.what}{where}. The settings are locked until it ends (or Cancel).{again}")
        elif c.source_error:
            st.error(c.source_error)
        elif c.gen_type is None:
            st.error("no generator can be loaded for this target: see 'Generators' below")
        elif c.hint:
            st.info(c.hint)
        else:
            st.markdown(f"**Ready**: {run_what(c)}. Settings: the side panel (on a phone: **»** at the top left).")
    if job is not None and job.origin != "target":  # a run, or an extraction asked for in the side panel: here
        job_panel()()
    last = st.session_state.get("last_job")
    if last and last["cancelled"]:
        st.warning(f"Cancelled: {last['what']}. Nothing of it was kept; the settings are unlocked.")
    elif last and last["error"]:
        st.error(f"{'The run' if last['kind'] == 'run' else 'Adding the target'} failed: {last['error']}")
    added = st.session_state.get("added")
    if last and not last["error"] and added and added.get("origin") == "framing":  # asked for up here: said here
        st.success(added_line(added) + " Its report and training commands: under 'Add a target', below.")


def added_line(added):
    """What adding a target (or extracting another framing) came to, in one line."""
    selected = (
        " It is now the selected target."
        if added.get("selected")
        else " It is not in the target list: the built-in sample source stays a source."
    )
    return (
        f"Added {added['shown']}: {added['detected']} of {added['frames']} frames with a person, framing "
        f"{added['framing']}, cache `{shown_path(added['cache_dir'])}/`.{selected}"
    )


def result_section(st):
    """The last result of this session: the video, what it is, the download button. After a failed or cancelled
    run it stays, labelled as the previous result with its own settings."""
    result = st.session_state.get("result")
    if not result:
        return
    last = st.session_state.get("last_job") or {}
    previous = last.get("kind") == "run" and last.get("error")
    head = "**Previous result**, made by an earlier run" if previous else "**Result**"
    # The download button beside what the video is: with the video below, all of it fits on a laptop screen.
    text, button = st.columns([5, 1], vertical_alignment="center")
    n = len(result.get("coverage") or [])
    below = f" **{n} coverage warning{'s' * (n > 1)}** under the video." if n else ""
    text.markdown(f"{head}: {result['what']}: {result['stats']}.{below}")
    button.download_button("Download (mp4)", result["video"], result["file_name"], "video/mp4", on_click="ignore")
    # Its own width (256 px per panel of its view): sharp, not scaled up.
    st.video(result["video"], format="video/mp4", width=len(transfer.VIEWS[result["view"]]) * transfer.PANEL)
    timing = f" Time: {result['timing']}." if result.get("timing") else ""
    one = len(transfer.VIEWS[result["view"]]) == 1
    st.markdown(f"The panel{'' if one else 's'}: {PANELS[result['view']]}.{timing}")
    coverage_summary(st, result.get("coverage") or [])
    stills_strip(st, result)


def stills_strip(st, result):
    """A few frames of the result, evenly spread, in its view (a PNG, as DanceDemo's --stills), with its download:
    under the video, so the video stays where Run left it."""
    st.image(result["stills"], caption=f"{transfer.STILLS} frames of the result, evenly spread over it ("
             f"{PANELS[result['view']]})", width="content")  # fmt: skip
    st.download_button("Download the stills (PNG)", result["stills"], result["stills_name"], "image/png",
                       key="stills_download", on_click="ignore")  # fmt: skip


def coverage_summary(st, lines):
    """Source poses the target never made, as one collapsed line under the video: real footage has several, and a
    box each pushed the video out of view."""
    if not lines:
        return
    n = len(lines)
    label = f":material/warning: {n} coverage warning{'s' * (n > 1)}: the target never made some of the source's poses"
    with st.expander(label, expanded=False, key="coverage"):
        st.markdown("\n".join(f"- {line}" for line in lines))
        st.markdown("A target filmed in more varied poses covers them (docs/poses.md: *Filming your own target*).")


def preview_section(st, c, *, target_strip, source_strip):
    """A few frames of the chosen target and source with their skeletons, before running (on demand: MediaPipe on
    an unextracted source takes seconds)."""
    box = st.expander("Preview: target and source frames with their skeletons", expanded=True, key="preview",
                      on_change="rerun")  # fmt: skip
    if not box.open:
        return
    with box:
        n = min(PREVIEW_FRAMES, len(c.target_vs))
        shown = f"target: {c.target.label}, {n} of its {len(c.target_vs)} frames with a person"
        st.image(target_strip(c.target_vs.key, c.target_vs), channels="BGR", caption=shown)
        if c.source_error or c.hint:
            st.markdown("source: nothing to show yet")
            return
        try:
            if c.source is None:
                from deepdance import mannequin

                with st.spinner("rendering the built-in sample source (first use, a few seconds)..."):
                    path = mannequin.ensure_sample("source")
            else:
                path = c.source
            with st.spinner("finding the source's poses on a few frames..."):
                strip, where = source_strip(str(path), path.stat().st_mtime_ns, c.stride, is_extracted(path, c.stride))
        except UserError as e:
            st.error(named(e, c.source, c.source_shown))
            return
        except Exception as e:  # the preview is a convenience: whatever breaks it is one line, the page goes on
            st.error(f"no preview of {c.source_shown}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            return
        st.image(strip, channels="BGR", caption=f"source: {c.source_shown}, poses from {where}")


def report_block(st, cache_dir):
    """The target report VideoSkeleton writes next to a cache (report.json, a contact sheet), when there is one."""
    report, pngs, problem = target_report(cache_dir)
    if problem:
        st.markdown(f"Target report: {problem}")
    if report:
        st.markdown("**Target report**\n\n" + "\n".join(report_lines(report)))
        st.caption(f"Every number: report.json in `{shown_path(cache_dir)}/`.")
    for png in pngs:
        st.image(str(png), caption=f"{png.name} (in {shown_path(png.parent)}/)")
    if not (report or pngs or problem):
        st.markdown("No target report for this cache (this version of VideoSkeleton writes none).")


def training_commands(video, framing):
    """The commands that train each trainable gen_type on `video` in `framing`, one per line."""
    return "\n".join(f"{with_data_dir(train_command(g, video, framing=framing))}   # gen_type {g}"
                     for g, spec in GEN_TYPES.items() if spec.train)  # fmt: skip


def models_section(st, c, *, summaries):
    """Every generator of this target: ready (with its training summary), damaged, not trained (with the command)."""
    trained = summaries(c.target_vs.key, c.ckpt_stamp)
    counts = {s: sum(a.state == s for a in c.states) for s in ("ready", "untrained", "damaged", "unavailable")}
    damaged = f", {counts['damaged']} damaged" if counts["damaged"] else ""
    label = (
        f"Generators for {c.target.label} in framing {c.framing}: {counts['ready']} ready, "
        f"{counts['untrained']} not trained{damaged}"
    )
    with st.expander(label, expanded=counts["damaged"] > 0, key="models"):
        lines = []
        for a in c.states:
            head = f"- **{a.gen_type}** {GEN_TYPES[a.gen_type].description}, {a.size} px: "
            lines.append(head + {
                "ready": "ready",
                "untrained": f"not trained yet: `{with_data_dir(a.command)}`",
                "damaged": f"damaged: retrain it with `{with_data_dir(a.command)}`",
                "unavailable": f"cannot be loaded: {a.why}",
            }[a.state])  # fmt: skip
        st.markdown("\n".join(lines))
        st.markdown("A generator trained while this page is open appears as soon as its `best.pth` is written: "
                    "press **Look again** (or change any setting). Add `--size 128` to a command to train at "
                    "128 px; each size trained is listed.")  # fmt: skip
        st.button("Look again", key="look_again")
        for s in trained:
            minutes = f", {s['seconds'] / 60:.1f} min of training" if s["seconds"] else ""
            st.markdown(f"**gen_type {s['gen_type']} at {s['size']} px** ({GEN_TYPES[s['gen_type']].description}): "
                        f"`{s['name']}`, best epoch {s['epoch']}{minutes}")  # fmt: skip
            if s["val"]:
                st.markdown("| " + " | ".join(f"val {k}" for k in s["val"]) + " |\n|" + "---:|" * len(s["val"])
                            + "\n| " + " | ".join(f"{v:.4f}" for v in s["val"].values()) + " |")  # fmt: skip
            for png in s["loss_pngs"]:
                st.image(png, caption=f"{Path(png).name}: losses and validation metrics per epoch")
            if s["samples_png"]:
                st.image(s["samples_png"], caption="validation frames: skeleton / generated / real")


def add_target_section(st, *, busy):
    """Add a target from the page: an upload or a path -> its poses extracted (progress bar at the top), its report,
    the commands that train its generators."""
    added, job = st.session_state.get("added"), st.session_state.get("job")
    extracting = job is not None and job.origin == "target"  # its progress bar is in here, under its button
    with st.expander("Add a target: your own video of the person to animate", expanded=added is not None or extracting,
                     key="add_target_box"):  # fmt: skip
        st.markdown(
            "Film one person, whole body in view, with a still camera, for a few minutes of varied poses (README: "
            "*Filming your own target*). Its poses are extracted here (MediaPipe, about 20 s per 1000 frames); the "
            "generators then train from the command line and appear in this page without a restart."
        )
        origin = st.radio("From", TARGET_FROM, key="target_from", horizontal=True, disabled=busy)
        st.radio("Framing", FRAMINGS, index=FRAMINGS.index(FRAMING), key="target_framing", horizontal=True,
                 disabled=busy, help=FRAMING_HELP)  # fmt: skip
        if origin == TARGET_FROM[0]:
            given = st.file_uploader("Target video", max_upload_size=MAX_UPLOAD_MB,
                                     key=upload_key(st, "target_upload"), disabled=busy)  # fmt: skip
            st.markdown(TOO_BIG)
        else:
            given = st.text_input("Target video path", key="target_path", disabled=busy,
                                  placeholder="../shared/data/taichi1.mp4").strip()  # fmt: skip
        st.button("Extract the poses", key="add_target", disabled=busy or not given, on_click=request_job,
                  args=("target",))  # fmt: skip
        if extracting:
            job_panel()()  # here, under the button just pressed: the top of the page is scrolled out of view
        if added:
            if added.get("origin") != "framing":  # that one is said at the top, where it was asked for
                st.success(added_line(added))
            report_block(st, added["cache_dir"])
            st.markdown("Train its generators from the project folder (each takes minutes on a CPU):")
            # Wrapped: a long path would otherwise push the ends of the lines out of view (sideways scrolling).
            st.code(training_commands(added["video"], added["framing"]), language="bash", wrap_lines=True)


def upload_key(st, name):
    """The key of a file uploader: a fresh one after 'Forget my uploads' empties it (Streamlit cannot set a file
    uploader's value, and a file still in it would be stored again at the next rerun)."""
    n = st.session_state.get("uploads_forgotten", 0)
    return name if n == 0 else f"{name}-{n}"


def forget_my_uploads():
    """on_click of 'Delete them': the uploads, their caches and models gone; the uploaders emptied; an uploaded
    target no longer selected."""
    import streamlit as st

    freed = forget_uploads()
    state = st.session_state
    state["uploads_forgotten"] = state.get("uploads_forgotten", 0) + 1
    for key in [k for k in state if str(k).startswith("stored:")]:
        del state[key]
    target = state.get("target")
    if target is not None and target.video is not None and target.video.is_relative_to(TARGET_DIR.resolve()):
        del state["target"]
        state.pop("framing", None)
    state.pop("added", None)
    state["confirm_forget"], state["forgot"] = False, freed


def uploads_section(st, *, busy):
    """What the page keeps of the files given to it, the space it takes, and 'Forget my uploads'."""
    kept = kept_uploads()
    label = f"Your uploads: {kept.sources + kept.targets} kept on this computer, {shown_bytes(kept.bytes)}"
    with st.expander(label, expanded=bool(st.session_state.get("confirm_forget")), key="uploads_box"):
        st.markdown(
            f"- **uploaded sources**: {kept.sources} in `{shown_path(UPLOAD_DIR)}/` (the {KEEP_UPLOADS} most recent), "
            "each with its pose caches, so a second run on the same file does not extract it again\n"
            f"- **targets added from an upload**: {kept.targets} in `{shown_path(TARGET_DIR)}/`, with their pose "
            f"caches and the generators trained on them ({kept.models})\n\n"
            f"Space used: **{shown_bytes(kept.bytes)}** ({kept.caches} pose caches included). A video given by its "
            "path is not copied: only its pose cache is kept."
        )
        freed = st.session_state.pop("forgot", None)
        if freed is not None:
            st.success(f"Your uploads are deleted: {shown_bytes(freed)} freed.")
        if not st.session_state.get("confirm_forget"):
            st.button("Forget my uploads", key="forget", disabled=busy or not (kept.sources or kept.targets),
                      on_click=lambda: st.session_state.update(confirm_forget=True))  # fmt: skip
            return
        st.markdown(f"**Delete {shown_bytes(kept.bytes)}**: the uploaded videos, their pose caches and the "
                    f"{kept.models} generators trained on them? It cannot be undone.")  # fmt: skip
        yes, no = st.columns(2)
        yes.button("Delete them", key="forget_yes", type="primary", disabled=busy, on_click=forget_my_uploads)
        no.button("Keep them", key="forget_no", on_click=lambda: st.session_state.update(confirm_forget=False))


def main():
    import streamlit as st

    load_target, load_gen, summaries, target_strip, source_strip = cached_loaders()
    st.set_page_config(page_title="DeepDance", layout="wide")
    # Streamlit's default top margin is 6rem; 3.5rem still clears its header bar (the side panel's >> on a phone).
    st.html('<style>[data-testid="stMainBlockContainer"] {padding-top: 3.5rem}</style>')
    st.title("DeepDance")
    st.caption("Motion transfer: the target person performs the source video's moves (Everybody Dance Now).")
    reattach_job(st)
    collect_job(st)
    busy = st.session_state.get("job") is not None or st.session_state.get("requested") is not None
    c = side_panel(st, load_target=load_target, load_gen=load_gen, busy=busy)
    requested = st.session_state.pop("requested", None)
    if st.session_state.get("job") is not None:
        requested = None  # one job at a time: a click that reached a locked button (a stale page) is ignored
    if requested == "run" and c.gen_type is not None and not (c.source_error or c.hint):
        st.session_state["job"] = start_run(c, load_gen)
    elif requested == "target":
        st.session_state["job"] = start_add_target(st)
    elif requested == "framing":
        st.session_state["job"] = start_add_target(st, c.target)
    if requested and st.session_state.get("job") is None:
        st.rerun()  # nothing to start (the input went meanwhile): render the settings unlocked again
    if requested:
        st.session_state["last_job"] = None
    if requested and st.session_state.get("job") is not None:
        st.query_params["job"] = st.session_state["job"].id  # a reload of this tab finds it again
    busy = st.session_state.get("job") is not None
    run_section(st, c, busy=busy)
    result_section(st)
    preview_section(st, c, target_strip=target_strip, source_strip=source_strip)
    models_section(st, c, summaries=summaries)
    add_target_section(st, busy=busy)
    uploads_section(st, busy=busy)


if __name__ == "__main__":
    main()
