"""What the app tests share: driving the page with Streamlit's AppTest (a fresh page, its texts, a job waited for
on its Event), the bounds they wait within, frames of the sample to make small targets from, and a clip of poses the
sample target never made."""

import time

from deepdance import appbackend, mannequin, video

from conftest import ROOT

RUN_TIMEOUT = 240  # s: one job or script run of the page, a source extraction included (2 slow shared cores)
PAUSE_TIMEOUT = 60  # s for a job to reach its pause point


def sample_frames(sample_target, start, stop):
    return [f for _, f in video.iter_frames(sample_target, start, stop)]


def new_app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=RUN_TIMEOUT)


def no_problem(at):
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def texts(at):
    """Every text the page shows (markdown, captions, alerts, code), one string each."""
    kinds = ("markdown", "caption", "info", "warning", "error", "success", "code")
    return [e.value for kind in kinds for e in at.get(kind)]


def page_text(at):
    return "\n".join(texts(at))


def finish_job(at):
    """Wait for the session's job to end (its Event), then rerun the page as its progress poll does."""
    job = at.session_state["job"]
    assert job is not None, "no job is running"
    assert job.finished.wait(RUN_TIMEOUT), f"the job did not end within {RUN_TIMEOUT} s: {job.state()}"
    at.run()
    assert at.session_state["job"] is None
    return job


def run_typed_source(path):
    """A fresh page run on a source typed as a path, its job waited for and the page checked for problems."""
    from app import SOURCE_KINDS

    at = new_app()
    at.run()
    at.radio(key="source_kind").set_value(SOURCE_KINDS[2]).run()
    at.text_input(key="video_path").input(str(path)).run()
    at.button(key="run").click().run()
    finish_job(at)
    no_problem(at)
    return at


def wait_for_file(path, timeout=PAUSE_TIMEOUT):
    """Poll until `path` exists (a job reached its pause point); generous bound, no fixed sleep."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def select_target(at, video):
    targets = [t for t in appbackend.processed_targets() if t.video == video]
    assert len(targets) == 1, [t.video for t in appbackend.processed_targets()]
    at.selectbox(key="target").set_value(targets[0]).run()
    no_problem(at)
    return targets[0]


def off_range_clip(path, n=100):
    """A clip of the sample source's mannequin in poses the sample target never made (as a real dance has many):
    a star jump (arms straight up, feet wide apart) for the first half, forearms folded across the body for the
    second. Against the sample target it gives coverage warnings: far poses, and two kinds of pose never made."""
    params = mannequin.routine("source")[0][:n].copy()
    for k, v in (("l_leg", 45), ("r_leg", 45), ("l_arm", 170), ("r_arm", 170)):
        params[: n // 2, mannequin.P[k]] = v
    for k, v in (("l_arm", -10), ("l_elbow", -90), ("r_arm", -10), ("r_elbow", -90)):
        params[n // 2 :, mannequin.P[k]] = v
    fig = mannequin.FIGURES["source"]
    joints, head_c, head_ang = mannequin.forward_kinematics(params, fig)
    room = mannequin.background(fig)
    with video.VideoWriter(path, mannequin.FPS) as w:
        for i in range(n):
            w.write(mannequin.render_frame(room, fig, joints[i], head_c[i], head_ang[i]))
    return path
