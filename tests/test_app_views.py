"""Watching the result in the page: the view asked for (the generated target alone, source | generated, or the three
panels), a still strip of a few of its frames in that layout with its download, and DanceDemo's --view alike."""

import app
from deepdance import appbackend, transfer
from deepdance.cli import UserError
from deepdance.nearest import GenNearest
from deepdance.video import read_rows

import cv2
import numpy as np
import pytest

import DanceDemo
from apppage import finish_job, new_app, no_problem, texts, wait_for_file
from conftest import read_video

P = transfer.PANEL
STRIDE = 8  # the sample source's 400 frames -> 50: quick, and one pose cache for every test here


def decoded(data, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(data)
    return read_video(path)[0]


def png(data):
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def far_pixels(a, b):
    """Share of the pixels where two images differ clearly in some channel (drawn lines; not H.264's noise)."""
    return float((np.abs(a.astype(int) - b.astype(int)).max(axis=-1) > 80).mean())


@pytest.fixture(scope="module")
def views(sample_vs, tmp_path_factory):
    """{view: (video frames, still strip, stats)} of the sample transfer in each view."""
    folder, gen, out = tmp_path_factory.mktemp("views"), GenNearest(sample_vs), {}
    for view in transfer.VIEWS:
        data, stats = appbackend.run_transfer(None, sample_vs, gen, "generated target", stride=STRIDE, view=view)
        out[view] = decoded(data, folder, f"{view}.mp4"), png(stats["stills"]), stats
    return out


def test_each_view_has_its_panels_and_a_still_strip_in_its_layout(views, sample_source):
    assert list(transfer.VIEWS) == ["three", "side", "generated"] and transfer.VIEW == "three"
    for view, width in (("three", 3 * P), ("side", 2 * P), ("generated", P)):
        video, stills, _ = views[view]
        assert video.shape == (50, P, width, 3), view
        # 3 frames, one above the other; side by side when a frame is a square (a column of them reads badly).
        assert stills.shape == ((P, 3 * P, 3) if view == "generated" else (3 * P, width, 3)), (view, stills.shape)
        first = round(0.1 * 49)  # transfer.still_frames: evenly spread, the first and last tenth left out
        shown = stills[:, :P] if view == "generated" else stills[:P]
        assert np.abs(shown.astype(int) - video[first]).mean() < 3, view
    # Each view's generated panel is the same picture; "side" shows the source as filmed, without its skeleton.
    three, side, alone = views["three"][0], views["side"][0], views["generated"][0]
    assert np.abs(side[:, :, P:].astype(int) - three[:, :, 2 * P :]).mean() < 3
    assert np.abs(alone.astype(int) - three[:, :, 2 * P :]).mean() < 3
    from deepdance.cache import VideoSkeleton

    filmed = read_rows(VideoSkeleton(sample_source, frame_skip=STRIDE, verbose=False).frames_all, 0, 50)
    below = slice(transfer.LABEL_H, None)  # under each panel's caption
    assert far_pixels(side[:, below, :P], filmed[:, below]) < 0.002  # the source panel: the footage itself
    assert far_pixels(three[:, below, :P], filmed[:, below]) > 0.005  # the three panels' one has the skeleton on it


def test_each_view_is_named_alike_in_the_video_and_the_page(monkeypatch):
    written, label = [], transfer._label
    monkeypatch.setattr(
        transfer, "_label", lambda img, text, *a, **kw: written.append(text) or label(img, text, *a, **kw)
    )
    pose = np.full((13, 2), 0.5, np.float32)
    square = np.zeros((P, P, 3), np.uint8)
    for view, names in transfer.VIEWS.items():
        written.clear()
        frame = transfer.draw_panels(square, pose, pose, square[:64, :64], label="generated target", view=view)
        assert frame.shape == (P, len(names) * P, 3)
        assert [w.split(" + ")[0] for w in written] == [n.split(" + ")[0] for n in names], view
        assert app.PANELS[view] == " | ".join(names)
    assert set(app.VIEW_LABELS) == set(transfer.VIEWS)


def test_an_unknown_view_is_one_plain_line_before_any_work(sample_vs, tmp_path):
    said = "unknown view 'four': one of three, side, generated"
    with pytest.raises(UserError, match=said):
        appbackend.run_transfer(tmp_path / "never-read.mp4", sample_vs, None, "g", view="four")
    out = tmp_path / "out.mp4"
    with pytest.raises(UserError, match=said):
        transfer.transfer(None, sample_vs.skeletons(), None, out, view="four")
    assert not out.exists()


def test_the_page_runs_in_the_view_chosen_with_its_still_strip(sample_vs, paused_app_jobs, tmp_path):
    at = new_app()
    at.run()
    no_problem(at)
    assert at.radio(key="view").value == "three"  # the demo's default
    at.number_input(key="stride").set_value(STRIDE)
    at.radio(key="view").set_value("side").run()
    at.button(key="run").click().run()
    wait_for_file(paused_app_jobs)  # the run is held at its start: the view is locked with the other settings
    assert at.radio(key="view").disabled and at.button(key="run").disabled
    paused_app_jobs.unlink()
    finish_job(at)
    no_problem(at)
    result = at.session_state["result"]
    assert result["view"] == "side" and result["what"].endswith(f"stride {STRIDE} | view: source | generated")
    assert result["file_name"] == f"deepdance-{sample_vs.video_path.stem}-gen1-side.mp4"
    assert result["stills_name"] == f"deepdance-{sample_vs.video_path.stem}-gen1-side-stills.png"
    assert decoded(result["video"], tmp_path, "page.mp4").shape == (50, P, 2 * P, 3)
    assert png(result["stills"]).shape == (3 * P, 2 * P, 3)
    assert any(t.startswith("The panels: source | generated target. Time: ") for t in texts(at))
    captions = [c for img in at.image for c in img.captions if "frames of the result" in c]
    assert len(captions) == 1 and captions[0].endswith("(source | generated target)"), captions
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download (mp4)", "Download the stills (PNG)"]


@pytest.mark.parametrize("view", ["side", "generated"])
def test_the_demo_writes_the_view_asked_for(sample_vs, view, tmp_path, capsys):
    out, stills = tmp_path / "demo.mp4", tmp_path / "stills.png"
    argv = ["--view", view, "--stride", STRIDE, "--max_frames", 12, "--out", out, "--stills", stills]
    DanceDemo.main(list(map(str, argv)))
    video = read_video(out)[0]
    width = {"side": 2 * P, "generated": P}[view]
    assert video.shape == (12, P, width, 3)
    picture = cv2.imread(str(stills))
    assert picture.shape == ((3 * P, 2 * P, 3) if view == "side" else (P, 3 * P, 3))
    assert f"stills -> {stills}" in capsys.readouterr().out
