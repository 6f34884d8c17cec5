"""app.py: upload checks and storage, the choices offered, and the page itself driven by Streamlit's AppTest.

Runs and target extractions are Jobs (threads): a test waits on the job's `finished` Event (a test hook, no
sleeping), then reruns the page as its progress poll would. DEEPDANCE_TEST_PAUSE=app-job:<file> holds a job at its
start until the file is removed, so the page can be looked at while a job is certainly running.
"""

import hashlib
import json
import os
import shutil
import threading
from pathlib import Path

import app
from deepdance import appbackend, cache, transfer, uploads, video
from deepdance.cli import UserError
from deepdance.gentypes import GEN_TYPES, checkpoint_dir, train_command
from deepdance.video import VideoWriter

import cv2
import numpy as np
import pytest

from apppage import (
    finish_job,
    new_app,
    no_problem,
    page_text,
    sample_frames,
    select_target,
    texts,
    wait_for_file,
)
from conftest import read_video, run_script, write_video


def decode_video(data, tmp_path):
    """Decode mp4 bytes: (frames (N,H,W,3), fps)."""
    path = tmp_path / "decoded.mp4"
    path.write_bytes(data)
    try:
        return read_video(path)
    finally:
        path.unlink()


@pytest.fixture(scope="module")
def clips(tmp_path_factory, sample_target, sample_source):
    """Small real videos: an mp4 (mp4v) and an AVI (MJPG) of the sample source, 24 frames each; an H.264 mp4 that
    declares 40 frames but is cut short (decoding stops after about a third of them)."""
    folder = tmp_path_factory.mktemp("app-clips")
    frames = [f for _, f in video.iter_frames(sample_source, 0, 40)]
    mp4 = write_video(folder / "source24.mp4", frames[:24])
    avi = folder / "source24.avi"
    out = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, frames[0].shape[1::-1])
    for f in frames[:24]:
        out.write(f)
    out.release()
    with VideoWriter(folder / "whole.mp4", 25) as w:
        for f in frames:
            w.write(f)
    whole = (folder / "whole.mp4").read_bytes()
    corrupt = folder / "corrupt.mp4"
    corrupt.write_bytes(whole[: int(0.6 * len(whole))])
    return {"mp4": mp4, "avi": avi, "corrupt": corrupt}


# --------------------------------------------------------------------------- uploads, as plain functions


def test_containers_are_recognised_by_their_first_bytes(clips):
    assert uploads.sniff_container(clips["mp4"].read_bytes()[:64]) == "mp4"
    assert uploads.sniff_container(clips["avi"].read_bytes()[:64]) == "avi"
    ebml = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84"
    assert uploads.sniff_container(ebml + b"webm" + b"\x00" * 8) == "webm"
    assert uploads.sniff_container(ebml + b"matroska") == "mkv"
    assert uploads.sniff_container(b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00") == "mov"
    assert uploads.sniff_container(b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat") == "mov"
    assert uploads.sniff_container(b"\x00\x00\x01\xba\x44\x00\x04") == "mpeg"
    for junk in (b"", b"hello, not a video", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, b"RIFF\x00\x00\x00\x00WAVEfmt "):
        assert uploads.sniff_container(junk) is None


def test_uploads_are_stored_by_content_under_a_generated_name(clips, tmp_path):
    mp4, avi = clips["mp4"].read_bytes(), clips["avi"].read_bytes()
    # A real mp4 whose name says text; the same bytes again under another name: one file, found again.
    first = uploads.store_upload(mp4, "holiday.txt", folder=tmp_path)
    again = uploads.store_upload(mp4, "other name.mp4", folder=tmp_path)
    assert first == again == tmp_path / f"{hashlib.sha256(mp4).hexdigest()[:16]}.mp4"
    assert first.read_bytes() == mp4 and "holiday" not in first.name
    # An AVI whose name says mp4 and tries to climb out of the folder.
    path = uploads.store_upload(avi, "../../etc/passwd.mp4", folder=tmp_path)
    assert path.suffix == ".avi" and path.parent == tmp_path and "passwd" not in path.name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, path.name])  # no temporaries left
    # Targets keep the user's name (made safe), in a folder named by content.
    kept = uploads.store_upload(avi, "../../My Dance*`!.mp4", folder=tmp_path / "targets", keep_name=True, keep=None)
    assert kept.parent.parent == tmp_path / "targets" and kept.name == "My Dance_.avi"


def test_bad_uploads_are_refused_with_one_line_and_leave_nothing(clips, tmp_path):
    mp4 = clips["mp4"].read_bytes()
    cases = (
        (b"", "x.mp4", {}, "is empty"),
        (b"just some notes, not a video", "notes.mp4", {}, "is not a video"),
        (b"\x00\x00\x00\x18ftypisom" + os.urandom(4000), "broken.mp4", {}, "no frame can be decoded"),
        (mp4[: len(mp4) // 3], "truncated.mp4", {}, "no frame can be decoded"),
        (mp4, "big.mp4", {"max_mb": len(mp4) / 2**21}, "uploads are limited to"),
    )
    for data, name, kw, message in cases:
        with pytest.raises(UserError, match=message) as e:
            uploads.store_upload(data, name, folder=tmp_path, **kw)
        assert len(str(e.value).splitlines()) == 1 and str(e.value).startswith(f"`{name}`")
        assert list(tmp_path.iterdir()) == [], name
    # The user's name is shown defanged: no folders, no markdown.
    with pytest.raises(UserError, match=r"^`a_b_c.mp4` is not a video"):
        uploads.store_upload(b"junk", "../dir/a*b`c.mp4", folder=tmp_path)


def test_two_sessions_storing_uploads_at_once_both_get_whole_files(clips, tmp_path):
    # Streamlit sessions are threads of one process: the same upload twice at once, and another one beside them.
    datas = [clips["mp4"].read_bytes()] * 4 + [clips["avi"].read_bytes()] * 4
    results, errors = [None] * len(datas), []
    start = threading.Barrier(len(datas))

    def store(i):
        try:
            start.wait()
            results[i] = uploads.store_upload(datas[i], f"clip{i}", folder=tmp_path)
        except BaseException as e:  # reported by the test, not lost in the thread
            errors.append(e)

    threads = [threading.Thread(target=store, args=(i,)) for i in range(len(datas))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(set(results[:4])) == 1 and len(set(results[4:])) == 1
    for path, data in zip(results, datas, strict=True):
        assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({results[0].name, results[4].name})


def test_old_uploads_go_with_their_pose_caches(sample_target, tmp_path):
    stored = []
    for k in range(3):  # three different small videos
        clip = write_video(tmp_path / f"c{k}.mp4", sample_frames(sample_target, 10 * k, 10 * k + 3))
        stored.append(uploads.store_upload(clip.read_bytes(), clip.name, folder=tmp_path / "up", keep=2))
        (cache.CACHE_DIR / f"{stored[-1].stem}-0123456789").mkdir(parents=True)  # a pose cache of it
    assert not stored[0].exists() and stored[1].exists() and stored[2].exists()
    assert not (cache.CACHE_DIR / f"{stored[0].stem}-0123456789").exists()
    for p in stored[1:]:
        shutil.rmtree(cache.CACHE_DIR / f"{p.stem}-0123456789")


# --------------------------------------------------------------------------- what the page offers


def test_targets_are_the_sample_and_the_processed_videos(sample_vs, sample_target, short_clip, data_dir, clips):
    from deepdance import mannequin

    cache.VideoSkeleton(short_clip, verbose=False)
    ghost = cache.CACHE_DIR / "gone-0123456789"  # a cache whose video was deleted since
    ghost.mkdir()
    (ghost / "meta.json").write_text(
        json.dumps({"source": str(data_dir / "gone.mp4"), "params": {}, "detected": 1, "frames": 1})
    )
    uploaded = uploads.store_upload(clips["mp4"].read_bytes(), "up.mp4")  # an uploaded source, extracted
    cache.VideoSkeleton(uploaded, frame_skip=4, verbose=False)
    (data_dir / "elsewhere").mkdir()
    namesake = write_video(data_dir / "elsewhere" / "short.mp4", sample_frames(sample_target, 60, 72))
    cache.VideoSkeleton(namesake, verbose=False)  # another video of the same name
    try:
        targets = appbackend.processed_targets()
        sources = appbackend.data_videos()
    finally:
        shutil.rmtree(ghost)
        shutil.rmtree(namesake.parent)
    names = [t.video.name for t in targets[1:]]
    assert all(t.label == t.video.name for t in targets[1:] if names.count(t.video.name) == 1)  # labels kept short
    assert targets[0].label == "built-in sample target" and targets[0].video is None
    assert targets[0].params("person") == sample_vs.meta["params"] and targets[0].caches["person"].key == sample_vs.key
    videos = [t.video for t in targets]
    assert short_clip.resolve() in videos
    short = targets[videos.index(short_clip.resolve())]
    assert short.label == f"short.mp4 ({appbackend.shown_path(short_clip.parent)}/)"  # two of one name: their folders
    assert short.details.startswith("60 of 60 frames with a person")
    assert targets[videos.index(namesake.resolve())].label == f"short.mp4 ({appbackend.shown_path(namesake.parent)}/)"
    assert data_dir / "gone.mp4" not in videos and len(set(videos)) == len(videos)
    assert mannequin.clip_path("source").resolve() not in videos  # the sample source is a source, not a target
    assert uploaded not in videos and uploaded not in sources  # an uploaded source is neither
    # Sources under data/: the sample clips are there once rendered.
    assert {"target.mp4", "source.mp4"} <= {p.name for p in sources}


def test_commands_name_the_servers_data_folder(monkeypatch, data_dir):
    command = train_command(2, None)
    assert appbackend.with_data_dir(command) == f"DEEPDANCE_DATA={appbackend.shown_path(data_dir)} {command}"
    spaced = Path("/tmp/a folder")
    monkeypatch.setattr(appbackend, "DATA_DIR", spaced)
    shown = appbackend.shown_path(spaced)  # "../a folder" where the project sits in /tmp itself
    assert " " in shown and appbackend.with_data_dir(command) == f"DEEPDANCE_DATA='{shown}' {command}"  # quoted
    monkeypatch.delenv("DEEPDANCE_DATA")
    assert appbackend.with_data_dir(command) == command  # the default folder: nothing to add


def test_typed_paths_are_checked(sample_source):
    assert appbackend.resolve_path(str(sample_source)) == sample_source.resolve()
    with pytest.raises(UserError, match="video not found"):
        appbackend.resolve_path("no/such/clip.mp4")
    with pytest.raises(UserError, match="cannot read a frame"):
        appbackend.resolve_path("README.md")
    with pytest.raises(UserError, match=r"^`x{60}` cannot be opened: file name too long$"):
        appbackend.resolve_path("x" * 300 + ".mp4")  # over the 255 bytes a name may have


def test_run_transfer_reports_progress_and_names_the_source(sample_vs, clips, tmp_path):
    from deepdance.nearest import GenNearest

    src = uploads.store_upload(clips["mp4"].read_bytes(), "my clip.mp4", folder=tmp_path)
    seen = []
    data, stats = appbackend.run_transfer(
        src, sample_vs, GenNearest(sample_vs), "generated", stride=2, progress=lambda f, t: seen.append((f, t)),
        shown="`my clip.mp4`",
    )  # fmt: skip
    video, fps = decode_video(data, tmp_path)
    assert video.shape == (12, transfer.PANEL, 3 * transfer.PANEL, 3) and fps == pytest.approx(12.5, abs=0.01)
    assert stats["frames"] == 12 and "12 frames in" in appbackend.describe_run(stats)
    source_vs = appbackend.source_poses(src, stride=2, shown="x", report=lambda f, t: None)  # cached: no extraction
    assert stats["coverage"] == transfer.coverage_warnings(source_vs, sample_vs.skeletons())
    assert seen[-1][0] == 1.0 and [f for f, _ in seen] == sorted(f for f, _ in seen)
    # The user's name and the video's own count (24), not the stored name or only the stride's share.
    assert "MediaPipe on 12 of the 24 frames of `my clip.mp4`" in seen[0][1]
    assert not any(src.stem in text for _, text in seen)


def test_a_damaged_source_is_named_with_its_own_frame_counts(clips, tmp_path):
    src = tmp_path / "0123456789abcdef.mp4"  # as stored, by content (uploads cut short are refused: a copied file)
    src.write_bytes(clips["corrupt"].read_bytes())
    declared, decoded = video.probe_video(src)[0], video.count_frames(src)
    assert declared == 40 and 0 < decoded < 30
    with pytest.raises(UserError) as e:
        appbackend.source_poses(src, stride=2, shown="`holiday dance.mp4`", report=lambda f, t: None)
    line = str(e.value)
    assert line.startswith(f"`holiday dance.mp4` is damaged: it declares 40 frames but only {decoded} can be decoded")
    assert "`ffmpeg -i 'holiday dance.mp4' -c:v libx264 fixed.mp4`" in line and src.stem not in line


def test_the_video_and_the_page_name_the_panels_alike(monkeypatch):
    # transfer writes each panel's name into the video; the page's caption uses the same words, in the same order.
    written = []
    label = transfer._label
    monkeypatch.setattr(
        transfer, "_label", lambda img, text, *a, **kw: written.append(text) or label(img, text, *a, **kw)
    )
    pose = np.full((13, 2), 0.5, np.float32)
    square = np.zeros((transfer.PANEL, transfer.PANEL, 3), np.uint8)
    transfer.draw_panels(square, pose, pose, square[:64, :64], label="generated target")
    assert written == ["source", "normalised pose", "generated target"]
    assert app.PANELS["three"] == "source + its skeleton | normalised pose | generated target"


class StubTarget:
    """What generator_states reads of a target: its key, video, framing and model folders."""

    def __init__(self, key, video):
        self.key, self.video_path, self.framing = key, video, "person"

    def model_dir(self, name):
        return cache.CHECKPOINT_DIR / self.key / name


def test_generators_are_ready_untrained_or_damaged_per_size(tmp_path):
    vs = StubTarget("stub-0123456789", tmp_path / "stub.mp4")
    junk = checkpoint_dir(vs, 3, 64) / "best.pth"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"not a checkpoint")
    (checkpoint_dir(vs, 4, 128)).mkdir(parents=True)
    (checkpoint_dir(vs, 4, 128) / "best.pth").write_bytes(b"\x80\x02junk")
    try:
        assert appbackend.trained_sizes(vs.key) == {3: [64], 4: [128]}
        states = appbackend.generator_states(vs, lambda g, size: appbackend.try_load_generator(g, vs, size=size))
    finally:
        shutil.rmtree(cache.CHECKPOINT_DIR / vs.key)
    by = {(a.gen_type, a.size): a for a in states}
    assert set(by) == {(g, 64) for g in GEN_TYPES if g != 4} | {(4, 128)}  # each type once per trained size
    assert by[(2, 64)].state == "untrained" and by[(2, 64)].command == train_command(2, vs.video_path)
    assert by[(3, 64)].state == by[(4, 128)].state == "damaged"
    assert by[(3, 64)].why.startswith("cannot read checkpoint")
    assert by[(3, 64)].command == appbackend.retrain_command(3, vs.video_path)
    assert appbackend.retrain_command(3, vs.video_path).endswith(" true 2")  # GenVanillaNN's force=true
    assert appbackend.retrain_command(4, vs.video_path, 128) == train_command(4, vs.video_path, 128) + " --force"
    assert by[(1, 64)].state == "unavailable"  # nothing to train; the stub has no frames to retrieve from


def test_target_reports_are_read_defensively(tmp_path, sample_vs):
    assert appbackend.target_report(tmp_path) == (None, [], None)  # a cache that writes no report
    report = {
        "frames": 600,
        "problems": [{"code": "camera_moved", "line": "the camera moved: use a tripod"}],
        "notes": ["turned upright"],
        "angles": list(range(20)),
        "camera": {"shift": 0.07},
    }
    (tmp_path / "report.json").write_text(json.dumps(report))
    cv2.imwrite(str(tmp_path / "contact_sheet.png"), np.zeros((4, 4, 3), np.uint8))
    report, pngs, problem = appbackend.target_report(tmp_path)
    assert report["frames"] == 600 and [p.name for p in pngs] == ["contact_sheet.png"] and problem is None
    lines = appbackend.report_lines(report)
    # Each heading is a block of its own (a blank line before it), so it does not run on into the list above it.
    assert lines == [
        "**1 problem**, what to film differently:", "", "- the camera moved: use a tripod", "",
        "**Notes**:", "", "- turned upright", "",
        "**What it measured**:", "", "- 600 frames",
        "- the background shifts by up to 7% of the picture (a still camera: about 0%)",
    ]  # fmt: skip
    assert "angles" not in "\n".join(lines)  # raw numbers stay in report.json
    assert appbackend.report_lines({"problems": []}) == ["**No problems found.**"]
    # A whole report as VideoSkeleton writes it: its numbers in words, nothing raw (no crop, padding, spread_deg).
    words = "\n".join(appbackend.report_lines(sample_vs.report))
    assert "600 frames (24.0 s); the person is found in 600 (100%)" in words
    assert "the poses differ by" in words and not any(k in words for k in ("crop", "padding", "spread_deg", "few_"))
    (tmp_path / "report.json").write_text('{"frames": 6')  # being written, or damaged
    assert appbackend.target_report(tmp_path)[2].startswith("report.json cannot be read (JSONDecodeError")
    (tmp_path / "report.json").write_text("[1, 2]")
    assert appbackend.target_report(tmp_path)[2] == "report.json does not hold a JSON object"


# --------------------------------------------------------------------------- the page (AppTest)


def test_page_renders_and_lists_every_generator_once(sample_vs):
    at = new_app()
    at.run()
    no_problem(at)
    assert at.title[0].value == "DeepDance"
    assert at.selectbox(key="target").value.label == "built-in sample target"
    # A radio, whose labels wrap, not a select box that cuts them off; no truncating metric widgets either.
    offered = at.radio(key="gen_type").options
    assert offered[0] == f"1: {GEN_TYPES[1].description}"
    assert not at.get("metric")
    shown = texts(at)
    for g in range(2, 9):
        ready = f"{g}: {GEN_TYPES[g].description}" in offered
        command = appbackend.with_data_dir(train_command(g, sample_vs.video_path))
        listed = [t for t in shown if f"not trained yet: `{command}`" in t]
        assert ready != bool(listed), g  # each trained type is offered, each other one is listed with its command
        assert sum(t.count(command) for t in shown) == (0 if ready else 1), g  # and printed once
        if not (cache.CHECKPOINT_DIR / sample_vs.key).exists():
            assert listed, g
    assert at.button(key="run").disabled is False
    assert not at.get("video")
    assert any(t.startswith("**Ready**: the built-in sample source onto built-in sample target") for t in shown)


def test_page_previews_the_target_and_the_source(sample_vs):
    at = new_app()
    at.run()
    no_problem(at)
    box = [e for e in at.expander if e.label.startswith("Preview")]
    assert len(box) == 1 and box[0].proto.expanded
    captions = [c for img in box[0].image for c in img.captions]
    assert len(captions) == 2, captions
    assert captions[0].startswith(f"target: built-in sample target, {appbackend.PREVIEW_FRAMES} of its 600 frames")
    assert captions[1].startswith("source: the built-in sample source, poses from")


def test_page_runs_the_sample_transfer(sample_vs, tmp_path):
    at = new_app()
    at.run()
    at.number_input(key="stride").set_value(4)
    at.button(key="run").click().run()
    finish_job(at)
    no_problem(at)
    assert len(at.get("video")) == 1 and len(at.get("download_button")) == 2  # the video, its still strip
    result = at.session_state["result"]
    assert result["file_name"] == f"deepdance-{sample_vs.video_path.stem}-gen1.mp4"
    assert "100 frames in" in result["stats"] and "the built-in sample source onto" in result["what"]
    assert any(t.startswith(f"**Result**: {result['what']}: {result['stats']}") for t in texts(at))
    assert any(t.startswith(f"The panels: {app.PANELS['three']}. Time: source poses ") for t in texts(at))
    video, fps = decode_video(result["video"], tmp_path)  # the sample source: 400 frames at 25 fps
    assert video.shape == (100, transfer.PANEL, 3 * transfer.PANEL, 3) and fps == pytest.approx(6.25, abs=0.01)
    # The result stays on the page across reruns (e.g. after changing a setting).
    at.checkbox(key="smooth").uncheck().run()
    assert len(at.get("video")) == 1


SETTINGS = {"selectbox": ["target"], "radio": ["gen_type", "source_kind"], "number_input": ["stride"],
            "checkbox": ["coherent", "normalize", "smooth"]}  # fmt: skip


def test_settings_are_locked_during_a_run_and_a_change_cancels_nothing(sample_vs, paused_app_jobs):
    at = new_app()
    at.run()
    at.number_input(key="stride").set_value(8)
    at.button(key="run").click().run()
    no_problem(at)
    job = at.session_state["job"]
    wait_for_file(paused_app_jobs)  # the job is running (held at its start)
    at.run()
    for kind, keys in SETTINGS.items():
        for key in keys:
            assert getattr(at, kind)(key=key).disabled, key
    assert at.button(key="run").disabled and not at.button(key="cancel").disabled
    running = [t for t in texts(at) if t.startswith("**Running**:")]
    assert len(running) == 1 and "stride 8" in running[0] and "settings are locked" in running[0]
    # What the browser cannot do any more (the widgets are disabled) a stale page might: neither restarts the run.
    at.number_input(key="stride").set_value(3).run()
    at.button(key="run").click().run()
    assert at.session_state["job"] is job and not job.finished.is_set()
    paused_app_jobs.unlink()
    finish_job(at)
    no_problem(at)
    assert "50 frames in" in at.session_state["result"]["stats"]  # stride 8, the click's: 400 / 8
    assert not at.number_input(key="stride").disabled and not at.button(key="run").disabled


def test_a_run_can_be_cancelled_and_says_so(sample_vs, paused_app_jobs):
    at = new_app()
    at.run()
    at.number_input(key="stride").set_value(5)
    at.button(key="run").click().run()
    wait_for_file(paused_app_jobs)
    at.run()
    at.button(key="cancel").click().run()
    paused_app_jobs.unlink()
    job = finish_job(at)
    assert job.cancelled and "result" not in at.session_state
    said = f"Cancelled: {job.what}. Nothing of it was kept; the settings are unlocked."
    assert [w.value for w in at.warning] == [said]
    assert not at.number_input(key="stride").disabled


def test_uploads_are_checked_named_and_extracted_once(sample_vs, clips, monkeypatch):
    calls = []
    extract = cache.extract
    monkeypatch.setattr(cache, "extract", lambda *a, **kw: calls.append(a[0]) or extract(*a, **kw))
    at = new_app()
    at.run()
    at.radio(key="source_kind").set_value(app.SOURCE_KINDS[3]).run()
    assert at.button(key="run").disabled
    assert app.TOO_BIG in texts(at)  # files over 200 MB: the browser refuses them; the page says so in words
    assert any("up to 200 MB, a bigger file is refused by the browser" in i.value for i in at.info)
    at.file_uploader(key="upload").set_value(("notes.mp4", b"Dear diary, this is not a video", "video/mp4")).run()
    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value.startswith("`notes.mp4` is not a video")
    assert at.button(key="run").disabled
    at.file_uploader(key="upload").set_value(("clip.avi", clips["avi"].read_bytes(), "video/x-msvideo")).run()
    no_problem(at)
    assert any(t.startswith("`clip.avi`: 24 frames at 25 fps") for t in texts(at))  # its own name and numbers
    at.number_input(key="stride").set_value(1)
    for _ in range(2):
        at.button(key="run").click().run()
        finish_job(at)
        no_problem(at)
        assert "24 frames in" in at.session_state["result"]["stats"]
        assert "`clip.avi` onto built-in sample target" in at.session_state["result"]["what"]
    assert len(calls) == 1  # the second run reused the poses of the first (cached by content)
    assert uploads.store_upload(clips["avi"].read_bytes(), "x").exists()


def test_an_upload_cut_short_is_refused_at_once(sample_vs, clips):
    at = new_app()
    at.run()
    at.radio(key="source_kind").set_value(app.SOURCE_KINDS[3]).run()
    at.file_uploader(key="upload").set_value(("holiday dance.mp4", clips["corrupt"].read_bytes(), "video/mp4")).run()
    assert not at.exception and at.button(key="run").disabled  # its first frame decodes, yet it is refused now
    assert [e.value for e in at.error] == [
        "`holiday dance.mp4` is cut short: the end of its video is missing (a download or copy that did not finish); "
        "upload a whole copy"
    ]
    assert not [p for p in uploads.UPLOAD_DIR.glob("*") if p.read_bytes() == clips["corrupt"].read_bytes()]


def test_a_failed_run_keeps_the_previous_video_labelled_and_names_the_file(sample_vs, clips, tmp_path):
    at = new_app()
    at.run()
    at.number_input(key="stride").set_value(8)
    at.button(key="run").click().run()
    finish_job(at)
    first = at.session_state["result"]
    damaged = tmp_path / "holiday dance.mp4"
    damaged.write_bytes(clips["corrupt"].read_bytes())
    at.radio(key="source_kind").set_value(app.SOURCE_KINDS[2]).run()
    at.text_input(key="video_path").input(str(damaged)).run()
    no_problem(at)  # a path is only probed (its first frame decodes): the run finds the damage
    at.number_input(key="stride").set_value(2)
    at.button(key="run").click().run()
    finish_job(at)
    assert not at.exception
    decoded = video.count_frames(clips["corrupt"])
    assert [e.value for e in at.error] == [
        f"The run failed: `holiday dance.mp4` is damaged: it declares 40 frames but only {decoded} can be decoded; "
        "re-encode it (e.g. `ffmpeg -i 'holiday dance.mp4' -c:v libx264 fixed.mp4`) or use an undamaged copy"
    ]
    head = [t for t in texts(at) if t.startswith("**Previous result**")]
    assert head == [f"**Previous result**, made by an earlier run: {first['what']}: {first['stats']}."]
    assert "the built-in sample source onto" in head[0] and len(at.get("video")) == 1


def test_page_reports_a_bad_typed_path(sample_vs):
    at = new_app()
    at.run()
    at.radio(key="source_kind").set_value(app.SOURCE_KINDS[2]).run()
    at.text_input(key="video_path").input("no/such/dance.mp4").run()
    assert not at.exception and "video not found" in at.error[0].value
    assert at.button(key="run").disabled
    at.text_input(key="video_path").input("dance" * 60 + ".mp4").run()  # a name over 255 bytes
    assert not at.exception and [e.value for e in at.error] == [
        f"`{('dance' * 60)[:60]}` cannot be opened: file name too long"
    ]


def test_a_video_under_data_that_is_not_one_gets_one_line(sample_vs, data_dir):
    junk = data_dir / "notes" / "party.mp4"
    junk.parent.mkdir(exist_ok=True)
    junk.write_text("shopping list, not a video\n" * 20)
    try:
        at = new_app()
        at.run()
        at.radio(key="source_kind").set_value(app.SOURCE_KINDS[1]).run()
        at.selectbox(key="data_video").set_value(junk).run()
        assert not at.exception and len(at.error) == 1 and at.error[0].value.startswith("cannot read a frame from")
        assert appbackend.shown_path(junk) in at.error[0].value and at.button(key="run").disabled
    finally:
        shutil.rmtree(junk.parent)


@pytest.fixture
def damaged_sample_checkpoint(sample_vs):
    """A best.pth of gen_type 3 on the sample target that is not a checkpoint (removed after)."""
    path = checkpoint_dir(sample_vs, 3) / "best.pth"
    existed = (cache.CHECKPOINT_DIR / sample_vs.key).exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00" * 100)
    yield path
    shutil.rmtree(path.parent if existed else cache.CHECKPOINT_DIR / sample_vs.key)


@pytest.mark.parametrize("content", ["zeros", "foreign pickle"])
def test_a_damaged_checkpoint_is_one_plain_line_and_not_counted_as_trained(damaged_sample_checkpoint, sample_vs,
                                                                           content):  # fmt: skip
    if content == "foreign pickle":  # a whole object pickled: PyTorch's weights_only loader refuses it at length
        import argparse

        import torch

        torch.save({"net": argparse.Namespace(layers=3)}, damaged_sample_checkpoint)
    at = new_app()
    at.run()
    no_problem(at)
    assert f"3: {GEN_TYPES[3].description}" not in at.radio(key="gen_type").options
    box = [e for e in at.expander if e.label.startswith("Generators for built-in sample target")]
    assert len(box) == 1 and box[0].label.endswith(", 1 damaged") and box[0].proto.expanded
    line = [x for t in texts(at) for x in t.splitlines() if x.startswith("- **3**")]
    command = appbackend.with_data_dir(appbackend.retrain_command(3, sample_vs.video_path))
    assert line == [f"- **3** {GEN_TYPES[3].description}, 64 px: damaged: retrain it with `{command}`"]
    shown = page_text(at)
    assert shown.count("retrain it") == 1 and shown.count(command) == 1
    assert not any(word in shown for word in ("Unpickling", "weights_only", "torch", "Error"))
    # The side panel does not count it as trained: it says it is damaged.
    caption = list(at.radio(key="framing").proto.captions)[0]
    assert "3" not in caption.split(";")[0] and caption.endswith("damaged: gen_type 3"), caption


@pytest.fixture(scope="module")
def new_target(tmp_path_factory, sample_target):
    """A small video (frames 100-159 of the sample) to add as a target; its cache and models removed after."""
    clip = write_video(tmp_path_factory.mktemp("app-new") / "new_dancer.mp4", sample_frames(sample_target, 100, 160))
    yield clip
    for cache_dir in cache.CACHE_DIR.glob("new_dancer-*"):
        shutil.rmtree(cache.CHECKPOINT_DIR / cache_dir.name, ignore_errors=True)
        shutil.rmtree(cache_dir)


def test_a_target_is_added_from_a_path_and_selected_with_its_training_commands(sample_vs, new_target):
    at = new_app()
    at.run()
    box = [e for e in at.expander if e.label.startswith("Add a target")]
    assert len(box) == 1 and not box[0].proto.expanded and at.button(key="add_target").disabled
    at.radio(key="target_from").set_value(app.TARGET_FROM[1]).run()
    at.text_input(key="target_path").input(str(new_target)).run()
    at.button(key="add_target").click().run()
    job = finish_job(at)
    no_problem(at)
    assert job.kind == "target" and at.session_state["added"]["detected"] == 60
    assert job.state() == (1.0, "target poses: 60/60 frames of `new_dancer.mp4`")  # what the progress bar said last
    assert at.selectbox(key="target").value.video == new_target.resolve()  # it is the selected target now
    said = [s.value for s in at.success][0]
    assert said.startswith(f"Added `{new_target.name}`: 60 of 60 frames with a person")
    assert said.endswith("It is now the selected target.")
    commands = "\n".join(c.value for c in at.code)
    data = f"DEEPDANCE_DATA={appbackend.shown_path(appbackend.DATA_DIR)} "  # the server's: they train into it
    for g in (g for g, spec in GEN_TYPES.items() if spec.train):
        assert commands.count(f"{data}{train_command(g, new_target)}   # gen_type {g}") == 1, g
    assert all(c.proto.wrap_lines for c in at.code)  # long lines wrap instead of scrolling sideways
    cache = Path(at.session_state["added"]["cache_dir"])
    if (cache / "report.json").exists():  # a cache that writes the target report
        for problem in json.loads((cache / "report.json").read_text())["problems"]:
            assert f"- {problem['line']}" in page_text(at)
    else:
        assert "No target report for this cache" in page_text(at)
    # Whatever the report holds (report.json and a contact sheet next to the cache), the page shows it.
    (cache / "report.json").write_text(json.dumps({"frames": 60, "problems": [{"line": "too short to train on"}]}))
    cv2.imwrite(str(cache / "contact_sheet.png"), np.full((8, 16, 3), 128, np.uint8))
    at.run()
    assert "- 60 frames" in page_text(at) and "- too short to train on" in page_text(at)
    assert any(c.startswith("contact_sheet.png") for img in at.get("image") for c in img.captions)
    (cache / "report.json").write_text("{")
    at.run()
    assert not at.exception and "Target report: report.json cannot be read" in page_text(at)


def test_a_target_is_added_from_an_upload_under_the_users_name(sample_vs, new_target, paused_app_jobs):
    at = new_app()
    at.run()
    at.file_uploader(key="target_upload").set_value(("Dancer Two.mp4", new_target.read_bytes(), "video/mp4")).run()
    assert at.radio(key="target_framing").value == "person"  # the scripts' default
    at.radio(key="target_framing").set_value("center").run()
    at.button(key="add_target").click().run()
    wait_for_file(paused_app_jobs)
    at.run()
    # Its progress bar and Cancel under the button just pressed (the top of the page is out of view there).
    box = [e for e in at.expander if e.label.startswith("Add a target")][0]
    assert len(box.get("progress")) == 1 and len(box.button) == 2 and box.button[1].label == "Cancel"
    said = (
        "**Running**: adding the target `Dancer Two.mp4` in framing center (its progress bar is under 'Add a target', "
        "below)"
    )
    assert any(t.startswith(said) for t in texts(at))
    assert at.selectbox(key="target").disabled and at.button(key="run").disabled and at.radio(key="framing").disabled
    paused_app_jobs.unlink()
    finish_job(at)
    no_problem(at)
    chosen = at.selectbox(key="target").value
    assert chosen.label == "Dancer Two.mp4" and chosen.video.parent.parent == app.TARGET_DIR
    assert chosen.framings() == ["center"] and at.radio(key="framing").value == "center"  # extracted in it alone
    said = [s.value for s in at.success][0]
    assert said.startswith("Added `Dancer Two.mp4`: 60 of 60 frames with a person, framing center, cache")
    for g in (g for g, spec in GEN_TYPES.items() if spec.train):  # its commands train on that framing
        assert f"{train_command(g, chosen.video, framing='center')}   # gen_type {g}" in at.code[0].value, g
    assert at.code[0].value.count(" --framing center") == sum(1 for spec in GEN_TYPES.values() if spec.train)
    shutil.rmtree(chosen.video.parent)


@pytest.fixture(scope="module")
def fresh_target(tmp_path_factory, sample_target):
    """A small extracted target (frames 300-359 of the sample), nothing trained yet; cache and models removed after."""
    clip = write_video(tmp_path_factory.mktemp("app-target") / "app_target.mp4", sample_frames(sample_target, 300, 360))
    vs = cache.VideoSkeleton(clip, verbose=False)
    yield vs
    shutil.rmtree(vs.cache_dir, ignore_errors=True)
    shutil.rmtree(vs.model_dir(""), ignore_errors=True)


def train_vector_model(clip, *size):
    """One epoch of one batch: the test needs real checkpoints and loss curves, not a good model."""
    r = run_script("GenVanillaNN.py", clip, "false", "1", "--epochs", "1", "--batch", "32", *size, timeout=300)
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_a_model_trained_while_the_page_is_open_appears_with_its_sizes(fresh_target, tmp_path):
    at = new_app()
    at.run()
    select_target(at, fresh_target.video_path)
    assert f"2: {GEN_TYPES[2].description}" not in at.radio(key="gen_type").options
    train_vector_model(fresh_target.video_path)
    at.button(key="look_again").click().run()  # the same server: no restart
    no_problem(at)
    assert f"2: {GEN_TYPES[2].description}" in at.radio(key="gen_type").options
    train_vector_model(fresh_target.video_path, "--size", "128")
    at.run()
    at.radio(key="gen_type").set_value(2).run()
    assert at.radio(key="size").options == ["64", "128"]  # the sizes it was trained at, picked explicitly
    at.radio(key="size").set_value(128).run()
    no_problem(at)
    summary = page_text(at)
    for size in (64, 128):
        head = f"**gen_type 2 at {size} px** ({GEN_TYPES[2].description}): `vanilla-vector-{size}`, best epoch"
        assert head in summary
    assert "| val l1 |" in summary and not at.get("metric")  # metrics in a table, in full
    captions = [c for img in at.get("image") for c in img.captions]
    assert any(c.startswith("loss.png") for c in captions) and any("validation frames" in c for c in captions)
    at.number_input(key="stride").set_value(8)
    at.button(key="run").click().run()
    finish_job(at)
    no_problem(at)
    result = at.session_state["result"]
    assert result["file_name"] == "deepdance-app_target-gen2.mp4" and "50 frames in" in result["stats"]
    assert "gen_type 2 at 128 px" in result["what"]
    video, _ = decode_video(result["video"], tmp_path)
    assert video.shape == (50, transfer.PANEL, 3 * transfer.PANEL, 3)
