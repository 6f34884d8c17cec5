"""What a run in the page comes to: the source's sound kept in the video, coverage warnings numbering the file's own
frames and summed up in one collapsed line under the video, progress messages that say what is done."""

import re
import subprocess
from pathlib import Path

from deepdance import appbackend, cache, video
from deepdance.nearest import GenNearest
from deepdance.video import audio_span

import imageio_ffmpeg
import pytest

from apppage import new_app, no_problem, off_range_clip, run_typed_source, texts
from conftest import write_video


def ffmpeg(*args):
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", *map(str, args)], check=True)


@pytest.fixture(scope="module")
def sounded(tmp_path_factory, sample_source):
    """40 frames of the sample source (1.6 s at 25 fps) with a tone under them, as a dance video has music."""
    folder = tmp_path_factory.mktemp("app-sound")
    silent = write_video(folder / "picture.mp4", [f for _, f in video.iter_frames(sample_source, 0, 40)])
    out = folder / "dance with music.mp4"
    ffmpeg("-i", silent, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=3", "-map", "0:v",
           "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest", out)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def off_range(tmp_path_factory):
    return off_range_clip(tmp_path_factory.mktemp("app-off-range") / "star_jumps.mp4")


def test_the_run_keeps_the_sources_sound_over_the_rendered_span(sample_vs, sounded, tmp_path):
    seen = []
    data, stats = appbackend.run_transfer(
        sounded, sample_vs, GenNearest(sample_vs), "generated", stride=2, progress=lambda f, t: seen.append(t)
    )
    out = tmp_path / "result.mp4"
    out.write_bytes(data)
    span = audio_span(out)
    assert span is not None, "the result is silent"
    assert span[0] == pytest.approx(0, abs=1e-3) and span[1] == pytest.approx(20 / 12.5, abs=0.05)  # as the video
    assert stats["sound"] == "with the source's sound" and "with the source's sound" in appbackend.describe_run(stats)
    # keep_sound=False, and a source without sound: silent, and said so.
    data, stats = appbackend.run_transfer(sounded, sample_vs, GenNearest(sample_vs), "g", stride=2, keep_sound=False)
    out.write_bytes(data)
    assert audio_span(out) is None and stats["sound"] == "silent: sound left out"
    _, stats = appbackend.run_transfer(None, sample_vs, GenNearest(sample_vs), "g", stride=8)
    assert stats["sound"] == "silent: the source has no sound"


def test_the_page_plays_and_downloads_the_result_with_its_sound(sample_vs, sounded, tmp_path):
    at = run_typed_source(sounded)
    result = at.session_state["result"]  # what the player and the download button are given
    out = tmp_path / "page.mp4"
    out.write_bytes(result["video"])
    assert audio_span(out) is not None and "with the source's sound" in result["stats"]


def test_coverage_warnings_number_the_files_frames(sample_vs, off_range):
    source_vs = cache.VideoSkeleton(off_range, frame_skip=2, verbose=False)
    lines = appbackend.coverage_lines(source_vs, sample_vs.skeletons())
    assert len(lines) >= 2, lines
    # 50 frames used of the file's 100: the frame numbers are the file's (0..98), not the sequence's (0..49).
    assert lines[0].startswith("4") and " of the 50 source frames used (" in lines[0]
    numbers = [int(n) for line in lines for n in re.findall(r"\b\d+\b", line.split("(frames ")[1])]
    assert max(numbers) > 60 and all(n % 2 == 0 for n in numbers), lines  # every 2nd frame of the file
    assert any(line.startswith("the target never stood with the feet wide apart (frames 0-") for line in lines)
    # At stride 1 the same clip names the same stretches of the file.
    whole = appbackend.coverage_lines(cache.VideoSkeleton(off_range, verbose=False), sample_vs.skeletons())
    assert " of the " not in whole[0].split("(")[0] and "(frames 0-" in whole[0]


def test_coverage_warnings_are_one_collapsed_line_under_the_video(sample_vs, off_range):
    at = run_typed_source(off_range)
    lines = at.session_state["result"]["coverage"]
    assert len(lines) >= 2 and not at.warning  # no box per warning
    box = [e for e in at.expander if "coverage warning" in e.label]
    assert len(box) == 1 and not box[0].proto.expanded
    assert box[0].label.endswith(f"{len(lines)} coverage warnings: the target never made some of the source's poses")
    inside = "\n".join(m.value for m in box[0].markdown)
    assert all(f"- {line}" in inside for line in lines)
    assert any(f"**{len(lines)} coverage warnings** under the video." in t for t in texts(at))


def test_progress_says_what_is_done(sample_vs, off_range, tmp_path):
    gen = GenNearest(sample_vs)
    clip = Path(tmp_path / "again.mp4")
    clip.write_bytes(off_range.read_bytes())
    first, again = [], []
    appbackend.run_transfer(clip, sample_vs, gen, "g", stride=5, progress=lambda f, t: first.append(t))
    appbackend.run_transfer(clip, sample_vs, gen, "g", stride=5, progress=lambda f, t: again.append(t))
    assert first[0].startswith("source poses: MediaPipe on 20 of the 100 frames")
    assert again[0] == "source poses: from the cache of `again.mp4` (extracted by an earlier run)"
    assert not any("MediaPipe" in t for t in again)
    # The built-in sample source, already rendered: nothing says it is being rendered.
    sample = []
    appbackend.run_transfer(None, sample_vs, gen, "g", stride=8, progress=lambda f, t: sample.append(t))
    assert not any("rendering the built-in sample" in t for t in sample), sample


def test_the_samples_framing_is_not_said_to_be_extracted_on_first_use_once_it_is(sample_vs, monkeypatch):
    listed = appbackend.processed_targets
    calls = []

    def first_as_before_its_first_use():
        targets = listed()
        calls.append(len(calls))
        return [targets[0]._replace(caches={}), *targets[1:]] if len(calls) == 1 else targets

    monkeypatch.setattr(appbackend, "processed_targets", first_as_before_its_first_use)
    at = new_app()
    at.run()
    no_problem(at)
    captions = list(at.radio(key="framing").proto.captions)
    assert captions and "extracted on first use" not in captions[0], captions
