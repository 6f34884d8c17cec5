"""What the page keeps of the files given to it: it says so, shows the space used, and 'Forget my uploads' deletes
them (the videos, their pose caches, the models trained on uploaded targets), nothing else."""

import app
from deepdance import appbackend, cache, uploads

from apppage import new_app, no_problem, page_text, sample_frames
from conftest import write_video


def uploads_box(at):
    box = [e for e in at.expander if e.label.startswith("Your uploads: ")]
    assert len(box) == 1, [e.label for e in at.expander]
    return box[0]


def test_the_page_says_what_it_keeps_and_forgets_the_uploads(sample_vs, sample_target, tmp_path):
    at = new_app()
    at.run()
    no_problem(at)
    # An uploaded source, extracted by a run; an uploaded target, extracted, with a model trained on it.
    source = write_video(tmp_path / "mine.mp4", sample_frames(sample_target, 0, 16))
    at.radio(key="source_kind").set_value(app.SOURCE_KINDS[3]).run()
    at.file_uploader(key="upload").set_value(("my holiday.mp4", source.read_bytes(), "video/mp4")).run()
    no_problem(at)
    said = "Kept in `" + appbackend.shown_path(uploads.UPLOAD_DIR) + "/` with its poses for the next runs"
    assert said in page_text(at)
    stored = [p for p in uploads.UPLOAD_DIR.iterdir() if p.read_bytes() == source.read_bytes()]
    assert len(stored) == 1
    source_vs = cache.VideoSkeleton(stored[0], frame_skip=4, verbose=False)
    clip = write_video(tmp_path / "dancer.mp4", sample_frames(sample_target, 40, 56))
    target = uploads.store_upload(clip.read_bytes(), "dancer.mp4", folder=app.TARGET_DIR, keep_name=True, keep=None)
    target_vs = cache.VideoSkeleton(target, verbose=False)
    model = target_vs.model_dir("vanilla-vector-64")
    model.mkdir(parents=True)
    (model / "best.pth").write_bytes(b"\0" * 1000)
    caches = [source_vs.cache_dir, target_vs.cache_dir]
    locks = [c.parent / f".{c.name}.lock" for c in caches]
    assert not any(lock.exists() for lock in locks)  # a build lock's file goes with its release
    kept = uploads.kept_uploads()
    assert kept.sources >= 1 and kept.targets >= 1 and kept.models >= 1 and kept.caches >= 2
    assert kept.bytes >= sum(uploads.folder_bytes(p) for p in (*stored, target, *caches, model))

    at.run()
    box = uploads_box(at)
    assert box.label.endswith(f"kept on this computer, {uploads.shown_bytes(kept.bytes)}")
    inside = "\n".join(m.value for m in box.markdown)
    assert f"in `{appbackend.shown_path(uploads.UPLOAD_DIR)}/`" in inside
    assert f"in `{appbackend.shown_path(app.TARGET_DIR)}/`" in inside and "generators trained on them" in inside
    assert f"Space used: **{uploads.shown_bytes(kept.bytes)}**" in inside
    # Forget: asked once more (it deletes trained models too), then done.
    at.button(key="forget").click().run()
    assert all(p.exists() for p in stored) and target.exists()  # nothing deleted before the confirmation
    at.button(key="forget_yes").click().run()
    no_problem(at)
    gone = (*stored, target, *caches, *locks, model.parent)
    assert not [p for p in gone if p.exists()]
    assert sample_vs.cache_dir.exists() and sample_target.exists()  # what was not uploaded stays
    assert any(s.value.startswith("Your uploads are deleted: ") for s in at.success)
    assert uploads_box(at).label == "Your uploads: 0 kept on this computer, 0 bytes"
    # The uploader is empty again: the file is not stored anew by the next rerun.
    at.run()
    no_problem(at)
    assert not any(p.is_file() for p in uploads.UPLOAD_DIR.glob("*")) and at.button(key="run").disabled
    assert any("upload a video (MP4/MOV" in i.value for i in at.info)
