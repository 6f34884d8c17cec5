"""app.py and AppBackend in each framing a target is extracted in: its own cache, its own generators and their
commands, the choice on the page and the extraction of another framing."""

import shutil
from types import SimpleNamespace

import app
from deepdance import appbackend, cache
from deepdance.gentypes import checkpoint_dir, train_command

import pytest

from apppage import finish_job, new_app, no_problem, sample_frames, select_target, texts
from conftest import write_video


@pytest.fixture(scope="module")
def framed_clip(tmp_path_factory, sample_target):
    """A small target (frames 200-239 of the sample) extracted in framing person only; its caches and models (in
    any framing) removed after."""
    clip = write_video(tmp_path_factory.mktemp("app-framed") / "framed.mp4", sample_frames(sample_target, 200, 240))
    cache.VideoSkeleton(clip, verbose=False)
    yield clip
    for cache_dir in cache.CACHE_DIR.glob("framed-*"):
        shutil.rmtree(cache.CHECKPOINT_DIR / cache_dir.name, ignore_errors=True)
        shutil.rmtree(cache_dir)


def junk_checkpoint(vs, gen_type):
    """A best.pth of gen_type on vs that does not load: listed as damaged, not counted as trained."""
    path = checkpoint_dir(vs, gen_type) / "best.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a checkpoint")
    return path


def test_each_framing_of_a_target_has_its_cache_and_its_generators(framed_clip):
    person = cache.VideoSkeleton(framed_clip, verbose=False)
    center = cache.VideoSkeleton(framed_clip, verbose=False, framing="center")
    strided = cache.VideoSkeleton(framed_clip, frame_skip=2, verbose=False)  # the newest: a source's
    junk_checkpoint(center, 2)
    try:
        target = [t for t in appbackend.processed_targets() if t.video == framed_clip.resolve()]
        assert len(target) == 1, target  # one target, in two framings
        target = target[0]
        assert target.framings() == ["person", "center"] and target.details.startswith("40 of 40 frames with a person")
        # Each framing opens the cache its models were trained from, not the newer one at a stride.
        assert target.caches["person"] == appbackend.Framed(person.meta["params"], person.key)
        assert target.caches["center"] == appbackend.Framed(center.meta["params"], center.key)
        assert target.params("center")["framing"] == "center" and center.key == person.key + "-center"
        said = {"person": "nothing trained yet", "center": "nothing trained yet; damaged: gen_type 2"}
        assert appbackend.framing_states(target) == said
        # The generators listed for a framing are those trained on it, with that framing's commands.
        states = {}
        for vs in (person, center):
            listed = appbackend.generator_states(vs, lambda g, size, vs=vs: appbackend.try_load_generator(g, vs))
            states[vs.framing] = {a.gen_type: a for a in listed}
        assert states["person"][2].state == "untrained" and states["center"][2].state == "damaged"
        assert states["person"][2].command == train_command(2, framed_clip)
        assert states["center"][2].command == appbackend.retrain_command(2, framed_clip, framing="center")
        assert states["center"][2].command.endswith(" --framing center")
        assert "--framing" not in states["person"][3].command
        assert states["center"][3].command == train_command(3, framed_clip, framing="center")
    finally:
        shutil.rmtree(cache.CHECKPOINT_DIR / center.key, ignore_errors=True)
        shutil.rmtree(center.cache_dir)
        shutil.rmtree(strided.cache_dir)
    # The sample before its first use: offered in the default framing, which opening it extracts.
    sample = appbackend.Target("built-in sample target", None, {})
    assert sample.framings() == ["person"] and sample.params("person") is None
    assert appbackend.framing_states(sample) == {"person": "extracted on first use", "center": "not extracted"}


def test_a_target_extracted_in_a_framing_is_selected_in_it_the_sample_too():
    from deepdance import mannequin

    targets = appbackend.processed_targets()
    for video, selected in ((mannequin.clip_path("target"), True), (mannequin.clip_path("source"), False)):
        st = SimpleNamespace(session_state={"select_target": (str(video.resolve()), "center"), "added": {}})
        app.apply_pending_selection(st, targets)
        assert st.session_state["added"]["selected"] == selected
        if selected:  # the sample target (its Target has no video: it is rendered on demand)
            assert st.session_state["target"] is targets[0] and st.session_state["framing"] == "center"
        else:  # the sample source is a source, never a target
            assert "target" not in st.session_state and "framing" not in st.session_state


def test_a_targets_framing_is_picked_or_extracted_and_lists_its_own_generators(sample_vs, framed_clip):
    at = new_app()
    at.run()
    no_problem(at)
    # The sample, extracted in framing person alone: that is the one offered, and the other can be extracted.
    assert at.radio(key="framing").options == ["person"] and at.radio(key="framing").value == "person"
    assert at.button(key="extract_center").label == "Extract in framing center"
    select_target(at, framed_clip.resolve())
    assert at.radio(key="framing").options == ["person"]
    assert list(at.radio(key="framing").proto.captions) == ["nothing trained yet"]
    at.button(key="extract_center").click().run()
    job = finish_job(at)
    no_problem(at)
    assert job.kind == "target" and job.what == "adding the target `framed.mp4` in framing center"
    # The same target, now in both framings, the new one chosen; the commands that train on it.
    assert at.selectbox(key="target").value.video == framed_clip.resolve()
    assert at.radio(key="framing").options == ["person", "center"] and at.radio(key="framing").value == "center"
    said = [s.value for s in at.success]
    assert len(said) == 1 and "It is now the selected target." in said[0]  # at the top, where it was asked for
    assert f"{train_command(3, framed_clip, framing='center')}   # gen_type 3" in at.code[0].value
    ready = "**Ready**: the built-in sample source onto framed.mp4 in framing center | gen_type 1"
    assert any(t.startswith(ready) for t in texts(at))
    center = cache.VideoSkeleton(framed_clip, verbose=False, framing="center")
    junk_checkpoint(center, 2)  # a gen_type 2 on the centre crop only, damaged
    try:
        at.button(key="look_again").click().run()
        no_problem(at)
        said = ["nothing trained yet", "nothing trained yet; damaged: gen_type 2"]
        assert list(at.radio(key="framing").proto.captions) == said

        def generators(framing):
            box = [e for e in at.expander if e.label.startswith(f"Generators for framed.mp4 in framing {framing}: ")]
            assert len(box) == 1, [e.label for e in at.expander]
            line = [x for t in texts(at) for x in t.splitlines() if x.startswith("- **2**")]
            assert len(line) == 1, line
            return box[0].label, line[0]

        label, line = generators("center")
        assert label.endswith(", 1 damaged")
        assert f"`{appbackend.with_data_dir(appbackend.retrain_command(2, framed_clip, framing='center'))}`" in line
        at.radio(key="framing").set_value("person").run()
        no_problem(at)
        label, line = generators("person")
        command = appbackend.with_data_dir(train_command(2, framed_clip))
        assert "damaged" not in label and line.endswith(f"not trained yet: `{command}`")
        assert any(t.startswith("**Ready**: the built-in sample source onto framed.mp4 | ") for t in texts(at))
    finally:
        shutil.rmtree(cache.CHECKPOINT_DIR / center.key, ignore_errors=True)
