"""app.py: upload checks, the choices offered, and the page itself driven by Streamlit's AppTest."""

import glob
import json
import os
import shutil
import tempfile

import cv2
import pytest
from conftest import ROOT, read_video, run_script, write_video

import app
import DanceDemo
import Train
from Skeleton import UserError

RUN_TIMEOUT = 240  # s: one script run of the page, a source extraction included (2 slow shared cores)


def decode_video(data, tmp_path):
    """Decode mp4 bytes: (frames (N,H,W,3), fps)."""
    path = tmp_path / "decoded.mp4"
    path.write_bytes(data)
    try:
        return read_video(path)
    finally:
        path.unlink()


def upload_dirs():
    return set(glob.glob(os.path.join(tempfile.gettempdir(), app.UPLOAD_PREFIX + "*")))


@pytest.fixture(scope="module")
def clips(tmp_path_factory, sample_target, sample_source):
    """Small real videos: an mp4 (mp4v) and an AVI (MJPG) of the sample source, 24 frames each."""
    from VideoSkeleton import iter_frames

    folder = tmp_path_factory.mktemp("app-clips")
    frames = [f for _, f in iter_frames(sample_source, 0, 24)]
    mp4 = write_video(folder / "source24.mp4", frames)
    avi = folder / "source24.avi"
    out = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, frames[0].shape[1::-1])
    for f in frames:
        out.write(f)
    out.release()
    return {"mp4": mp4, "avi": avi}


def new_app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=RUN_TIMEOUT)


def no_problem(at):
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


# --------------------------------------------------------------------------- uploads, as plain functions


def test_containers_are_recognised_by_their_first_bytes(clips):
    assert app.sniff_container(clips["mp4"].read_bytes()[:64]) == "mp4"
    assert app.sniff_container(clips["avi"].read_bytes()[:64]) == "avi"
    ebml = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84"
    assert app.sniff_container(ebml + b"webm" + b"\x00" * 8) == "webm"
    assert app.sniff_container(ebml + b"matroska") == "mkv"
    assert app.sniff_container(b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00") == "mov"
    assert app.sniff_container(b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat") == "mov"
    assert app.sniff_container(b"\x00\x00\x01\xba\x44\x00\x04") == "mpeg"
    for junk in (b"", b"hello, not a video", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, b"RIFF\x00\x00\x00\x00WAVEfmt "):
        assert app.sniff_container(junk) is None


def test_upload_is_stored_by_content_under_a_generated_name(clips, tmp_path):
    # A real mp4 whose name says text, an AVI whose name says mp4 and tries to climb out of the folder.
    for data, name, ext in (
        (clips["mp4"].read_bytes(), "holiday.txt", ".mp4"),
        (clips["avi"].read_bytes(), "../../etc/passwd.mp4", ".avi"),
    ):
        path = app.save_upload(data, name, folder=tmp_path)
        assert path.suffix == ext and path.read_bytes() == data
        assert path.parent.parent == tmp_path and path.parent.name.startswith(app.UPLOAD_PREFIX)
        assert path.name.startswith("upload-") and "holiday" not in path.name and "passwd" not in path.name
        shutil.rmtree(path.parent)
    assert list(tmp_path.iterdir()) == []


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
            app.save_upload(data, name, folder=tmp_path, **kw)
        assert len(str(e.value).splitlines()) == 1
        assert list(tmp_path.iterdir()) == [], name
    # The user's name is shown defanged: no folders, no markdown.
    with pytest.raises(UserError, match=r"^`a_b_c.mp4` is not a video"):
        app.save_upload(b"junk", "../dir/a*b`c.mp4", folder=tmp_path)


# --------------------------------------------------------------------------- what the page offers


def test_targets_are_the_sample_and_the_processed_videos(sample_vs, short_clip, data_dir):
    import Mannequin
    from VideoSkeleton import CACHE_DIR, VideoSkeleton

    VideoSkeleton(short_clip, verbose=False)
    ghost = CACHE_DIR / "gone-0123456789"  # a cache whose video was deleted since
    ghost.mkdir()
    (ghost / "meta.json").write_text(json.dumps({"source": str(data_dir / "gone.mp4"), "params": {}, "detected": 1}))
    try:
        targets = app.processed_targets()
    finally:
        shutil.rmtree(ghost)
    assert targets[0].label == "built-in sample target" and targets[0].video is None
    assert targets[0].params == sample_vs.meta["params"]
    videos = [t.video for t in targets]
    assert short_clip.resolve() in videos
    assert data_dir / "gone.mp4" not in videos and len(set(videos)) == len(videos)
    assert Mannequin.clip_path("source").resolve() not in videos  # the sample source is a source, not a target
    # Sources under data/: the sample clips are there once rendered.
    assert {"target.mp4", "source.mp4"} <= {p.name for p in app.data_videos()}


def test_typed_paths_are_checked(sample_source):
    assert app.resolve_path(str(sample_source)) == sample_source.resolve()
    with pytest.raises(UserError, match="video not found"):
        app.resolve_path("no/such/clip.mp4")
    with pytest.raises(UserError, match="cannot read a frame"):
        app.resolve_path("README.md")


def test_run_transfer_reports_progress_and_can_forget_the_source(sample_vs, clips, tmp_path):
    from GenNearest import GenNearest

    src = tmp_path / "upload-test.mp4"
    shutil.copy(clips["mp4"], src)
    seen = []
    data, stats = app.run_transfer(
        src, sample_vs, GenNearest(sample_vs), "generated", stride=2, progress=lambda f, t: seen.append(f), forget=True
    )
    video, fps = decode_video(data, tmp_path)
    assert video.shape == (12, DanceDemo.PANEL, 3 * DanceDemo.PANEL, 3) and fps == pytest.approx(12.5, abs=0.01)
    assert stats["frames"] == 12 and "12 frames in" in app.describe(stats)
    assert seen[-1] == 1.0 and seen == sorted(seen)
    from VideoSkeleton import CACHE_DIR

    assert not list(CACHE_DIR.glob("upload-test-*"))  # forget=True: the pose cache went too


# --------------------------------------------------------------------------- the page (AppTest)


def test_page_renders_and_lists_every_generator(sample_vs):
    at = new_app()
    at.run()
    no_problem(at)
    assert at.title[0].value == "DeepDance"
    assert at.selectbox(key="target").value.label == "built-in sample target"
    offered = at.selectbox(key="gen_type").options
    assert offered[0] == f"1: {DanceDemo.GEN_TYPES[1].description}"
    listed = " ".join(m.value for m in at.markdown)
    video = sample_vs.video_path
    for g in range(2, 9):
        ready = f"{g}: {DanceDemo.GEN_TYPES[g].description}" in offered
        pending = f"not trained yet: `{Train.train_command(g, video)}`" in listed
        assert ready != pending, g  # each trained type is offered, each other one is listed with its command
        if not (app.CHECKPOINT_DIR / sample_vs.key).exists():
            assert pending, g
    assert at.button(key="run").disabled is False
    assert not at.get("video")


def test_page_runs_the_sample_transfer(sample_vs, tmp_path):
    at = new_app()
    at.run()
    at.number_input(key="stride").set_value(4)
    at.button(key="run").click().run()
    no_problem(at)
    assert len(at.get("video")) == 1 and len(at.get("download_button")) == 1
    result = at.session_state["result"]
    assert result["file_name"] == f"deepdance-{sample_vs.video_path.stem}-gen1.mp4"
    assert "100 frames in" in result["stats"] and any(result["stats"] in c.value for c in at.caption)
    video, fps = decode_video(result["video"], tmp_path)  # the sample source: 400 frames at 25 fps
    assert video.shape == (100, DanceDemo.PANEL, 3 * DanceDemo.PANEL, 3) and fps == pytest.approx(6.25, abs=0.01)
    # The result stays on the page across reruns (e.g. after changing a setting).
    at.checkbox(key="smooth").uncheck().run()
    assert len(at.get("video")) == 1


def test_page_shows_an_error_for_a_non_video_upload_and_runs_a_good_one(sample_vs, clips):
    at = new_app()
    at.run()
    at.radio(key="source_kind").set_value(app.SOURCE_KINDS[3]).run()
    assert at.button(key="run").disabled
    at.file_uploader(key="upload").set_value(("notes.mp4", b"Dear diary, this is not a video", "video/mp4")).run()
    assert not at.exception
    assert len(at.error) == 1 and "`notes.mp4` is not a video" in at.error[0].value
    assert at.button(key="run").disabled
    before = upload_dirs()
    at.file_uploader(key="upload").set_value(("clip.avi", clips["avi"].read_bytes(), "video/x-msvideo")).run()
    no_problem(at)
    at.number_input(key="stride").set_value(1)
    at.button(key="run").click().run()
    no_problem(at)
    assert len(at.get("video")) == 1 and "24 frames in" in at.session_state["result"]["stats"]
    from VideoSkeleton import CACHE_DIR

    assert upload_dirs() <= before and not list(CACHE_DIR.glob("upload-*"))  # nothing of the upload is kept


def test_page_reports_a_bad_typed_path(sample_vs):
    at = new_app()
    at.run()
    at.radio(key="source_kind").set_value(app.SOURCE_KINDS[2]).run()
    at.text_input(key="video_path").input("no/such/dance.mp4").run()
    assert not at.exception and "video not found" in at.error[0].value
    assert at.button(key="run").disabled


@pytest.fixture(scope="module")
def trained_clip(tmp_path_factory, sample_target):
    """A small target of its own (frames 300-359 of the sample) with a 1-step gen_type 2 model; both removed after."""
    from VideoSkeleton import VideoSkeleton, iter_frames

    frames = [f for _, f in iter_frames(sample_target, 300, 360)]
    clip = write_video(tmp_path_factory.mktemp("app-target") / "app_target.mp4", frames)
    vs = VideoSkeleton(clip, verbose=False)
    # One epoch of one batch: the test needs a real checkpoint and its loss curve, not a good model.
    r = run_script("GenVanillaNN.py", clip, "false", "1", "--epochs", "1", "--batch", "32", timeout=300)
    assert r.returncode == 0, r.stderr
    yield vs
    shutil.rmtree(vs.cache_dir, ignore_errors=True)
    shutil.rmtree(vs.model_dir(""), ignore_errors=True)


def test_page_offers_a_trained_model_with_its_training_summary(trained_clip, tmp_path):
    at = new_app()
    at.run()
    pick = [t for t in app.processed_targets() if t.video == trained_clip.video_path]
    assert len(pick) == 1 and pick[0].label in at.selectbox(key="target").options
    at.selectbox(key="target").set_value(pick[0]).run()
    no_problem(at)
    assert f"2: {DanceDemo.GEN_TYPES[2].description}" in at.selectbox(key="gen_type").options
    at.selectbox(key="gen_type").set_value(2).run()
    no_problem(at)
    summary = [e for e in at.expander if e.label.startswith("gen_type 2:")]
    assert len(summary) == 1 and "vanilla-vector-64, best epoch" in summary[0].label
    assert {m.label for m in summary[0].metric} >= {"val l1", "val ssim", "val box_ssim"}
    captions = [c for img in summary[0].image for c in img.captions]
    assert any(c.startswith("loss.png") for c in captions) and any("validation frames" in c for c in captions)
    at.number_input(key="stride").set_value(8)
    at.button(key="run").click().run()
    no_problem(at)
    result = at.session_state["result"]
    assert result["file_name"] == "deepdance-app_target-gen2.mp4" and "50 frames in" in result["stats"]
    video, _ = decode_video(result["video"], tmp_path)
    assert video.shape == (50, DanceDemo.PANEL, 3 * DanceDemo.PANEL, 3)
