"""DanceDemo keeps the source's sound: trimmed to the rendered span, aligned with its frames, as long as the video;
--no_audio and a silent source give a silent video; a failed mux keeps the silent video with one warning."""

import subprocess

from deepdance.video import Sound, VideoWriter, audio_span, iter_frames, source_sound

import imageio_ffmpeg
import numpy as np
import pytest

from conftest import read_video, run_script, write_video

LATE = 0.4  # s: the picture starts this long after the sound in the sounded clip (a camera's sound starts first)
SWITCH = 1.0  # s into the file: the sound's pitch goes from LOW to HIGH Hz, a moment the output's sound can be timed by
LOW, HIGH = 440, 1320
SR = 44100


def ffmpeg(*args):
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", *map(str, args)], check=True)


def samples(path):
    """A file's first audio stream as a player has it: mono float32 at SR from the file's start (silence first where
    the sound starts later)."""
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:a:0", "-af",
           "aresample=async=1:first_pts=0", "-ac", "1", "-ar", str(SR), "-f", "f32le", "-"]  # fmt: skip
    return np.frombuffer(subprocess.run(cmd, capture_output=True, check=True).stdout, np.float32)


def pitch_switch(x, window=0.01):
    """s into the samples where the pitch first rises above the middle of LOW and HIGH (zero crossings per window)."""
    n = int(window * SR)
    frames = x[: len(x) // n * n].reshape(-1, n)
    hz = (np.diff(np.signbit(frames), axis=1).sum(axis=1)) / (2 * window)
    high = np.flatnonzero(hz > (LOW + HIGH) / 2)
    assert len(high) and hz[: high[0]].min() > LOW / 2, hz  # low pitch (never silence) before it
    return high[0] * window


def has_audio(path):
    r = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    )
    return "Audio:" in r.stderr


@pytest.fixture(scope="module")
def sounded(tmp_path_factory, sample_source):
    """The sample source's first 40 frames (1.6 s at 25 fps, a person) with a sound that starts LATE s before the
    picture and switches pitch at SWITCH s into the file."""
    folder = tmp_path_factory.mktemp("audio")
    silent = write_video(folder / "picture.mp4", [f for _, f in iter_frames(sample_source, 0, 40)])
    tone = f"aevalsrc=sin(2*PI*if(lt(t\\,{SWITCH})\\,{LOW}\\,{HIGH})*t):s={SR}:d={LATE + 2.5}"
    out = folder / "sounded.mp4"
    ffmpeg("-itsoffset", LATE, "-i", silent, "-f", "lavfi", "-i", tone, "-map", "0:v", "-map", "1:a", "-c:v", "copy",
           "-c:a", "aac", out)  # fmt: skip
    return out


def test_the_sound_lines_up_with_the_picture(sounded):
    sound = source_sound(sounded, 0.2)
    assert sound.path == sounded and sound.start == pytest.approx(LATE + 0.2, abs=1e-3)
    assert source_sound(write_video(sounded.parent / "mute.mp4", [np.zeros((64, 64, 3), np.uint8)] * 5)) is None


def write_black(path, n, sound, fps=10.0):
    with VideoWriter(path, fps, sound=sound) as w:
        for _ in range(n):
            w.write(np.zeros((64, 96, 3), np.uint8))
    assert len(read_video(path)[0]) == n
    return w


def test_writer_puts_the_sound_under_the_video(sounded, tmp_path):
    out = tmp_path / "v.mp4"
    assert write_black(out, 12, Sound(sounded, 0.7)).sound_s == pytest.approx(1.2)
    start, length = audio_span(out)
    assert start == pytest.approx(0, abs=1e-3) and length == pytest.approx(1.2, abs=1e-3)
    assert pitch_switch(samples(out)) == pytest.approx(SWITCH - 0.7, abs=0.03)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]  # no temporary left
    # A span running past the end of the source's sound: silence to the video's length.
    write_black(out, 6, Sound(sounded, LATE + 2.2))
    assert audio_span(out)[1] == pytest.approx(0.6, abs=1e-3)
    assert np.flatnonzero(np.abs(samples(out)) > 1e-3)[-1] / SR == pytest.approx(0.3, abs=0.03)  # LATE + 2.5 s of it
    # A sound starting 0.3 s after the picture (taichi2's starts 0.014 s after it): silence first, as long as the video.
    late = tmp_path / "late.mp4"
    picture = sounded.parent / "picture.mp4"
    tone = f"sine=frequency={LOW}:sample_rate={SR}:duration=2"
    ffmpeg("-i", picture, "-itsoffset", 0.3, "-f", "lavfi", "-i", tone, "-c:v", "copy", "-c:a", "aac", late)
    write_black(out, 12, source_sound(late))
    start, length = audio_span(out)
    assert start == pytest.approx(0, abs=1e-3) and length == pytest.approx(1.2, abs=1e-3)
    onset = [np.flatnonzero(np.abs(samples(f)) > 1e-3)[0] / SR for f in (out, late)]
    assert onset[0] == pytest.approx(onset[1], abs=1e-3) and onset[0] > 0.25  # where a player has it in late.mp4


def test_a_failed_mux_keeps_the_silent_video_with_one_warning(tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    out = tmp_path / "v.mp4"
    w = write_black(out, 5, Sound(broken, 0.0))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: could not add the sound of") and str(broken) in err[0]
    assert w.sound_s == 0 and audio_span(out) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4", "v.mp4"]


@pytest.mark.slow
def test_demo_keeps_the_span_of_the_sound(short_clip, sounded, tmp_path):
    """--stride 2 --max_frames 15: source frames 0, 2, ..., 28 at 12.5 fps, 1.2 s from the first picture (LATE s
    into the file): the pitch switch, SWITCH s into the file, is SWITCH - LATE s into the output."""
    out = tmp_path / "demo.mp4"
    args = ("--video_path", short_clip, "--source", sounded, "--stride", 2, "--max_frames", 15, "--out", out)
    r = run_script("DanceDemo.py", *args)
    assert r.returncode == 0, r.stderr
    assert f"sound: sounded.mp4's audio from {LATE:.2f} s, 1.2 s" in r.stdout.splitlines()
    video, fps = read_video(out)
    assert len(video) == 15 and fps == pytest.approx(12.5, abs=0.01)
    start, length = audio_span(out)
    assert abs(start) < 0.001 and length == pytest.approx(len(video) / fps, abs=0.01)
    assert pitch_switch(samples(out)) == pytest.approx(SWITCH - LATE, abs=0.03)
    # --no_audio: the same video, silent.
    r = run_script("DanceDemo.py", *args, "--no_audio")
    assert r.returncode == 0, r.stderr
    assert "sound: none (--no_audio)" in r.stdout and not has_audio(out) and len(read_video(out)[0]) == 15


@pytest.mark.slow
def test_demo_of_a_silent_source_is_silent(short_clip, tmp_path):
    out = tmp_path / "demo.mp4"
    r = run_script("DanceDemo.py", "--video_path", short_clip, "--source", short_clip, "--max_frames", 10, "--out", out)
    assert r.returncode == 0 and "warning" not in r.stderr and "error" not in r.stderr, r.stderr
    assert "sound: none in the source" in r.stdout and not has_audio(out) and len(read_video(out)[0]) == 10
